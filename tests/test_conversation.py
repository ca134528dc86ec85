"""The conversation model: branches as data, what the model sees, export and import."""

from __future__ import annotations

import json

import pytest

from zeta_desktop.core.conversation import exchange
from zeta_desktop.core.conversation.model import Conversation, MessageStatus


def _chat() -> Conversation:
    conversation = Conversation.new("sys")
    q1 = conversation.add(None, "user", "first question")
    conversation.add(q1.id, "assistant", "first answer")
    q2 = conversation.add(conversation.info.leaf_id, "user", "second question")
    conversation.add(q2.id, "assistant", "second answer")
    return conversation


def test_an_edit_is_a_branch_and_both_versions_stay() -> None:
    conversation = _chat()
    q2 = conversation.visible()[2]
    edited = conversation.add(q2.parent_id, "user", "second question, edited")
    assert [m.content for m in conversation.visible()][-1] == "second question, edited"
    assert conversation.siblings(edited.id) == [q2.id, edited.id]
    conversation.select(q2.id)  # back to the old version, down to its answer
    assert [m.content for m in conversation.visible()][-2:] == ["second question",
                                                                 "second answer"]


def test_history_is_the_branch_shown_without_failed_answers() -> None:
    conversation = _chat()
    last = conversation.visible()[-1]
    failed = conversation.add(last.id, "user", "third")
    bad = conversation.add(failed.id, "assistant", "", MessageStatus.FAILED)
    q4 = conversation.add(bad.id, "user", "fourth")
    answer = conversation.add(q4.id, "assistant", "", MessageStatus.PENDING)
    assert conversation.history_for(answer.id) == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
        {"role": "assistant", "content": "second answer"},
        {"role": "user", "content": "fourth"},
    ]


def test_the_title_comes_from_the_first_prompt() -> None:
    conversation = Conversation.new()
    conversation.add(None, "user", "  How do   I\nreverse a list " + "x" * 100)
    assert conversation.info.title.startswith("How do I reverse a list")
    assert len(conversation.info.title) <= 60 and conversation.info.title.endswith("…")


def test_json_export_round_trips_every_branch() -> None:
    conversation = _chat()
    q2 = conversation.visible()[2]
    conversation.add(q2.parent_id, "user", "an edit")
    copy = exchange.from_json_text(exchange.dumps(conversation))
    assert copy.id != conversation.id and len(copy) == len(conversation)
    assert [m.content for m in copy.visible()] == [m.content for m in conversation.visible()]
    assert {m.id for m in copy.all_messages()}.isdisjoint(
        {m.id for m in conversation.all_messages()})


def test_markdown_export_shows_the_branch_and_the_system_prompt() -> None:
    text = exchange.to_markdown(_chat())
    assert text.startswith("# first question\n")
    assert "> System prompt: sys" in text
    assert text.index("first answer") < text.index("second question")


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "the file must be dict"),
        ('{"format": "other"}', "not a Zeta Desktop conversation"),
        ('{"format": "zeta-desktop.conversation", "version": 99}', "version 99"),
        ('{"format": "zeta-desktop.conversation", "version": 1, "conversation": {},'
         ' "messages": [{"id": "a", "parent_id": "zz", "author": "user", "content": "x"}]}',
         "names no earlier message"),
        ('{"format": "zeta-desktop.conversation", "version": 1, "conversation": {},'
         ' "messages": [{"id": "a", "author": "robot", "content": "x"}]}', "author"),
        ('{"format": "zeta-desktop.conversation", "version": 1, "conversation": {},'
         ' "messages": [{"id": "a", "author": "user", "content": 5}]}', "content must be str"),
    ],
)
def test_a_malformed_import_says_what_is_wrong(body: str, complaint: str) -> None:
    with pytest.raises(exchange.ConversationFormatError, match=complaint):
        exchange.from_json_text(body)


def test_an_imported_answer_left_streaming_is_interrupted() -> None:
    data = exchange.to_json(_chat())
    data["messages"][-1]["status"] = "streaming"
    copy = exchange.from_json_text(json.dumps(data))
    assert copy.visible()[-1].status is MessageStatus.INTERRUPTED


def test_exports_keep_the_thinking_and_the_answer() -> None:
    conversation = Conversation.new()
    question = conversation.add(None, "user", "is 91 prime?")
    answer = conversation.add(question.id, "assistant", "<think>\n91 = 7 x 13\n</think>\n\nNo.")
    answer.meta.thinking_s = 3.2
    text = exchange.to_markdown(conversation)
    assert "<details><summary>Thought for 3 s</summary>\n\n91 = 7 x 13\n\n</details>" in text
    assert text.index("</details>") < text.index("No.")
    copy = exchange.from_json_text(exchange.dumps(conversation))
    assert copy.visible()[-1].content == answer.content  # the JSON keeps the text as it came
