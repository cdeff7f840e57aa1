"""POST /v1/playbooks/validate: every problem of one file's text before it is saved; never a 500."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import CORE
from tests.helpers import INGEST, auth

GOOD = """\
# yaml-language-server: $schema=./schema.json
id: birthday
name: 生日祝福
trigger: {event: contact.added}
steps:
  - send: {channel: mock, text: "{{ contact.name }}，生日快乐"}
"""
URL = "/v1/playbooks/validate"


async def _validate(client: httpx.AsyncClient, body: bytes | str, **params: str) -> Any:
    response = await client.post(
        URL, content=body, params=params, headers=auth() | {"Content-Type": "text/yaml"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def _error(line: int, column: int, path: str, message: str, **extra: str) -> dict[str, Any]:
    fields = {"file": "playbook.yaml", "severity": "error"} | extra
    return {"line": line, "column": column, "path": path, "message": message, **fields}


async def test_answers_valid_or_every_problem_with_its_position(
    client: httpx.AsyncClient,
) -> None:
    bad = GOOD.replace("name: 生日祝福\n", "").replace("channel: mock", "chanel: mock")
    custom = GOOD.replace("contact.added", "loyalty.points_added")

    assert await _validate(client, GOOD) == {"valid": True, "errors": []}
    assert await _validate(client, bad, filename="drafts/birthday.yaml") == {
        "valid": False,
        "errors": [
            _error(2, 1, "name", "missing required field 'name'", file="drafts/birthday.yaml"),
            _error(
                5,
                12,
                "steps[0].send.chanel",
                "unknown field 'chanel' (did you mean 'channel'?)",
                file="drafts/birthday.yaml",
            ),
        ],
    }
    assert await _validate(client, custom) == {
        "valid": True,
        "errors": [
            _error(
                4,
                18,
                "trigger.event",
                "custom event type 'loyalty.points_added': it starts runs only if your systems"
                " post it",
                severity="warning",
            )
        ],
    }


async def test_duplicate_id_of_another_loaded_file(client: httpx.AsyncClient) -> None:
    text = (CORE / "welcome.yaml").read_text(encoding="utf-8")

    copy = await _validate(client, text, filename="welcome-copy.yaml")
    edit = await _validate(client, text, filename="welcome.yaml")

    [error] = copy["errors"]
    assert copy["valid"] is False
    assert (error["file"], error["line"], error["column"], error["path"]) == (
        "welcome-copy.yaml",
        2,
        5,
        "id",
    )
    assert error["message"] == (
        f"duplicate playbook id 'welcome-new-contact' (already defined in {CORE / 'welcome.yaml'})"
    )
    assert edit == {"valid": True, "errors": []}


async def test_policies_by_kind_or_by_file_name(client: httpx.AsyncClient) -> None:
    good = (CORE / "policies.yaml").read_text(encoding="utf-8")
    bad = "on_cap: skp\n"
    on_cap = _error(1, 9, "on_cap", "must be one of: skip, defer (did you mean 'skip'?)")

    assert await _validate(client, good, kind="policies") == {"valid": True, "errors": []}
    assert await _validate(client, good, filename="policies.yaml") == {"valid": True, "errors": []}
    assert await _validate(client, bad, kind="policies") == {"valid": False, "errors": [on_cap]}
    answer = await _validate(client, bad, filename="policies.yaml")
    assert answer == {"valid": False, "errors": [on_cap | {"file": "policies.yaml"}]}


async def test_any_bytes_give_a_clear_answer(client: httpx.AsyncClient) -> None:
    cases = {
        b"": _error(1, 1, "", "file is empty"),
        b"\x89PNG\r\n\x1a\n\x00\x00": _error(
            1, 1, "", "not UTF-8 text (byte 0x89 at offset 0): save the file as UTF-8"
        ),
        b"\x00\x01\x02": _error(
            1, 1, "", "character U+0000 is not allowed in YAML (is this a text file?)"
        ),
        b"id: [unclosed\n": _error(
            2,
            1,
            "",
            "YAML: while parsing a flow sequence, expected ',' or ']', but got '<stream end>'",
        ),
        b"just words": _error(
            1, 1, "", "expected a mapping of fields (name: value), got text 'just words'"
        ),
    }
    for body, error in cases.items():
        assert await _validate(client, body) == {"valid": False, "errors": [error]}, body


async def test_refusals_are_problem_json(client: httpx.AsyncClient) -> None:
    too_big = b"# " + b"x" * (1024 * 1024)
    answers = [
        await client.post(URL, content=GOOD),
        await client.post(URL, content=GOOD, headers=auth(INGEST)),
        await client.post(URL, content=too_big, headers=auth()),
        await client.post(URL, content=GOOD, params={"kind": "rule"}, headers=auth()),
    ]

    assert [a.status_code for a in answers] == [401, 403, 413, 422]
    assert {a.headers["content-type"] for a in answers} == {"application/problem+json"}
