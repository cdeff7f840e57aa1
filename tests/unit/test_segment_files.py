"""The segments folder (``smr.segments``): files checked like playbooks."""

from __future__ import annotations

from pathlib import Path

from smr.segments import load_folder


def test_an_id_defined_twice_is_an_error_at_the_second_file(tmp_path: Path) -> None:
    (tmp_path / "segments").mkdir()
    (tmp_path / "segments" / "a.yaml").write_text("id: 钻粉\n", encoding="utf-8")
    (tmp_path / "segments" / "b.yaml").write_text("# copy\nid: 钻粉\n", encoding="utf-8")

    segments, broken, errors = load_folder(tmp_path)

    assert (list(segments), broken) == (["钻粉"], set())
    assert [e.format() for e in errors] == [
        f"{tmp_path / 'segments' / 'b.yaml'}:2:5: id: duplicate segment id '钻粉'"
        f" (already defined in {tmp_path / 'segments' / 'a.yaml'})"
    ]
