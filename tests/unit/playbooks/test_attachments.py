"""A send step's ``attachments``: the YAML forms, what is refused and where, and rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from smr import content
from smr.content import Image, Link, Media, MiniProgram
from smr.playbooks.attachments import (
    ATTACHMENT_TAGS,
    Attachments,
    AttachmentSpec,
    compile_attachments,
)
from smr.playbooks.expressions import TemplateRuntimeError

MEDIA_ROOT = Path(__file__).resolve().parents[2] / "fixtures"  # holds media/poster.png …
ATTACHMENTS: TypeAdapter[list[AttachmentSpec]] = TypeAdapter(Attachments)
CONTEXT = {
    "contact": {"id": "ct_1", "name": "小王"},
    "trigger": {"data": {"items": [{"sku": "SKU-9"}]}},
}
EVERY_KIND: list[dict[str, Any]] = [
    {"image": "media/poster.png"},
    {
        "link": {
            "title": "新品上市",
            "url": "https://shop.example.com/new?c={{ contact.id }}",
            "description": "{{ contact.name }}，看看新品",
            "picture": "media/cover.jpg",
        }
    },
    {
        "miniprogram": {
            "appid": "wx8bd80126147dfAAA",
            "page": "/pages/item?sku={{ trigger.data.items[0].sku }}",
            "title": "立即购买",
            "cover": "media/poster.png",
        }
    },
    {"video": "media/intro.mp4"},
    {"file": "media/manual.pdf"},
]


def validate(data: Any, *, base_dir: Path | None = MEDIA_ROOT) -> list[AttachmentSpec]:
    context = {"base_dir": base_dir} if base_dir is not None else {}
    return ATTACHMENTS.validate_python(data, context=context)


def errors_of(data: Any, *, base_dir: Path | None = MEDIA_ROOT) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as raised:
        validate(data, base_dir=base_dir)
    return [
        (
            ".".join(str(p) for p in e["loc"] if p not in ATTACHMENT_TAGS),
            e["msg"].removeprefix("Value error, "),
        )
        for e in raised.value.errors()
    ]


def test_every_kind_renders_to_its_content_type() -> None:
    rendered = [a.render(CONTEXT) for a in compile_attachments(validate(EVERY_KIND))]

    assert rendered == [
        content.Image(Media(path="media/poster.png")),
        Link(
            title="新品上市",
            url="https://shop.example.com/new?c=ct_1",
            description="小王，看看新品",
            picture=Media(path="media/cover.jpg"),
        ),
        MiniProgram(
            appid="wx8bd80126147dfAAA",
            page="/pages/item?sku=SKU-9",
            title="立即购买",
            cover=Media(path="media/poster.png"),
        ),
        content.Video(Media(path="media/intro.mp4")),
        content.File(Media(path="media/manual.pdf")),
    ]


def test_rendered_attachments_survive_the_delivery_row() -> None:
    rendered = [a.render(CONTEXT) for a in compile_attachments(validate(EVERY_KIND))]

    assert [content.from_json(content.as_json(a)) for a in rendered] == rendered


def test_a_media_url_may_be_templated_after_its_host() -> None:
    (spec,) = validate([{"image": "https://cdn.example.com/sku/{{ contact.id }}.png"}])
    (compiled,) = compile_attachments([spec])

    assert compiled.render(CONTEXT) == Image(Media(url="https://cdn.example.com/sku/ct_1.png"))


def test_a_failing_template_raises_template_runtime_error() -> None:
    link = {"link": {"title": "{{ contact.nope }}", "url": "https://example.com"}}
    (compiled,) = compile_attachments(validate([link]))

    with pytest.raises(TemplateRuntimeError):
        compiled.render(CONTEXT)


def test_ten_attachments_are_refused() -> None:
    assert errors_of([{"image": "media/poster.png"}] * 10) == [
        ("", "List should have at most 9 items after validation, not 10")
    ]


def test_an_attachment_names_exactly_one_kind() -> None:
    message = "an attachment needs exactly one of: image, link, miniprogram, video, file"
    assert errors_of([{"picture": "media/poster.png"}]) == [("0", message)]
    assert errors_of([{"image": "media/poster.png", "video": "media/intro.mp4"}]) == [
        ("0", message)
    ]


def test_a_missing_file_is_named_when_the_folder_is_known() -> None:
    assert errors_of([{"file": "media/missing.pdf"}]) == [
        (
            "0.file",
            f"no file 'media/missing.pdf' in the playbooks folder ({MEDIA_ROOT})",
        )
    ]
    assert validate([{"file": "media/missing.pdf"}], base_dir=None)  # without it: not checked


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("../secrets.png", "'../secrets.png' leaves the playbooks folder ('..' is not allowed)"),
        ("media/../../x.png", "'media/../../x.png' leaves the playbooks folder ('..' is not"
                              " allowed)"),
        ("/etc/poster.png", "'/etc/poster.png': write a path relative to the playbooks folder"),
        ("media\\poster.png", "'media\\poster.png': write a path relative to the playbooks folder"),
        ("media/poster.gif", "image takes jpg, jpeg, png files, not 'media/poster.gif'"),
        ("http://cdn.example.com/a.png", "'http://cdn.example.com/a.png' is not an https URL"
                                         " (http is not allowed)"),
        (
            "{{ contact.id }}.png",
            "a templated media URL starts with a written-out https://host/"
            " (only the part after the host may use {{ }})",
        ),
    ],
)  # fmt: skip
def test_bad_image_sources_are_refused(source: str, message: str) -> None:
    assert errors_of([{"image": source}]) == [("0.image", message)]


def test_a_video_must_be_mp4_and_a_file_may_be_anything() -> None:
    assert errors_of([{"video": "media/poster.png"}]) == [
        ("0.video", "video takes mp4 files, not 'media/poster.png'")
    ]
    assert validate([{"file": "media/poster.png"}])


def test_a_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes((MEDIA_ROOT / "media" / "poster.png").read_bytes())
    (tmp_path / "playbooks" / "media").mkdir(parents=True)
    (tmp_path / "playbooks" / "media" / "poster.png").symlink_to(outside)

    assert errors_of([{"image": "media/poster.png"}], base_dir=tmp_path / "playbooks") == [
        (
            "0.image",
            "'media/poster.png' leads out of the playbooks folder (a symlink?)",
        )
    ]


def test_a_file_too_small_for_wecom_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tiny.png").write_bytes(b"\x89PNG")

    assert errors_of([{"image": "tiny.png"}], base_dir=tmp_path) == [
        (
            "0.image",
            "'tiny.png' is 4 bytes; WeCom takes image files of 6 to 10,485,760 bytes",
        )
    ]


def test_link_limits_are_checked_on_the_written_text() -> None:
    long_title = "标" * 43  # 129 bytes
    link = {"title": long_title + "{{ contact.name }}", "url": "http://example.com"}

    assert errors_of([{"link": link}]) == [
        ("0.link.title", "title is 129 bytes; WeCom takes at most 128"),
        (
            "0.link.url",
            "'http://example.com' is not an https URL (http is not allowed)",
        ),
    ]


def test_a_link_url_written_by_a_template_waits_for_the_send() -> None:
    assert validate([{"link": {"title": "看看", "url": "{{ contact.name }}"}}])


def test_a_card_title_takes_64_bytes_and_a_wx_appid() -> None:
    card = {"appid": "gh_123", "page": "/p", "title": "卡" * 22, "cover": "media/poster.png"}

    assert [loc for loc, _ in errors_of([{"miniprogram": card}])] == [
        "0.miniprogram.appid",
        "0.miniprogram.title",
    ]


def test_unknown_fields_are_refused() -> None:
    link = {"title": "看看", "url": "https://example.com", "picurl": "media/poster.png"}

    assert errors_of([{"link": link}]) == [("0.link.picurl", "Extra inputs are not permitted")]
