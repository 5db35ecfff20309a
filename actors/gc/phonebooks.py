"""Phonebooks and their contacts (protocol.md 2.1-2.2), the one owner of them: the global
ones and each team's; the topology's, else ours."""

from __future__ import annotations

from typing import Any

from wire import gc as G

from .agents import Agents, VoiceAgent

DEFAULT_PHONEBOOKS = [{"id": "pb1", "name": "Global", "type": "GLOBAL", "team": "",
                       "contacts": [{"firstName": "Help", "lastName": "Desk", "phoneNumber": "5551000",
                                     "description": "internal help desk"}]}]


class Phonebooks:
    def __init__(self, configured: list[dict[str, Any]] | None, agents: Agents):
        self.books = configured or DEFAULT_PHONEBOOKS
        self.agents = agents

    def get_phonebooks(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        """The global phonebooks and the agent's team's."""
        self.agents.tell(agent, {"type": "PhoneBooks", "phonebooks": [
            {"id": b["id"], "name": b["name"], "type": b.get("type", "GLOBAL")} for b in self.books
            if b.get("type") == "GLOBAL" or b.get("team") == agent.team]})

    def get_team_phonebooks(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.agents.tell(agent, {"type": "PhoneBooks", "phonebooks": [
            {"id": b["id"], "name": b["name"], "type": b.get("type", "TEAM")} for b in self.books
            if b.get("team") == args["team_id"]]})

    def get_contacts(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        book = next((b for b in self.books if b["id"] == args["phonebook_id"]), None)
        if book is None:
            raise G.CommandError(G.NOT_FOUND, f"no phonebook {args['phonebook_id']!r}", "getcontacts")
        self.agents.tell(agent, {"type": "Contacts", "phonebookId": book["id"], "contacts": book.get("contacts", [])})
