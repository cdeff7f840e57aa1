"""Log lines: no secret and no whole phone number in any of them; text or JSON, with the ids
each line concerns."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from uvicorn.logging import AccessFormatter

from smr import logs
from smr.logs.redact import Redact, redact

ACCESS = '%s - "%s %s HTTP/%s" %d'  # uvicorn's access line; the path carries the query


@pytest.mark.parametrize(
    ("line", "gone", "kept"),
    [
        ("POST /v1/webhooks/sms/aliyun?token=s3cr3t-t0ken", "s3cr3t-t0ken", "token=[redacted]"),
        (
            "GET /v1/wecom/callback?msg_signature=abc123&timestamp=1&nonce=n&echostr=ZWNobw%3D%3D",
            "abc123",
            "timestamp=1&nonce=n&echostr=[redacted]",
        ),
        (
            "HTTP Request: GET https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=S",
            "corpsecret=S",
            "corpid=ww1&corpsecret=[redacted]",
        ),
        ("POST /cgi-bin/message/send?access_token=AT-42 200", "AT-42", "access_token=[redacted]"),
        (
            "GET https://dysmsapi.aliyuncs.com/?AccessKeyId=LTAI5&Signature=x%2By&PhoneNumbers=13800138000",
            "13800138000",
            "AccessKeyId=[redacted]&Signature=[redacted]&PhoneNumbers=138****8000",
        ),
        ("sign=deadbeef&order=1", "deadbeef", "sign=[redacted]&order=1"),
        ("Authorization: Bearer smr-admin-42", "smr-admin-42", "Bearer [redacted]"),
        ("GET /v1/contacts?phone=13800138000 HTTP/1.1", "13800138000", "phone=138****8000"),
        ("GET /v1/contacts?phone=%2B86%20138%200013%208000", "0013", "phone=138****8000"),
        ("GET /v1/contacts?phone=021-12345678", "12345678", "phone=+86****5678"),
        ("GET /v1/contacts?phone=call+me", "call", "phone=****"),
        ("GET /v1/runs?q=%2B852%209123%204567", "9123", "q=+852****4567"),
        ("no details of customer 13800138000: timeout", "13800138000", "138****8000"),
        ("reply from +1 415 555 2671", "555", "+1****2671"),
        # a key the server decodes (%74oken is token), and a secret holding , ; or )
        ("POST /v1/webhooks/sms/aliyun?%74oken=S3CRET", "S3CRET", "%74oken=[redacted]"),
        ("GET /x?tok%65n=S3CRET HTTP/1.1", "S3CRET", "tok%65n=[redacted] HTTP/1.1"),
        ("?token=ab;cd,ef)gh&x=1", "cd,ef", "token=[redacted]&x=1"),
    ],
)
def test_secrets_and_phones_never_reach_a_line(line: str, gone: str, kept: str) -> None:
    clean = redact(line)

    assert gone not in clean
    assert kept in clean


def test_a_call_whose_arguments_do_not_fit_its_format_does_not_raise_into_its_caller() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items", ("many",), None)

    assert Redact().filter(record) is True
    assert (record.msg, record.args) == ("%d items", ("many",))


def test_what_is_neither_is_left_as_it_is() -> None:
    line = "GET /v1/runs?limit=100&cursor=ru_01HX2&since=2026-11-24T10:00:00Z HTTP/1.1 200"

    assert redact(line) == line


def access_record(path: str) -> logging.LogRecord:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, ACCESS, None, None, func=None
    )
    record.args = ("127.0.0.1:51234", "POST", path, "1.1", 200)
    return record


def test_uvicorn_access_lines_are_redacted_and_still_format() -> None:
    record = access_record("/v1/webhooks/sms/aliyun?token=s3cr3t&phone=13800130000")

    assert Redact().filter(record)
    line = AccessFormatter("%(client_addr)s %(request_line)s %(status_code)s").format(record)

    assert "s3cr3t" not in line
    assert "13800130000" not in line
    assert "POST /v1/webhooks/sms/aliyun?token=[redacted]&phone=138****0000 HTTP/1.1" in line


@pytest.fixture
def lines() -> Iterator[tuple[io.StringIO, list[logging.Handler]]]:
    stream = io.StringIO()
    handlers: list[logging.Handler] = []
    root = logging.getLogger()
    yield stream, handlers
    for handler in handlers:
        root.removeHandler(handler)


def install(
    fixture: tuple[io.StringIO, list[logging.Handler]], log_format: logs.LogFormat
) -> io.StringIO:
    stream, handlers = fixture
    handler = logs.handler(log_format, stream)
    handlers.append(handler)
    logging.getLogger().addHandler(handler)
    return stream


def test_the_access_logger_is_redacted_before_any_handler(
    lines: tuple[io.StringIO, list[logging.Handler]], caplog: pytest.LogCaptureFixture
) -> None:
    install(lines, "text")
    caplog.set_level(logging.INFO, "uvicorn.access")

    logging.getLogger("uvicorn.access").info(
        ACCESS, "127.0.0.1:5", "GET", "/v1/contacts?phone=13800138000", "1.1", 200
    )

    # caplog's handler has no filter of SMR's: the logger's own filter did the work.
    assert caplog.records[-1].getMessage().endswith('/v1/contacts?phone=138****8000 HTTP/1.1" 200')


def test_a_secret_given_as_an_argument_is_redacted(
    lines: tuple[io.StringIO, list[logging.Handler]],
) -> None:
    stream = install(lines, "text")

    logging.getLogger("smr.test").warning(
        "calling back with token=%s for %s", "s3cr3t", 13800138000
    )

    assert "s3cr3t" not in stream.getvalue()
    assert "13800138000" not in stream.getvalue()
    assert "token=[redacted] for 138****8000" in stream.getvalue()


def test_a_phone_in_a_traceback_is_masked(lines: tuple[io.StringIO, list[logging.Handler]]) -> None:
    stream = install(lines, "text")

    try:
        raise ValueError("vendor refused 13800138000")
    except ValueError:
        logging.getLogger("smr.test").exception("send failed")

    assert "13800138000" not in stream.getvalue()
    assert "ValueError: vendor refused 138****8000" in stream.getvalue()


def test_json_lines_carry_the_ids_they_concern(
    lines: tuple[io.StringIO, list[logging.Handler]],
) -> None:
    stream = install(lines, "json")
    log = logging.getLogger("smr.test")

    with logs.request_scope("req-1"):
        logs.note_events(["ev_1"])
        log.warning("accepted for %s", "13800138000")
        with logs.bind(run_id="ru_1", delivery_id="de_1"):
            log.warning("sent\nin two lines")
    log.warning("outside", extra={"event_id": "ev_2"})

    first, second, third = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first["request_id"] == second["request_id"] == "req-1"
    assert first["event_id"] == second["event_id"] == "ev_1"
    assert first["message"] == "accepted for 138****8000"
    assert (first["level"], first["logger"]) == ("WARNING", "smr.test")
    assert (second["run_id"], second["delivery_id"], second["message"]) == (
        "ru_1",
        "de_1",
        "sent\nin two lines",
    )
    assert third["event_id"] == "ev_2"
    assert "request_id" not in third


def test_a_batch_names_its_first_events_and_counts_them(
    lines: tuple[io.StringIO, list[logging.Handler]],
) -> None:
    stream = install(lines, "json")

    with logs.request_scope("req-2"):
        logs.note_events([f"ev_{i}" for i in range(50)])
        logging.getLogger("smr.test").warning("batch")

    line = json.loads(stream.getvalue())
    assert line["event_ids"] == [f"ev_{i}" for i in range(20)]
    assert line["event_ids_count"] == 50


def test_text_lines_end_with_the_ids(lines: tuple[io.StringIO, list[logging.Handler]]) -> None:
    stream = install(lines, "text")

    with logs.bind(run_id="ru_1"):
        logging.getLogger("smr.test").warning("waking")

    assert stream.getvalue().rstrip().endswith("smr.test: waking [run_id=ru_1]")
