"""Calls as dialogs (protocol.md 2.3-2.4), the one owner of the dialogs: how a call rings
(an agent's extension, an outside number that answers after a delay, or nothing there),
is answered and ends; what each participant may do now; who hears a Dialog event; and how
long an ended dialog is kept. An agent's state follows its calls through Agents."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

from wire import gc as G, voice as V

from .agents import Agents, VoiceAgent, stamp

EVENT_NAMES = {V.ACD_IN: "InboundCall", V.CONSULT: "ConsultCall", V.TRANSFER: "TransferCall",
               V.CONFERENCE: "ConferenceCall"}

DIALOG_KEPT = 300.0     # seconds an ended dialog is kept (wrap-up data is set after the call)


@dataclass
class Participant:
    address: str                      # an extension, or an outside number
    state: str
    cause: str = ""
    start: str = ""
    changed: str = ""
    silent: bool = False              # a supervisor monitoring

    def move(self, state: str, when: str | None = None) -> None:
        self.state, self.changed = state, when or stamp()


@dataclass
class Dialog:
    dialog_id: str
    from_address: str
    to_address: str
    call_type: str
    state: str = V.INITIATED
    associated: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    wrap_up_reason: str = ""
    participants: list[Participant] = field(default_factory=list)
    queued_at: float | None = None    # a queue call: when it arrived (acd.py)
    queue: str = ""                   # a queue call: its voice queue
    # Dialogs' index of who is on which dialog, told of each party that joins
    joined: Callable[["Dialog", str], None] = field(default=lambda dialog, address: None, repr=False,
                                                    compare=False)

    def party(self, address: str) -> Participant | None:
        return next((p for p in self.participants if p.address == address and p.state != V.DROPPED), None)

    def live(self) -> list[Participant]:
        return [p for p in self.participants if p.state not in V.ENDED]

    def join(self, address: str, state: str, cause: str = "", silent: bool = False) -> Participant:
        now = stamp()
        party = Participant(address, state, cause, now, now, silent=silent)
        self.participants.append(party)
        self.joined(self, address)
        return party


def event_name(dialog: Dialog) -> str:
    return EVENT_NAMES.get(dialog.call_type, "OutboundCall")


class Dialogs:
    def __init__(self, agents: Agents, call_later: Callable[..., Any], answer_delay: float):
        self.agents = agents
        self.call_later = call_later
        self.answer_delay = answer_delay  # s before an outside number answers
        self.by_id: dict[str, Dialog] = {}
        # an agent's extension -> the dialogs it joined that are not DROPPED (every party of one
        # is) nor forgotten: what is asked of an agent's calls looks at its own, not at every
        # dialog kept (a load's calls, ended ones kept DIALOG_KEPT)
        self.at: dict[str, set[str]] = {}
        self.ids = itertools.count(1)
        # the simulated people's hooks (callers.py): an agent's phone rings; an agent answers;
        # a dialog ended (told again when it is forgotten)
        self.rang: Callable[[Dialog, VoiceAgent], None] = lambda dialog, agent: None
        self.answered: Callable[[Dialog, Participant], None] = lambda dialog, party: None
        self.ended: Callable[[Dialog], None] = lambda dialog: None

    def new(self, caller: str, callee: str, call_type: str, associated: str = "",
            queued_at: float | None = None) -> Dialog:
        dialog = Dialog(f"d{next(self.ids)}", caller, callee, call_type, associated=associated, queued_at=queued_at,
                        joined=self.joined)
        self.by_id[dialog.dialog_id] = dialog
        return dialog

    def joined(self, dialog: Dialog, address: str) -> None:
        if address in self.agents.by_extension:
            self.at.setdefault(address, set()).add(dialog.dialog_id)

    def unindex(self, dialog: Dialog) -> None:
        for p in dialog.participants:
            ids = self.at.get(p.address)
            if ids is not None:
                ids.discard(dialog.dialog_id)
                if not ids:
                    del self.at[p.address]

    def of_extension(self, extension: str) -> list[Dialog]:
        """The dialogs an agent's extension is on (or was, in one not ended by `leave`)."""
        return [self.by_id[d] for d in sorted(self.at.get(extension, ()), key=lambda d: int(d[1:]))]

    # a dialog a command names, or NOT_FOUND ----------------------------------------------------
    def of(self, agent: VoiceAgent, dialog_id: str, command: str) -> tuple[Dialog, Participant]:
        """A dialog the agent is on now, and its part in it."""
        dialog = self.by_id.get(dialog_id)
        party = dialog.party(agent.extension) if dialog else None
        if dialog is None or party is None:
            raise G.CommandError(G.NOT_FOUND, f"no dialog {dialog_id!r} with {agent.agent_id}", command)
        return dialog, party

    def of_including_ended(self, agent: VoiceAgent, dialog_id: str, command: str) -> Dialog:
        """A dialog the agent was ever on, ended ones too: wrap-up data is set after the call."""
        dialog = self.by_id.get(dialog_id)
        if dialog is None or not any(p.address == agent.extension for p in dialog.participants):
            raise G.CommandError(G.NOT_FOUND, f"no dialog {dialog_id!r} with {agent.agent_id}", command)
        return dialog

    def known(self, dialog_id: str, command: str) -> Dialog:
        dialog = self.by_id.get(dialog_id)
        if dialog is None:
            raise G.CommandError(G.NOT_FOUND, f"no dialog {dialog_id!r}", command)
        return dialog

    def active_at(self, extension: str, command: str) -> Dialog:
        dialog = next((d for d in self.of_extension(extension) if d.state == V.ACTIVE and d.party(extension)), None)
        if dialog is None:
            raise G.CommandError(G.NOT_FOUND, f"no active call at extension {extension}", command)
        return dialog

    # what a participant may do, and who hears ----------------------------------------------------
    def actions(self, dialog: Dialog, p: Participant) -> list[str]:
        if p.silent:
            return []  # a monitor only listens: EndSilentMonitor or BargeCall change that
        if p.state == V.ALERTING:
            return ["ANSWER"]
        if p.state == V.ACTIVE:
            return ["HOLD", "DROP", "UPDATE_CALL_DATA", "CONSULT_CALL"]
        if p.state == V.HELD:
            consulting = any(d.associated == dialog.dialog_id and d.state in (V.ACTIVE, V.ALERTING)
                             for d in self.by_id.values())
            return ["RETRIEVE", "DROP", "UPDATE_CALL_DATA"] + (["TRANSFER", "CONFERENCE"] if consulting else [])
        if p.state == V.FAILED:
            return ["DROP"]
        if p.state == V.WRAP_UP:
            return ["UPDATE_CALL_DATA"]
        return []

    def event(self, dialog: Dialog, event: str, show_silent: bool = False) -> dict[str, Any]:
        return {"type": "Dialog", "event": event, "dialog": {
            "id": dialog.dialog_id, "fromAddress": dialog.from_address, "toAddress": dialog.to_address,
            "callType": dialog.call_type, "state": dialog.state, "associatedDialogId": dialog.associated,
            "callVariables": dict(dialog.variables), "wrapUpReason": dialog.wrap_up_reason,
            "participants": [{"mediaAddress": p.address, "state": p.state, "stateCause": p.cause,
                              "actions": self.actions(dialog, p), "startTime": p.start,
                              "stateChangeTime": p.changed}
                             for p in dialog.participants if show_silent or not p.silent]}}

    def publish(self, dialog: Dialog, event: str) -> None:
        """To every agent on the dialog; a silent monitor's presence only to itself."""
        told: set[str] = set()
        for p in dialog.participants:
            agent = self.agents.by_extension.get(p.address)
            if agent is not None and agent.agent_id not in told:
                told.add(agent.agent_id)
                self.agents.tell(agent, self.event(dialog, event, show_silent=p.silent))

    # a call's life -------------------------------------------------------------------------------
    def busy(self, agent: VoiceAgent) -> bool:
        return any(p.state in (V.ACTIVE, V.ALERTING, V.INITIATED, V.HELD) for d in self.of_extension(agent.extension)
                   for p in d.participants if p.address == agent.extension)

    def ring(self, dialog: Dialog, target: str) -> None:
        """Add `target` to a dialog: an agent's extension rings; an outside number answers
        after a delay; anything else fails (BAD_DESTINATION, or BUSY when the agent is)."""
        agent = self.agents.by_extension.get(target)
        if agent is not None:
            if agent.state == V.LOGOUT or self.busy(agent):
                dialog.join(target, V.FAILED, "BUSY" if agent.state != V.LOGOUT else "DEVICE_RESOURCE_NOT_AVAILABLE")
                dialog.state = V.FAILED
                return
            dialog.join(target, V.ALERTING)
            dialog.state = V.ALERTING
            self.agents.on_call(agent, V.RESERVED)
            self.rang(dialog, agent)
        elif target.isdigit() and len(target) >= 6:
            dialog.join(target, V.ALERTING)
            dialog.state = V.ALERTING
            self.answers_later(dialog, target)
        else:
            dialog.join(target, V.FAILED, "BAD_DESTINATION")
            dialog.state = V.FAILED

    def answers_later(self, dialog: Dialog, number: str) -> None:
        self.call_later(self.answer_delay, self.outside_answers, dialog.dialog_id, number)

    def outside_answers(self, dialog_id: str, number: str) -> None:
        dialog = self.by_id.get(dialog_id)
        party = dialog.party(number) if dialog else None
        if dialog is None or party is None or party.state != V.ALERTING:
            return
        self.activate(dialog, party)
        self.publish(dialog, event_name(dialog))

    def activate(self, dialog: Dialog, party: Participant) -> None:
        party.move(V.ACTIVE)
        for p in dialog.participants:
            if p.state == V.INITIATED:
                p.move(V.ACTIVE, party.changed)
        if sum(1 for p in dialog.live() if p.state in (V.ACTIVE, V.HELD)) >= 2:
            dialog.state = V.ACTIVE
        for p in dialog.live():
            agent = self.agents.by_extension.get(p.address)
            if agent is not None and p.state == V.ACTIVE and not p.silent:
                self.agents.on_call(agent, V.TALKING)
        if dialog.call_type == V.ACD_IN and party.address in self.agents.by_extension:
            self.answered(dialog, party)

    def after_call(self, agent: VoiceAgent) -> None:
        """An agent on a call takes the state its parts in its live calls give it (Agents)."""
        if agent.state not in V.ON_CALL:
            return
        parts = {p.state for d in self.of_extension(agent.extension) if d.state not in V.ENDED
                 for p in d.participants if p.address == agent.extension and not p.silent
                 and p.state not in V.ENDED}
        self.agents.after_call(agent, parts)

    def leave(self, dialog: Dialog, address: str) -> None:
        """`address` leaves the dialog; with fewer than two voices left it ends."""
        dropped = []
        party = dialog.party(address)
        if party is not None:
            party.move(V.DROPPED)
            dropped.append(party)
        if len([p for p in dialog.live() if not p.silent]) < 2:
            dialog.state = V.DROPPED
            for p in dialog.live():
                p.move(V.DROPPED)
                dropped.append(p)
            self.forget_later(dialog)
            self.unindex(dialog)
            self.ended(dialog)
        self.publish(dialog, event_name(dialog))
        for p in dropped:
            agent = self.agents.by_extension.get(p.address)
            if agent is not None:
                self.after_call(agent)

    def leave_all(self, agent: VoiceAgent) -> None:
        for dialog in self.of_extension(agent.extension):
            if dialog.party(agent.extension):
                self.leave(dialog, agent.extension)

    def forget_later(self, dialog: Dialog) -> None:
        self.call_later(DIALOG_KEPT, self.forget, dialog.dialog_id)

    def forget(self, dialog_id: str) -> None:
        dialog = self.by_id.get(dialog_id)
        if dialog is not None and dialog.state in V.ENDED:
            del self.by_id[dialog_id]
            self.unindex(dialog)
            self.ended(dialog)
