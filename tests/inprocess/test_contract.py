"""The contract as others read it: docs/asyncapi.yaml names every message of the Media
Routing API with what a client needs (answer, error codes, envelope, numbering). That the
generated files are the catalogue's and @asyncapi/cli finds it valid:
tests/processes/test_contract.py; a desk in another language: tests/browser/test_contract.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from wire.catalogue import SPECS

ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI = ROOT / "docs" / "asyncapi.yaml"


# protocol.md 1.1: what Chat Servers push to General; and ours (1.2): the beat and Resync.
GENERAL_REQUESTS = {"Connect", "Login", "AgentState", "Conference", "Transfer", "TaskState", "Task",
                    "GetAgentState", "GetTaskState", "Heartbeat", "Resync"}


def load_document() -> dict[str, Any]:
    document = yaml.safe_load(ASYNCAPI.read_text())
    assert isinstance(document, dict)
    return document


def resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def channel_messages(document: dict[str, Any], channel: str) -> dict[str, dict[str, Any]]:
    """A channel's messages by name, each resolved to its components.messages entry."""
    return {name: resolve(document, entry["$ref"])
            for name, entry in document["channels"][channel]["messages"].items()}


def test_asyncapi_document_names_every_message_of_the_media_routing_api() -> None:
    document = load_document()
    messages = document["components"]["messages"]
    missing = [f"{spec.queue}.{spec.type}" for spec in SPECS if f"{spec.queue}.{spec.type}" not in messages]
    assert not missing, f"the catalogue's messages missing from components.messages: {missing}"

    general = channel_messages(document, "General")
    assert set(general) == GENERAL_REQUESTS, (
        f"General lists {sorted(general)}; protocol.md 1.1 (+ Heartbeat, Resync) has {sorted(GENERAL_REQUESTS)}")
    for name, message in general.items():
        assert message.get("x-answer"), f"General.{name} has no x-answer"
        assert f"ChatEvents.{message['x-answer']}" in messages, f"General.{name}'s answer {message['x-answer']} " \
                                                               f"is not a ChatEvents message"
        assert message.get("x-error-codes"), f"General.{name} has no x-error-codes"
        payload = message["payload"]
        for envelope in ("MsgId", "ReplyTo"):
            assert envelope in payload["properties"], f"General.{name} has no {envelope} in its payload"
        assert "ReplyTo" in payload["required"], f"General.{name} does not require ReplyTo"

    chat_events = channel_messages(document, "ChatEvents")
    assert chat_events, "the ChatEvents channel lists no messages"
    for name, message in chat_events.items():
        for numbering in ("Seq", "Stream"):
            assert numbering in message["payload"]["properties"], f"ChatEvents.{name} has no {numbering}"
