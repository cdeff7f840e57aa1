"""A playbook's ``group_welcome``: the 入群欢迎语素材 (group welcome template) WeCom greets
every customer who joins a group with, once the staff apply it to their groups.

```yaml
group_welcome:
  text: "欢迎 %NICKNAME% 加入{{ vars.shop_name }}会员群！"   # %NICKNAME%: the joiner's nickname
  attachments:                                             # at most ONE
    - miniprogram: {appid: wx…, page: /pages/index, title: 会员中心, cover: media/card.png}
  notify: true                                             # WeCom asks the staff to apply it
```

SMR renders the template once, not per joiner, so its texts may read ``vars`` only; WeCom
itself writes each joiner's nickname where ``%NICKNAME%`` stands (case-sensitive). WeCom
sends the text and one other item (image, link, mini-program card, file or video) as two
messages, and keeps only one such item, so a second is refused here. The text's written
parts are checked against WeCom's 3,000 bytes here, the rendered text when it is sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from smr import content
from smr.playbooks.attachment_fields import static_bytes
from smr.playbooks.attachments import (
    Attachments,
    AttachmentSpec,
    CompiledAttachment,
    compile_attachments,
)
from smr.playbooks.expressions import Template, compile_template
from smr.playbooks.fields import TemplateText
from smr.playbooks.strict import StrictModel

#: WeCom's limit on text.content (group_welcome_template/add), in UTF-8 bytes.
TEXT_BYTES = 3000
NICKNAME = "%NICKNAME%"
#: The only context a group welcome is rendered with: it is the same for every joiner.
CONTEXT_NAMES = frozenset({"vars"})


def _names_of(templates: Iterator[Template]) -> set[str]:
    return {name for template in templates for name in template.names}


def _vars_only(names: set[str], what: str) -> None:
    other = sorted(names - CONTEXT_NAMES)
    if other:
        raise ValueError(
            f"{what} reads {', '.join(other)}, but a group welcome is written once for every "
            f"joiner: use vars only, and {NICKNAME} for the joiner's nickname"
        )


def _check_text(value: str) -> str:
    _vars_only(set(compile_template(value).names), "the text")
    size = static_bytes(value)
    if size > TEXT_BYTES:
        raise ValueError(f"the text is {size} bytes; WeCom takes at most {TEXT_BYTES}")
    return value


def _check_attachments(specs: list[AttachmentSpec]) -> list[AttachmentSpec]:
    if len(specs) > 1:
        raise ValueError(
            f"{len(specs)} attachments; WeCom sends a group welcome's text and ONE other item"
        )
    _vars_only(_names_of(_templates(compile_attachments(specs))), "the attachment")
    return specs


def _templates(items: tuple[CompiledAttachment, ...]) -> Iterator[Template]:
    for item in items:
        media_url = item.media.url if item.media is not None else None
        for template in (item.title, item.url, item.description, item.page, media_url):
            if template is not None:
                yield template


WelcomeText = Annotated[TemplateText, AfterValidator(_check_text)]
OneAttachment = Annotated[
    Attachments, AfterValidator(_check_attachments), Field(json_schema_extra={"maxItems": 1})
]


class GroupWelcome(StrictModel):
    text: WelcomeText | None = None
    attachments: OneAttachment = Field(default_factory=list)
    notify: bool = True

    @model_validator(mode="after")
    def _has_content(self) -> GroupWelcome:
        if self.text is None and not self.attachments:
            raise ValueError("a group welcome needs 'text' or an attachment")
        return self


@dataclass(frozen=True, slots=True)
class WelcomeContent:
    """A group welcome template as WeCom takes it: its text and at most one other item."""

    text: str | None
    attachment: content.Attachment | None
    notify: bool

    def as_json(self) -> dict[str, Any]:
        """The content, as the hash of what WeCom has is taken over (``notify`` excluded:
        WeCom's edit cannot change it)."""
        item = content.as_json(self.attachment) if self.attachment is not None else None
        return {"text": self.text, "attachment": item}


@dataclass(frozen=True, slots=True)
class CompiledWelcome:
    text: Template | None
    attachment: CompiledAttachment | None
    notify: bool

    def render(self, variables: Mapping[str, Any]) -> WelcomeContent:
        """Raises TemplateRuntimeError (an unknown var), or ValueError (text too long)."""
        context = {"vars": variables}
        text = self.text.render(context) if self.text is not None else None
        if text is not None and len(text.encode()) > TEXT_BYTES:
            size = len(text.encode())
            raise ValueError(f"the rendered text is {size} bytes; WeCom takes {TEXT_BYTES}")
        attachment = self.attachment.render(context) if self.attachment is not None else None
        return WelcomeContent(text or None, attachment, self.notify)


def compile_welcome(spec: GroupWelcome) -> CompiledWelcome:
    text = compile_template(spec.text) if spec.text is not None else None
    items = compile_attachments(spec.attachments)
    return CompiledWelcome(text, items[0] if items else None, spec.notify)


#: The editor's titles and descriptions of the model ``group_welcome`` brings into the
#: playbook schema (see ``smr.playbooks.schema_docs``; attachments' are in ``attachments``).
MODEL_DOCS: dict[str, tuple[str, str]] = {
    "GroupWelcome": (
        "Group welcome template · 入群欢迎语素材",
        "What WeCom sends every customer joining the staff's groups, once they apply it. "
        "企业微信入群欢迎语素材：员工在群里设置后，新成员入群时由企业微信自动发送。",
    ),
}
FIELD_DOCS: dict[str, dict[str, tuple[str, str]]] = {
    "GroupWelcome": {
        "text": (
            "Text · 文本",
            f"Up to {TEXT_BYTES} bytes; {{{{ vars.* }}}} only, {NICKNAME} for the joiner's "
            f"nickname. 最多 {TEXT_BYTES} 字节；只能用 vars 变量，{NICKNAME} 会替换为新成员昵称。",
        ),
        "attachments": (
            "Attachment · 附件",
            "At most ONE: image, link, miniprogram, video or file. 最多一个附件。",
        ),
        "notify": (
            "Notify staff · 通知成员",
            "WeCom asks the staff to apply it to their groups (default true). "
            "是否通知成员将该欢迎语用于客户群（默认是）。",
        ),
    },
}
