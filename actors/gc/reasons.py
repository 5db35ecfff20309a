"""Reason codes (protocol.md 2.1, ReasonCodes in 2.3), the one owner of them: what an agent
may give for NOT_READY and LOGOUT, and for a call's wrap-up; the topology's, else ours."""

from __future__ import annotations

from typing import Any

from .agents import Agents, VoiceAgent

DEFAULT_REASONS = {
    "NOT_READY": [{"id": "1", "label": "Break"}, {"id": "2", "label": "Lunch"}, {"id": "3", "label": "Training"}],
    "LOGOUT": [{"id": "10", "label": "End of shift"}, {"id": "11", "label": "Emergency"}],
    "WRAP_UP": [{"id": "20", "label": "Resolved"}, {"id": "21", "label": "Follow-up needed"}],
}


class ReasonCodes:
    def __init__(self, configured: dict[str, list[dict[str, Any]]] | None, agents: Agents):
        self.codes = configured or DEFAULT_REASONS   # category -> [{id, label}]
        self.agents = agents

    def known(self, category: str, code: str, labels_too: bool = False) -> bool:
        """Whether `code` is one of the category's ids (or labels): any is, when it has none."""
        codes = {c["id"] for c in self.codes.get(category, [])}
        if labels_too:
            codes |= {c["label"] for c in self.codes.get(category, [])}
        return not codes or code in codes

    def tell(self, agent: VoiceAgent, category: str) -> None:
        self.agents.tell(agent, {"type": "ReasonCodes", "category": category, "codes": self.codes.get(category, [])})

    def wrap_up_codes(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.tell(agent, "WRAP_UP")

    def logout_codes(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.tell(agent, "LOGOUT")

    def not_ready_codes(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.tell(agent, "NOT_READY")
