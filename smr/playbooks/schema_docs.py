"""Titles and descriptions the JSON Schemas show in an editor, in the words of the ops team.

Keyed by model class name, then by the field's YAML spelling. Every model and every field of the
playbook and policies files has an entry; the schema generator fails on a missing one. Each step
kind brings its own (``StepKind.models``, ``StepKind.fields``).
"""

from smr.playbooks import attachments, group_welcome
from smr.playbooks.steps import STEPS

Doc = tuple[str, str]

MODEL_DOCS: dict[str, Doc] = {
    **{name: doc for kind in STEPS for name, doc in kind.models.items()},
    **attachments.MODEL_DOCS,
    **group_welcome.MODEL_DOCS,
    "Playbook": (
        "Playbook · 剧本",
        "One tactic: what starts it, the steps it takes, what ends it. 一个文件一个剧本。",
    ),
    "EventTrigger": (
        "Event trigger · 事件触发",
        "Start a run when an event arrives. 收到事件时开始。",
    ),
    "ScheduleTrigger": (
        "Schedule trigger · 定时触发",
        "Start one run per audience contact at each cron time. 按时间给目标人群各开始一次。",
    ),
    "Audience": ("Audience · 目标人群", "Who a scheduled playbook reaches. 定时剧本的目标客户。"),
    "GroupTarget": (
        "Groups · 目标客户群",
        "The customer groups a scheduled playbook runs for, one run each. "
        "每个符合条件的群各运行一次。",
    ),
    "IfStep": ("If step · 条件分支", "Run 'then' or 'else' depending on a condition. 条件分支。"),
    "ExitRule": (
        "Exit rule · 退出条件",
        "An active run ends when this event arrives for the same contact. 收到该事件时结束。",
    ),
    "Goal": (
        "Goal · 目标",
        "A run converts when this event comes within the window after its first message. "
        "剧本的目标：发出第一条消息后多久内发生该事件算转化。",
    ),
    "Policies": (
        "Policies · 发送策略",
        "Timezone, quiet hours, frequency caps and shared values for all playbooks. 全局策略。",
    ),
    "QuietHours": (
        "Quiet hours · 免打扰时段",
        "Marketing messages due inside wait for the window's end. 时段内的营销消息延后发送。",
    ),
    "FrequencyCap": (
        "Frequency cap · 频次上限",
        "At most this many marketing messages per contact in a period. 每人每段时间最多几条。",
    ),
    "RateLimit": (
        "Rate limit · 发送速率限制",
        "At most this many sends on a channel in any period; the rest wait. "
        "渠道在任意时间段内最多发送几条，超出的顺延发送。",
    ),
}

_IF = ("Condition · 条件", "Only when this is true. 为真时才执行。")

