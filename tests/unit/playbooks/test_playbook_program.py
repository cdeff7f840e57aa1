from smr.playbooks.program import Jump, JumpUnless
from smr.playbooks.steps.send import Send
from smr.playbooks.steps.stop import Stop
from smr.playbooks.steps.tag import Tag
from smr.playbooks.steps.wait import Wait
from tests.unit.playbooks.playbook_support import load_playbook

NESTED = """\
    id: nested
    name: 嵌套
    trigger: {event: order.paid}
    steps:
      - tag: {add: [a]}
      - if: "contact.stats.orders > 1"
        then:
          - if: "'vip' in contact.tags"
            then:
              - send: {channel: mock, text: vip}
          - wait: 1d
        else:
          - stop: {}
      - send: {channel: mock, text: done}
    """


def test_nested_if_flattens_with_absolute_jump_targets() -> None:
    program = load_playbook(NESTED).program.instructions
    summary = [(type(i).__name__, i.step_path) for i in program]
    assert summary == [
        ("Tag", "steps[0]"),
        ("JumpUnless", "steps[1]"),
        ("JumpUnless", "steps[1].then[0]"),
        ("Send", "steps[1].then[0].then[0]"),
        ("Wait", "steps[1].then[1]"),
        ("Jump", "steps[1]"),
        ("Stop", "steps[1].else[0]"),
        ("Send", "steps[2]"),
    ]
    outer, inner, jump = program[1], program[2], program[5]
    assert isinstance(outer, JumpUnless)
    assert isinstance(inner, JumpUnless)
    assert isinstance(jump, Jump)
    assert (outer.target, inner.target, jump.target) == (6, 4, 7)


def test_instruction_payloads() -> None:
    program = load_playbook(NESTED).program.instructions
    tag, wait, stop, send = program[0], program[4], program[6], program[7]
    assert isinstance(tag, Tag)
    assert [t.source for t in tag.add] == ["a"]
    assert isinstance(wait, Wait)
    assert wait.duration is not None
    assert wait.duration.days == 1
    assert isinstance(stop, Stop)
    assert isinstance(send, Send)
    assert send.text is not None
    assert send.text.source == "done"
    assert send.category == "marketing"
