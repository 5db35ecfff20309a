"""Outbound preview (protocol.md 2.1): the dialer offers a number to a READY agent, who is
then RESERVED_OUTBOUND_PREVIEW; accepted, the number rings (RESERVED_OUTBOUND) and answers
after a delay; rejected or closed, the offer ends."""

from __future__ import annotations

from wire import gc as G, voice as V

from .agents import Agents, VoiceAgent
from .dialogs import Dialogs
from .refusals import require


class Preview:
    def __init__(self, agents: Agents, dialogs: Dialogs):
        self.agents = agents
        self.dialogs = dialogs

    def offer(self, agent_id: str, number: str) -> str:
        """The dialer's offer (the control verb `preview`): the new dialog's id."""
        agent = self.agents.by_id.get(agent_id)
        if agent is None or agent.state != V.READY:
            raise G.CommandError(G.INVALID_STATE, f"{agent_id} cannot take a preview now", "preview")
        dialog = self.dialogs.new(number, agent.extension, V.OUTBOUND_PREVIEW)
        dialog.join(agent.extension, V.ALERTING)
        dialog.state = V.ALERTING
        self.agents.on_call(agent, V.RESERVED_OUTBOUND_PREVIEW)
        self.dialogs.publish(dialog, "OutboundCall")
        return dialog.dialog_id

    def answer(self, agent: VoiceAgent, args: dict[str, str], action: str, command: str) -> None:
        """The agent's answer to an open offer: ACCEPT, REJECT or CLOSE, as its command says
        (and as its optional parameter repeats)."""
        dialog, party = self.dialogs.of(agent, args["dialog_id"], command)
        require(dialog.call_type == V.OUTBOUND_PREVIEW and dialog.state == V.ALERTING, command,
                f"{dialog.dialog_id} is not an open preview")
        given = args.get("action", action).upper()
        if given != action:
            raise G.CommandError(G.BAD_COMMAND, f"{command} takes {action}, not {given}", command)
        if action == "ACCEPT":
            dialog.state, party.state = V.ACCEPTED, V.ACTIVE
            dialog.join(dialog.from_address, V.ALERTING)
            self.agents.set_state(agent, V.RESERVED_OUTBOUND)
            self.dialogs.answers_later(dialog, dialog.from_address)
            self.dialogs.publish(dialog, "OutboundCall")
        else:
            self.dialogs.leave(dialog, agent.extension)

    def accept(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.answer(agent, args, "ACCEPT", "AcceptOutboundPreview")

    def reject(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.answer(agent, args, "REJECT", "RejectOutboundPreview")

    def close(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.answer(agent, args, "CLOSE", "CloseOutboundPreview")
