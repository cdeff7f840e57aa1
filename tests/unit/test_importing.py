"""Reading import files (``smr.importing``): each line checked alone, bad ones by number."""

from __future__ import annotations

import io

from smr.importing import Line, read, records, shared


def outcome(text: str, kind: str) -> list[tuple[int, str]]:
    found = read(io.StringIO(text, newline=""), format="csv" if kind == "csv" else "jsonl")
    return [
        (item.number, item.row.phone or "")
        if isinstance(item, Line)
        else (item.number, f"{item.path}: {item.message}")
        for item in found
    ]


def test_hostile_json_lines_are_refused_one_by_one_and_the_rest_read() -> None:
    deep = "[" * 40 + "]" * 40
    text = "\n".join(
        [
            '{"phone": "13800000001"}',
            '{"phone": "13800000002", "name": "a\\u0000b"}',
            deep,
            '{"phone": "13800000003", "attributes": {'
            + ",".join(f'"k{i}": 1' for i in range(101))
            + "}}",
            "",
            '{"phone": "13800000004", "orders": [{"order_id": "x", "total": -1,'
            ' "occurred_at": "2025-01-01T00:00:00Z"}]}',
            '{"phone": "\\udc80"}',
            '{"phone": "13800000005"}',
        ]
    )

    found = outcome(text, "jsonl")

    expected = [
        (1, "13800000001"),
        (2, "NUL"),
        (3, "nested deeper"),
        (4, "attributes:"),
        (6, "orders.0.total:"),
        (7, "surrogate"),
        (8, "13800000005"),
    ]
    assert [n for n, _ in found] == [n for n, _ in expected]
    for (_, said), (_, fragment) in zip(found, expected, strict=True):
        assert fragment in said


def test_hostile_csv_rows_are_refused_one_by_one_and_the_rest_read() -> None:
    text = (
        "phone,name,tags,attr.城市\n"
        "13800000001,王,a|b,上海\n"
        "13800000002,\x00,,\n"
        "13800000003,x,,,extra\n"
        '13800000004,"' + "y" * 200_000 + '",,\n'
        "13800000005,ok,,\n"
    )

    found = outcome(text, "csv")

    expected = [
        (2, "13800000001"),
        (3, "NUL"),
        (4, "more cells"),
        (5, "field larger than field limit"),
        (6, "13800000005"),
    ]
    assert [n for n, _ in found] == [n for n, _ in expected]
    for (_, said), (_, fragment) in zip(found, expected, strict=True):
        assert fragment in said


def test_workers_share_a_file_in_runs_of_a_chunk_each_line_read_by_one() -> None:
    text = "\n".join(
        '"not a customer"' if i == 7 else f'{{"phone": "138{i:08d}"}}' for i in range(1, 24)
    )

    def share(worker: int) -> list[int]:
        found = records(io.StringIO(text), format="jsonl")
        return [item.number for item in shared(found, worker=worker, workers=3, chunk=4)]

    shares = [share(worker) for worker in range(3)]

    assert shares[0] == [1, 2, 3, 4, 13, 14, 15, 16]
    assert shares[1] == [5, 6, 7, 8, 17, 18, 19, 20]
    assert shares[2] == [9, 10, 11, 12, 21, 22, 23]
    whole = [item.number for item in read(io.StringIO(text), format="jsonl")]
    assert sorted(n for s in shares for n in s) == whole
    refused = shared(records(io.StringIO(text), format="jsonl"), worker=1, workers=3, chunk=4)
    assert [i.number for i in refused if not isinstance(i, Line)] == [7]