FIELD_DOCS: dict[str, dict[str, Doc]] = {
    **{name: dict(docs) for kind in STEPS for name, docs in kind.fields.items()},
    **attachments.FIELD_DOCS,
    **group_welcome.FIELD_DOCS,
    "Playbook": {
        "id": ("Id · 编号", "Unique id of the playbook. 唯一编号。"),
        "name": ("Name · 名称", "A name people read. 显示名称。"),
        "enabled": ("Enabled · 启用", "false pauses the playbook. 设为 false 暂停。"),
        "mode": (
            "Mode · 重复触发",
            "A new trigger while a run is active: single ignores it, restart ends the run and "
            "starts again, parallel runs both. 运行中再次触发时的处理。",
        ),
        "cooldown": (
            "Cooldown · 冷却",
            "No new start within this long of the last one. 距上次开始多久内不再开始。",
        ),
        "delivery": (
            "Delivery · 投递",
            "dry_run records messages without sending them. dry_run 只记录不发送。",
        ),
        "trigger": ("Trigger · 触发", "What starts a run. 什么时候开始。"),
        "steps": ("Steps · 步骤", "What the run does, in order. 按顺序执行的步骤。"),
        "exit_on": ("Exit on · 退出条件", "Events that end an active run. 收到即结束的事件。"),
        "goal": ("Goal · 目标", "What the playbook is for, counted in its report. 剧本的目标。"),
        "group_welcome": (
            "Group welcome · 入群欢迎语",
            "A WeCom group welcome template, kept in WeCom by SMR. "
            "由 SMR 同步到企业微信的入群欢迎语素材。",
        ),
    },
    "EventTrigger": {
        "event": ("Event · 事件", "The event type that starts a run. 触发事件类型。"),
        "if": _IF,
        "keywords": (
            "Keywords · 关键词",
            "Any of these in the chat text (case-insensitive). 聊天内容包含任一关键词。",
        ),
        "segment": (
            "Segment · 分层",
            "Start a run when a customer enters (or leaves) this segment. "
            "客户进入（或离开）这个分层时开始运行。",
        ),
        "on": ("On · 时机", "entered (default) or exited. 进入（默认）或离开。"),
        "each": (
            "Each · 逐项",
            "A list expression: one run per item (run.item); needs mode: parallel. "
            "列表表达式：每一项开始一个运行（run.item），需要 mode: parallel。",
        ),
    },
    "ScheduleTrigger": {
        "schedule": ("Schedule · 定时", "When to fire. 触发时间。"),
        "audience": ("Audience · 目标人群", "Who to reach. 目标客户。"),
        "groups": (
            "Groups · 目标客户群",
            "Run once per customer group instead of per customer. 按客户群运行（每群一次）。",
        ),
        "once": (
            "Once · 只运行一次",
            "Run once per firing, for the corp (Moments posts). 每次只运行一次，用于发朋友圈。",
        ),
    },
    "GroupTarget": {
        "owner": ("Owner · 群主", "Groups owned by these staff userids. 群主的 userid。"),
        "name_contains": (
            "Name contains · 群名包含",
            "Groups whose name contains this. 群名包含。",
        ),
        "tags_any": ("Has any tag · 含任一群标签", "Groups with any of these tags. 任一群标签。"),
        "tags_none": ("Has none of · 不含群标签", "Skip groups with any of these tags. 排除。"),
    },
    "Audience": {
        "segment": (
            "Segment · 分层",
            "Only the customers in this segment (segments/). 只发给这个分层里的客户。",
        ),
        "tags_any": (
            "Has any tag · 含任一标签",
            "Contacts with at least one of these tags. 任一。",
        ),
        "tags_none": ("Has none of · 不含标签", "Skip contacts with any of these tags. 排除。"),
        "if": _IF,
    },
    "IfStep": {
        "if": ("If · 如果", "The condition. 条件。"),
        "then": ("Then · 则", "Steps when the condition is true. 条件为真时的步骤。"),
        "else": ("Else · 否则", "Steps when it is false. 条件为假时的步骤。"),
    },
    "ExitRule": {
        "event": ("Event · 事件", "The event type that ends the run. 结束运行的事件类型。"),
        "if": _IF,
    },
    "Goal": {
        "event": ("Event · 事件", "The event type that converts the run. 算转化的事件类型。"),
        "within": ("Within · 时限", "How long after the first message (or start). 时限，默认 7d。"),
        "if": _IF,
        "from": (
            "From · 起算",
            "send: from the run's first sent message (default); start: from its start. "
            "从第一条消息发出（默认）还是从开始算。",
        ),
    },
    "Policies": {
        "timezone": ("Timezone · 时区", "IANA name, e.g. Asia/Shanghai. 时区。"),
        "quiet_hours": ("Quiet hours · 免打扰", "No marketing messages inside. 免打扰时段。"),
        "frequency_caps": ("Frequency caps · 频次上限", "Limits per contact. 每人发送上限。"),
        "require_consent": (
            "Require consent · 需客户同意",
            "Channels whose marketing needs the customer's recorded consent (contact.consented); "
            "default [sms]. 这些渠道的营销消息需客户同意后才发，默认短信。",
        ),
        "on_cap": (
            "On cap · 超限处理",
            "skip drops a capped message; defer sends it later. skip 丢弃，defer 延后。",
        ),
        "rate_limits": (
            "Rate limits · 发送速率限制",
            "Sends per channel (each staff member or contact apart, with key); a listed channel "
            "takes these instead of its built-in limits. 按渠道限速，列出的渠道以此为准。",
        ),
        "vars": ("Vars · 变量", "Shared values, {{ vars.name }} in templates. 模板共享变量。"),
        "wecom_tags": (
            "WeCom tags · 企业微信标签",
            "Tag → WeCom corp tag id (et…); tag steps also mark it in WeCom. "
            "标签映射到企业标签 ID，打标签时同步到企业微信。",
        ),
    },
    "QuietHours": {
        "from": ("From · 开始", "Start of the quiet window. 开始时间。"),
        "to": ("To · 结束", "End of the quiet window. 结束时间。"),
    },
    "FrequencyCap": {
        "max": ("Max · 最多", "Most messages in the period. 最多几条。"),
        "per": ("Per · 每", "The period, e.g. 1d or 7d. 时间段。"),
    },
    "RateLimit": {
        "channel": ("Channel · 渠道", "The channel limited, e.g. staff or sms. 限速的渠道。"),
        "max": ("Max · 最多", "Most sends in the period. 最多几条。"),
        "per": ("Per · 每", "The period, e.g. 1s or 1m. 时间段。"),
        "key": (
            "Key · 分别计数",
            "staff: each staff member apart; contact: each contact apart; none: all together. "
            "staff 按员工分别计数，contact 按客户，不填则合计。",
        ),
    },
}
