"""An agent's calls (protocol.md 2.1, agent_call and agent_dialog): make, answer, hold,
retrieve and release one; consult, then transfer or conference; transfer blind; what a
dialog is and allows now; wrap-up reason and call variables; pausing the recording. What
each command checks and asks; the dialogs' mechanics are Dialogs'."""

from __future__ import annotations

from wire import gc as G, voice as V

from .agents import Agents, VoiceAgent
from .dialogs import Dialog, Dialogs, event_name
from .reasons import ReasonCodes
from .refusals import require


class CallCommands:
    def __init__(self, agents: Agents, dialogs: Dialogs, reasons: ReasonCodes):
        self.agents = agents
        self.dialogs = dialogs
        self.reasons = reasons

    def make_call(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        require(agent.state in (V.NOT_READY, V.READY, V.WORK, V.WORK_READY), "MakeCall",
                f"{agent.agent_id} is {agent.state}: cannot make a call")
        target = args["number"]
        require(target != agent.extension, "MakeCall", "cannot call yourself")
        call_type = V.AGENT_INSIDE if target in self.agents.by_extension else V.OUT
        dialog = self.dialogs.new(agent.extension, target, call_type)
        dialog.join(agent.extension, V.INITIATED)
        self.agents.on_call(agent, V.TALKING)  # dialling
        self.dialogs.ring(dialog, target)
        self.dialogs.publish(dialog, "OutboundCall")
        if dialog.state == V.FAILED:  # the dialog stays FAILED until dropped; the agent is free again
            self.dialogs.forget_later(dialog)
            self.dialogs.after_call(agent)

    def answer_call(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog, party = self.dialogs.of(agent, args["dialog_id"], "AnswerCall")
        require(party.state == V.ALERTING, "AnswerCall", f"the call is {party.state}, not ringing")
        self.dialogs.activate(dialog, party)
        self.dialogs.publish(dialog, event_name(dialog))

    def hold_call(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog, party = self.dialogs.of(agent, args["dialog_id"], "HoldCall")
        require(party.state == V.ACTIVE, "HoldCall", f"the call is {party.state}, not ACTIVE")
        party.move(V.HELD)
        self.dialogs.after_call(agent)
        self.dialogs.publish(dialog, event_name(dialog))

    def retrieve_call(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog, party = self.dialogs.of(agent, args["dialog_id"], "RetrieveCall")
        require(party.state == V.HELD, "RetrieveCall", f"the call is {party.state}, not HELD")
        party.move(V.ACTIVE)
        self.agents.set_state(agent, V.TALKING)
        self.dialogs.publish(dialog, event_name(dialog))

    def release_call(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog, party = self.dialogs.of(agent, args["dialog_id"], "ReleaseCall")
        require("DROP" in self.dialogs.actions(dialog, party) or party.state == V.INITIATED, "ReleaseCall",
                f"the call is {party.state}: nothing to release")
        self.dialogs.leave(dialog, agent.extension)

    # consult, then transfer or conference ---------------------------------------------------------
    def consult_call(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        main, party = self.dialogs.of(agent, args["dialog_id"], "ConsultCall")
        require(party.state in (V.ACTIVE, V.HELD), "ConsultCall", f"the call is {party.state}")
        if party.state == V.ACTIVE:  # the customer waits on hold while the agent consults
            party.move(V.HELD)
        consult = self.dialogs.new(agent.extension, args["target"], V.CONSULT, associated=main.dialog_id)
        consult.join(agent.extension, V.INITIATED)
        self.dialogs.ring(consult, args["target"])
        self.dialogs.publish(main, "ConsultCall")
        self.dialogs.publish(consult, "ConsultCall")
        self.dialogs.after_call(agent)  # dialling the consult, or on hold if it failed

    def merge_consult(self, agent: VoiceAgent, main: Dialog, target: str, command: str) -> str:
        """Complete a consult: its target joins the held main call, the consult call ends."""
        consult = next((d for d in self.dialogs.by_id.values() if d.associated == main.dialog_id
                        and d.state in (V.ACTIVE, V.ALERTING) and d.party(target)), None)
        require(consult is not None, command, f"no consult call to {target} on {main.dialog_id}")
        require(main.party(agent.extension).state == V.HELD, command,  # type: ignore[union-attr]
                "the main call must be on hold")
        consult_party = consult.party(target)  # type: ignore[union-attr]
        require(consult_party is not None and consult_party.state == V.ACTIVE, command,
                f"{target} has not answered the consult call yet")
        now = main.join(target, V.ACTIVE).changed
        consult.state = V.DROPPED  # type: ignore[union-attr]
        for p in consult.live():  # type: ignore[union-attr]
            p.move(V.DROPPED, now)
        self.dialogs.publish(consult, "ConsultCall")  # type: ignore[arg-type]
        self.dialogs.forget_later(consult)  # type: ignore[arg-type]
        return now

    def transfer_call(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        main, mine = self.dialogs.of(agent, args["dialog_id"], "TransferCall")
        now = self.merge_consult(agent, main, args["target"], "TransferCall")
        mine.move(V.DROPPED, now)
        main.call_type = V.TRANSFER
        self.dialogs.publish(main, "TransferCall")
        self.dialogs.after_call(agent)

    def conference_call(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        main, mine = self.dialogs.of(agent, args["dialog_id"], "Conferencecall")
        now = self.merge_consult(agent, main, args["target"], "Conferencecall")
        mine.move(V.ACTIVE, now)
        main.call_type = V.CONFERENCE
        self.agents.set_state(agent, V.TALKING)
        self.dialogs.publish(main, "ConferenceCall")

    def blind_transfer(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        main, party = self.dialogs.of(agent, args["dialog_id"], "BlindTransfer")
        require(party.state in (V.ACTIVE, V.HELD), "BlindTransfer", f"the call is {party.state}")
        target = args["target"]
        self.dialogs.ring(main, target)
        if main.state == V.FAILED:  # the target cannot take it: the call stays with the agent
            main.participants.pop()
            main.state = V.ACTIVE
            raise G.CommandError(G.INVALID_STATE, f"{target} cannot take the call", "BlindTransfer")
        party.move(V.DROPPED)
        main.call_type = V.TRANSFER
        self.dialogs.publish(main, "TransferCall")
        self.dialogs.after_call(agent)

    # what a dialog is and allows; its data ---------------------------------------------------------
    def get_dialog(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        """GetDialog, and GetDialogParticipants (deprecated), which says the same."""
        dialog, _ = self.dialogs.of(agent, args["dialog_id"], "GetDialog")
        self.agents.tell(agent, self.dialogs.event(dialog, event_name(dialog)))

    def get_dialog_controls(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog, party = self.dialogs.of(agent, args["dialog_id"], "GetDialogControls")
        self.agents.tell(agent, {"type": "DialogControls", "dialogId": dialog.dialog_id,
                                 "actions": self.dialogs.actions(dialog, party)})

    def update_wrap_up(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog = self.dialogs.of_including_ended(agent, args["dialog_id"], "UpdateWrapUp")
        if not self.reasons.known("WRAP_UP", args["wrap_up_reason"], labels_too=True):
            raise G.CommandError(G.NOT_FOUND, f"no wrap-up reason {args['wrap_up_reason']!r}", "UpdateWrapUp")
        dialog.wrap_up_reason = args["wrap_up_reason"]

    def update_call_variable(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog = self.dialogs.of_including_ended(agent, args["dialog_id"], "UpdateCallVariable")
        dialog.variables[args["name"]] = args["value"]
        self.dialogs.publish(dialog, event_name(dialog))

    # the call's recording ----------------------------------------------------------------------------
    def pause_recording(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.agents.record(agent, "PAUSED", "ZOOMPauseRecording")

    def resume_recording(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.agents.record(agent, "RESUMED", "ZOOMResumeRecording")
