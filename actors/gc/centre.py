"""A simulated voice contact centre behind the Generic Connector (protocol.md 2.1-2.4),
after Cisco Finesse: agents and their states, dialogs with participants and the actions
each allows, an ACD for queue calls, and the supervisor's monitor, barge and drop.

A plain object: commands in (`handle`), events out through `emit(destination, event)`,
time through injected `clock` and `call_later`, so tests drive it without sockets.

Its owners: Agents (every agent's state; nothing else changes a VoiceAgent), Clients (who
listens, and the System), Dialogs (the calls: which there are, how they ring, are answered,
end and are forgotten), Acd (the queues), Callers (who calls the queues, and the phones that
answer by themselves), ReasonCodes, Phonebooks. The commands act
through them, a concern to a module; `command_table` says which method handles which."""

from __future__ import annotations

import random
import time
from typing import Any, Callable

from wire import gc as G, voice as V
from wire.gc import Command, CommandError
from wire.kernel.settings import GcSettings

from .acd import Acd
from .agent_states import AgentStateCommands
from .agents import Agents, VoiceAgent
from .callers import Callers
from .calls import CallCommands
from .clients import Clients
from .dialogs import Dialogs
from .phonebooks import Phonebooks
from .preview import Preview
from .reasons import ReasonCodes
from .supervisors import SupervisorCommands

Handler = Callable[[VoiceAgent, dict[str, str]], None]

# Addressed to a client destination, not an agent: answered before any other check.
CLIENT_COMMANDS = frozenset({"Hello", "Beat"})
# What an agent may do while logged out.
BEFORE_LOGIN = frozenset({"Connect", "Login", "MobileAgentLogin"})


class VoiceCentre:
    def __init__(self, directory: list[dict[str, Any]], settings: GcSettings,
                 emit: Callable[[str, dict[str, Any]], None], *, clock: Callable[[], float] = time.monotonic,
                 call_later: Callable[..., Any] | None = None, rng: random.Random | None = None):
        call_later = call_later or (lambda delay, fn, *args: None)
        self.agents = Agents(directory, emit, clock=clock, call_later=call_later, wrap_up=settings.wrap_up,
                             licenses=settings.licenses)
        self.clients = Clients(self.agents, emit, clock, settings.client_timeout)
        self.dialogs = Dialogs(self.agents, call_later, settings.answer_delay)
        self.acd = Acd(settings.queues or {"default": {}}, self.agents, self.dialogs, self.clients, clock,
                       settings.max_waiting)
        self.agents.became_ready = self.acd.serve
        # the callers and the agents' Auto Answer, where no client answers (a load run)
        self.callers = Callers(self.acd, self.dialogs, settings.queues, settings.auto_answer, clock, call_later,
                               rng)
        self.dialogs.rang, self.dialogs.answered, self.dialogs.ended = (self.callers.rang, self.callers.answered,
                                                                        self.callers.ended)
        self.reasons = ReasonCodes(settings.reason_codes, self.agents)
        self.phonebooks = Phonebooks(settings.phonebooks, self.agents)
        self.preview = Preview(self.agents, self.dialogs)
        self.commands = self.command_table()

    def command_table(self) -> dict[str, Handler]:
        """Every command of wire/gc.py but Hello and Beat, by its name there, to its handler."""
        states = AgentStateCommands(self.agents, self.dialogs, self.reasons)
        calls = CallCommands(self.agents, self.dialogs, self.reasons)
        supervisors = SupervisorCommands(self.agents, self.dialogs)
        reasons, books, preview = self.reasons, self.phonebooks, self.preview
        return {
            # an agent's client (clients.py), and its own state (agent_states.py)
            "Connect": self.clients.connect,
            "Login": states.login,
            "MobileAgentLogin": states.mobile_agent_login,
            "Logout": states.logout,
            "LogoutWithReason": states.logout_with_reason,
            "AbruptDisconnect": states.abrupt_disconnect,
            "MakeReady": states.make_ready,
            "MakeNotReady": states.make_not_ready,
            "MakeNotReadyWithReason": states.make_not_ready_with_reason,
            "MakeWorkReady": states.make_work_ready,
            "MakeWorkNotReady": states.make_work_not_ready,
            "GetState": states.get_state,
            "refresh": states.refresh,
            "GetLoggedInAgents": states.get_logged_in_agents,
            # its calls (calls.py)
            "MakeCall": calls.make_call,
            "AnswerCall": calls.answer_call,
            "HoldCall": calls.hold_call,
            "RetrieveCall": calls.retrieve_call,
            "ReleaseCall": calls.release_call,
            "ConsultCall": calls.consult_call,
            "TransferCall": calls.transfer_call,
            "Conferencecall": calls.conference_call,
            "BlindTransfer": calls.blind_transfer,
            "GetDialog": calls.get_dialog,
            "GetDialogParticipants": calls.get_dialog,
            "GetDialogControls": calls.get_dialog_controls,
            "UpdateWrapUp": calls.update_wrap_up,
            "UpdateCallVariable": calls.update_call_variable,
            "ZOOMPauseRecording": calls.pause_recording,
            "ZOOMResumeRecording": calls.resume_recording,
            # outbound preview (preview.py)
            "AcceptOutboundPreview": preview.accept,
            "RejectOutboundPreview": preview.reject,
            "CloseOutboundPreview": preview.close,
            # what it looks up (reasons.py, phonebooks.py, acd.py)
            "wrapupreasoncode": reasons.wrap_up_codes,
            "reasoncodelogout": reasons.logout_codes,
            "reasoncodenotready": reasons.not_ready_codes,
            "getphonebooks": books.get_phonebooks,
            "getcontacts": books.get_contacts,
            "getqueuelist": self.acd.get_queue_list,
            # supervisors only (supervisors.py, phonebooks.py)
            "getteamusers": supervisors.get_team_users,
            "getteamusersstate": supervisors.get_team_users_state,
            "SilentMonitor": supervisors.silent_monitor,
            "EndSilentMonitor": supervisors.end_silent_monitor,
            "BargeCall": supervisors.barge_call,
            "DropParticipant": supervisors.drop_participant,
            "getteamphonebooks": books.get_team_phonebooks,
        }

    def handle(self, command: Command) -> None:
        """Apply one command; raise CommandError (with its code) to refuse it."""
        name = command.spec.name
        if name in CLIENT_COMMANDS:
            self.clients.hello(command.who)
            return
        if not self.clients.in_service and name != "Connect":
            raise CommandError(G.GENERAL_ERROR, "the voice side is OUT_OF_SERVICE", name)
        agent = self.agents.by_id.get(command.who)
        if agent is None:
            raise CommandError(G.USER_NOT_FOUND, f"no voice agent {command.who!r}", name)
        if command.spec.supervisor and not agent.supervisor:
            raise CommandError(G.AUTHORIZATION_FAILURE, f"{agent.agent_id} is not a supervisor", name)
        handler = self.commands.get(name)
        if handler is None:
            raise CommandError(G.BAD_COMMAND, f"{name} is not supported here", name)
        if name not in BEFORE_LOGIN and agent.state == V.LOGOUT:
            raise CommandError(G.INVALID_STATE, f"{agent.agent_id} is not logged in", name)
        handler(agent, command.args)

    def set_in_service(self, up: bool) -> None:
        """The voice side goes down or comes back (the control verb `service`): every client
        hears it, and calls waiting in the queues ring again."""
        if self.clients.set_in_service(up):
            self.acd.serve()
