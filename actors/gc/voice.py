"""A simulated voice contact centre behind the Generic Connector (protocol.md 2.1-2.4),
after Cisco Finesse: agents and their states, dialogs with participants and the actions
each allows, an ACD for queue calls, and the supervisor's monitor, barge and drop.

A plain object: commands in (`handle`), events out through `emit(agent_or_dest, event)`,
time through injected `clock` and `call_later`, so tests drive it without sockets.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from wire import gc as G, passwords
from wire.gc import Command, CommandError
from wire.kernel.settings import GcSettings

# Voice agent states (2.4)
LOGOUT, NOT_READY, READY, RESERVED, TALKING, HOLD = "LOGOUT", "NOT_READY", "READY", "RESERVED", "TALKING", "HOLD"
WORK, WORK_READY, UNKNOWN = "WORK", "WORK_READY", "UNKNOWN"
RESERVED_OUTBOUND_PREVIEW = "RESERVED_OUTBOUND_PREVIEW"
ON_CALL = frozenset({RESERVED, "RESERVED_OUTBOUND", RESERVED_OUTBOUND_PREVIEW, TALKING, HOLD})

# Dialog and participant states
INITIATED, ALERTING, ACTIVE, HELD, DROPPED, FAILED, ACCEPTED, WRAP_UP = (
    "INITIATED", "ALERTING", "ACTIVE", "HELD", "DROPPED", "FAILED", "ACCEPTED", "WRAP_UP")

DEFAULT_REASONS = {
    "NOT_READY": [{"id": "1", "label": "Break"}, {"id": "2", "label": "Lunch"}, {"id": "3", "label": "Training"}],
    "LOGOUT": [{"id": "10", "label": "End of shift"}, {"id": "11", "label": "Emergency"}],
    "WRAP_UP": [{"id": "20", "label": "Resolved"}, {"id": "21", "label": "Follow-up needed"}],
}
DEFAULT_PHONEBOOKS = [{"id": "pb1", "name": "Global", "type": "GLOBAL", "team": "",
                       "contacts": [{"firstName": "Help", "lastName": "Desk", "phoneNumber": "5551000",
                                     "description": "internal help desk"}]}]


def password_ok(given: str, known: str) -> bool:
    return passwords.verify(given, known) if passwords.is_hash(known) else given == known


@dataclass
class VoiceAgent:
    agent_id: str
    password: str                    # its hash (from topology.json), or in tests the password itself
    first: str
    last: str
    extension: str
    team: str
    supervisor: bool
    state: str = LOGOUT
    reason: str = ""
    pending: str = ""                 # the state asked for during a call, taken when it ends
    before_call: str = NOT_READY      # the state to return to when a call ends
    changed: str = ""
    available_since: float = 0.0
    recording: str = "RESUMED"
    destinations: dict[str, None] = field(default_factory=dict)  # its clients (they expire unheard)
    watching_teams: set[str] = field(default_factory=set)
    wrap_timer: Any = None


@dataclass
class Participant:
    address: str                      # an extension, or an outside number
    state: str
    cause: str = ""
    start: str = ""
    changed: str = ""
    silent: bool = False              # a supervisor monitoring


@dataclass
class Dialog:
    dialog_id: str
    from_address: str
    to_address: str
    call_type: str
    state: str = INITIATED
    associated: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    wrap_up_reason: str = ""
    participants: list[Participant] = field(default_factory=list)

    def party(self, address: str) -> Participant | None:
        return next((p for p in self.participants if p.address == address and p.state != DROPPED), None)

    def live(self) -> list[Participant]:
        return [p for p in self.participants if p.state not in (DROPPED, FAILED)]


EVENT_NAMES = {"ACD_IN": "InboundCall", "CONSULT": "ConsultCall", "TRANSFER": "TransferCall",
               "CONFERENCE": "ConferenceCall"}

DIALOG_KEPT = 300.0     # seconds an ended dialog is kept (wrap-up data is set after the call)


def event_name(dialog: "Dialog") -> str:
    return EVENT_NAMES.get(dialog.call_type, "OutboundCall")


def stamp() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


class VoiceCentre:
    def __init__(self, directory: list[dict[str, Any]], settings: GcSettings,
                 emit: Callable[[str, dict[str, Any]], None], *, clock: Callable[[], float] = time.monotonic,
                 call_later: Callable[..., Any] | None = None):
        self.emit = emit                                   # (client destination, event)
        self.clock = clock
        self.call_later = call_later or (lambda delay, fn, *args: None)
        self.agents: dict[str, VoiceAgent] = {}
        self.by_extension: dict[str, VoiceAgent] = {}
        for entry in directory:
            if not entry.get("extension"):
                continue
            first, _, last = str(entry.get("name") or entry["id"]).partition(" ")
            agent = VoiceAgent(entry["id"], entry.get("password_hash") or entry["password"], first, last,
                               str(entry["extension"]),
                               entry.get("team") or "default", bool(entry.get("supervisor")))
            self.agents[agent.agent_id] = agent
            self.by_extension[agent.extension] = agent
        self.wrap_up = settings.wrap_up
        self.answer_delay = settings.answer_delay
        self.licenses = settings.licenses
        self.client_timeout = settings.client_timeout
        self.reasons = settings.reason_codes or DEFAULT_REASONS
        self.phonebooks = settings.phonebooks or DEFAULT_PHONEBOOKS
        self.queues: dict[str, deque[str]] = {name: deque() for name in (settings.queues or {"default": {}})}
        self.dialogs: dict[str, Dialog] = {}
        self.ids = itertools.count(1)
        self.in_service = True
        self.epoch = format(time.time_ns() // 1_000_000, "x")
        self.clients: dict[str, float] = {}                # destination -> last Hello, Beat or Connect
        self.clients_forgotten = 0
        self.dialog_started: dict[str, float] = {}         # queue calls: when they arrived

    # plumbing --------------------------------------------------------------------------------
    def tell(self, agent: VoiceAgent, event: dict[str, Any]) -> None:
        for dest in agent.destinations:
            self.emit(dest, event)

    def heard_from(self, destination: str) -> None:
        self.clients[destination] = self.clock()

    def forget_silent_clients(self) -> None:
        """A client that has not said Hello, Beat or Connect for a while is gone."""
        now = self.clock()
        gone = {d for d, seen in self.clients.items() if now - seen > self.client_timeout}
        for dest in gone:
            del self.clients[dest]
        self.clients_forgotten += len(gone)
        for agent in self.agents.values():
            for dest in gone & set(agent.destinations):
                del agent.destinations[dest]

    def system(self) -> dict[str, Any]:
        # Ours: `epoch` changes when the GC restarts (clients log their agents in again), and
        # `clientTimeout` says how long a client may stay silent (clients Beat well within it).
        return {"type": "System", "status": "IN_SERVICE" if self.in_service else "OUT_OF_SERVICE",
                "epoch": self.epoch, "clientTimeout": self.client_timeout}

    def set_in_service(self, up: bool) -> None:
        if up != self.in_service:
            self.in_service = up
            for dest in self.clients:
                self.emit(dest, self.system())
            self.serve_queues()

    def state_event(self, agent: VoiceAgent) -> dict[str, Any]:
        return {"type": "State", "agentId": agent.agent_id, "state": agent.state, "reasonCode": agent.reason,
                "stateChangeTimeString": "", "pendingState": agent.pending, "stateChangeTime": agent.changed}

    def info_event(self, agent: VoiceAgent) -> dict[str, Any]:
        teams = sorted({a.team for a in self.agents.values()}) if agent.supervisor else []
        return {"type": "AgentInfo", "agentId": agent.agent_id, "firstName": agent.first, "lastName": agent.last,
                "supervisor": agent.supervisor, "wrapUpOnIncoming": "REQUIRED" if self.wrap_up else "",
                "team": {"id": agent.team, "name": agent.team}, "teams": [{"id": t, "name": t} for t in teams]}

    def dialog_event(self, dialog: Dialog, event: str, show_silent: bool = False) -> dict[str, Any]:
        return {"type": "Dialog", "event": event, "dialog": {
            "id": dialog.dialog_id, "fromAddress": dialog.from_address, "toAddress": dialog.to_address,
            "callType": dialog.call_type, "state": dialog.state, "associatedDialogId": dialog.associated,
            "callVariables": dict(dialog.variables), "wrapUpReason": dialog.wrap_up_reason,
            "participants": [{"mediaAddress": p.address, "state": p.state, "stateCause": p.cause,
                              "actions": self.actions(dialog, p), "startTime": p.start,
                              "stateChangeTime": p.changed}
                             for p in dialog.participants if show_silent or not p.silent]}}

    def publish_dialog(self, dialog: Dialog, event: str) -> None:
        """To every agent on the dialog; a silent monitor's presence only to itself."""
        told: set[str] = set()
        for p in dialog.participants:
            agent = self.by_extension.get(p.address)
            if agent is not None and agent.agent_id not in told:
                told.add(agent.agent_id)
                self.tell(agent, self.dialog_event(dialog, event, show_silent=p.silent))

    def set_state(self, agent: VoiceAgent, state: str, reason: str | None = None) -> None:
        if state == READY and agent.state != READY:
            agent.available_since = self.clock()
        agent.state = state
        if reason is not None:
            agent.reason = reason
        if state not in (NOT_READY, LOGOUT):
            agent.reason = ""
        agent.changed = stamp()
        event = self.state_event(agent)
        self.tell(agent, event)
        for watcher in self.agents.values():  # supervisors watching the team
            if agent.team in watcher.watching_teams and watcher is not agent:
                self.tell(watcher, event)
        if state == READY:
            self.serve_queues()

    def actions(self, dialog: Dialog, p: Participant) -> list[str]:
        if p.silent:
            return []  # a monitor only listens: EndSilentMonitor or BargeCall change that
        if p.state == ALERTING:
            return ["ANSWER"]
        if p.state == ACTIVE:
            return ["HOLD", "DROP", "UPDATE_CALL_DATA", "CONSULT_CALL"]
        if p.state == HELD:
            consulting = any(d.associated == dialog.dialog_id and d.state in (ACTIVE, ALERTING)
                             for d in self.dialogs.values())
            return ["RETRIEVE", "DROP", "UPDATE_CALL_DATA"] + (["TRANSFER", "CONFERENCE"] if consulting else [])
        if p.state == FAILED:
            return ["DROP"]
        if p.state == WRAP_UP:
            return ["UPDATE_CALL_DATA"]
        return []

    # entry point -------------------------------------------------------------------------------
    def handle(self, command: Command) -> None:
        """Apply one command; raise CommandError (with its code) to refuse it."""
        spec = command.spec
        name = spec.name.lower()
        if name in ("hello", "beat"):
            self.heard_from(command.who)
            self.emit(command.who, self.system())
            return
        if not self.in_service and name != "connect":
            raise CommandError(G.GENERAL_ERROR, "the voice side is OUT_OF_SERVICE", spec.name)
        agent = self.agents.get(command.who)
        if agent is None:
            raise CommandError(G.USER_NOT_FOUND, f"no voice agent {command.who!r}", spec.name)
        if spec.supervisor and not agent.supervisor:
            raise CommandError(G.AUTHORIZATION_FAILURE, f"{agent.agent_id} is not a supervisor", spec.name)
        handler = getattr(self, f"cmd_{name}", None)
        if handler is None:
            raise CommandError(G.BAD_COMMAND, f"{spec.name} is not supported here", spec.name)
        if name not in ("connect", "login", "mobileagentlogin") and agent.state == LOGOUT:
            raise CommandError(G.INVALID_STATE, f"{agent.agent_id} is not logged in", spec.name)
        handler(agent, command.args)

    def dialog_of(self, agent: VoiceAgent, dialog_id: str, command: str) -> tuple[Dialog, Participant]:
        dialog = self.dialogs.get(dialog_id)
        party = dialog.party(agent.extension) if dialog else None
        if dialog is None or party is None:
            raise CommandError(G.NOT_FOUND, f"no dialog {dialog_id!r} with {agent.agent_id}", command)
        return dialog, party

    def require(self, ok: bool, command: str, why: str) -> None:
        if not ok:
            raise CommandError(G.INVALID_STATE, why, command)

    # agent state -----------------------------------------------------------------------------
    def cmd_connect(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        if not args.get("password"):
            raise CommandError(G.MISSING_PASSWORD, "Connect takes <client_destination>,<password>", "Connect")
        if not password_ok(args["password"], agent.password):
            raise CommandError(G.AUTHORIZATION_FAILURE, "wrong password", "Connect")
        self.forget_silent_clients()
        agent.destinations[args["client_destination"]] = None
        self.heard_from(args["client_destination"])

    def cmd_login(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        if not args.get("password"):
            raise CommandError(G.MISSING_PASSWORD, "a password is needed", "Login")
        if not password_ok(args["password"], agent.password):
            raise CommandError(G.AUTHORIZATION_FAILURE, "wrong password", "Login")
        if not args.get("extension"):
            raise CommandError(G.MISSING_EXTENSION, "an extension is needed", "Login")
        if args["extension"] != agent.extension:
            raise CommandError(G.WRONG_EXTENSION, f"{agent.agent_id}'s extension is not {args['extension']}", "Login")
        if agent.state == LOGOUT:
            if sum(1 for a in self.agents.values() if a.state != LOGOUT) >= self.licenses:
                raise CommandError(G.LICENSES_EXCEEDED, f"all {self.licenses} licenses are in use", "Login")
            agent.pending = ""
            self.set_state(agent, NOT_READY, "")
        else:
            self.tell(agent, self.state_event(agent))
        self.tell(agent, self.info_event(agent))

    def cmd_mobileagentlogin(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        if args["call_by_call"].lower() not in ("true", "false"):
            raise CommandError(G.BAD_COMMAND, "call_by_call is true or false", "MobileAgentLogin")
        self.cmd_login(agent, args)

    def logout(self, agent: VoiceAgent, reason: str, command: str, abrupt: bool = False) -> None:
        if not abrupt:
            self.require(agent.state == NOT_READY, command, f"logout is from NOT_READY, not {agent.state}")
        agent.state = LOGOUT  # first: ending its calls must not hand it a waiting one
        for dialog in list(self.dialogs.values()):
            if dialog.party(agent.extension):
                self.leave(dialog, agent.extension)
        if agent.wrap_timer is not None:
            agent.wrap_timer.cancel()
        agent.pending = ""
        self.set_state(agent, LOGOUT, reason)

    def cmd_logout(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.logout(agent, "", "Logout")

    def cmd_logoutwithreason(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        codes = {c["id"] for c in self.reasons.get("LOGOUT", [])}
        if codes and args["reason_code"] not in codes:
            raise CommandError(G.NOT_FOUND, f"no LOGOUT reason code {args['reason_code']!r}", "LogoutWithReason")
        self.logout(agent, args["reason_code"], "LogoutWithReason")

    def cmd_abruptdisconnect(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.logout(agent, "", "AbruptDisconnect", abrupt=True)

    def ask(self, agent: VoiceAgent, state: str, reason: str, command: str) -> None:
        """An agent's request: taken now, or kept as pendingState while a call holds it."""
        if agent.state in ON_CALL:
            agent.pending = state
            if reason:
                agent.reason = reason
            self.tell(agent, self.state_event(agent))
            return
        if state in (WORK, WORK_READY):
            self.require(agent.state in (WORK, WORK_READY), command, f"{state} is for wrap-up, not {agent.state}")
            self.set_state(agent, state)  # still wrapping up: the wrap-up timer stands
            return
        if agent.wrap_timer is not None:
            agent.wrap_timer.cancel()
            agent.wrap_timer = None
        agent.pending = ""
        self.set_state(agent, state, reason if state == NOT_READY else "")

    def cmd_makeready(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.ask(agent, READY, "", "MakeReady")

    def cmd_makenotready(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.ask(agent, NOT_READY, "", "MakeNotReady")

    def cmd_makenotreadywithreason(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        codes = {c["id"] for c in self.reasons.get("NOT_READY", [])}
        if codes and args["reason_code"] not in codes:
            raise CommandError(G.NOT_FOUND, f"no NOT_READY reason code {args['reason_code']!r}",
                               "MakeNotReadyWithReason")
        self.ask(agent, NOT_READY, args["reason_code"], "MakeNotReadyWithReason")

    def cmd_makeworkready(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.ask(agent, WORK_READY, "", "MakeWorkReady")

    def cmd_makeworknotready(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.ask(agent, WORK, "", "MakeWorkNotReady")

    def cmd_getstate(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.tell(agent, self.state_event(agent))

    def cmd_refresh(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.tell(agent, self.state_event(agent))
        self.tell(agent, self.info_event(agent))
        for dialog in self.dialogs.values():
            if dialog.party(agent.extension) and dialog.state not in (DROPPED, FAILED):
                self.tell(agent, self.dialog_event(dialog, event_name(dialog)))

    # calls -------------------------------------------------------------------------------------
    def new_dialog(self, caller: str, callee: str, call_type: str, associated: str = "") -> Dialog:
        dialog = Dialog(f"d{next(self.ids)}", caller, callee, call_type, associated=associated)
        self.dialogs[dialog.dialog_id] = dialog
        return dialog

    def busy(self, agent: VoiceAgent) -> bool:
        return any(p.state in (ACTIVE, ALERTING, INITIATED, HELD) for d in self.dialogs.values()
                   for p in d.participants if p.address == agent.extension)

    def ring(self, dialog: Dialog, target: str, command: str) -> None:
        """Add `target` to a dialog: an agent's extension rings; an outside number answers
        after a delay; anything else fails (BAD_DESTINATION, or BUSY when the agent is)."""
        now = stamp()
        agent = self.by_extension.get(target)
        if agent is not None:
            if agent.state == LOGOUT or self.busy(agent):
                dialog.participants.append(Participant(target, FAILED, "BUSY" if agent.state != LOGOUT
                                                       else "DEVICE_RESOURCE_NOT_AVAILABLE", now, now))
                dialog.state = FAILED
                return
            dialog.participants.append(Participant(target, ALERTING, "", now, now))
            dialog.state = ALERTING
            self.on_call(agent, RESERVED)
        elif target.isdigit() and len(target) >= 6:
            dialog.participants.append(Participant(target, ALERTING, "", now, now))
            dialog.state = ALERTING
            self.call_later(self.answer_delay, self.outside_answers, dialog.dialog_id, target)
        else:
            dialog.participants.append(Participant(target, FAILED, "BAD_DESTINATION", now, now))
            dialog.state = FAILED

    def outside_answers(self, dialog_id: str, number: str) -> None:
        dialog = self.dialogs.get(dialog_id)
        party = dialog.party(number) if dialog else None
        if dialog is None or party is None or party.state != ALERTING:
            return
        self.activate(dialog, party)
        self.publish_dialog(dialog, event_name(dialog))

    def activate(self, dialog: Dialog, party: Participant) -> None:
        party.state, party.changed = ACTIVE, stamp()
        for p in dialog.participants:
            if p.state == INITIATED:
                p.state, p.changed = ACTIVE, party.changed
        if sum(1 for p in dialog.live() if p.state in (ACTIVE, HELD)) >= 2:
            dialog.state = ACTIVE
        for p in dialog.live():
            agent = self.by_extension.get(p.address)
            if agent is not None and p.state == ACTIVE and not p.silent:
                self.on_call(agent, TALKING)

    def on_call(self, agent: VoiceAgent, state: str) -> None:
        if agent.state not in ON_CALL:
            agent.before_call = agent.state if agent.state in (READY, NOT_READY) else NOT_READY
            agent.pending = ""
        if agent.wrap_timer is not None:
            agent.wrap_timer.cancel()
            agent.wrap_timer = None
        if agent.state != state:
            self.set_state(agent, state)

    def after_call(self, agent: VoiceAgent) -> None:
        """The agent's state from its calls: talking (or dialling) if any party is active,
        ringing if one alerts, on hold if all are held; with none left, wrap-up, else what it
        asked for during the call, else where it was before."""
        if agent.state not in ON_CALL:
            return
        states = {p.state for d in self.dialogs.values() if d.state not in (DROPPED, FAILED)
                  for p in d.participants if p.address == agent.extension and not p.silent
                  and p.state not in (DROPPED, FAILED)}
        if states & {ACTIVE, INITIATED}:
            self.set_state(agent, TALKING)
            return
        if ALERTING in states:
            self.set_state(agent, RESERVED)
            return
        if HELD in states:
            self.set_state(agent, HOLD)
            return
        target = agent.pending or agent.before_call
        agent.pending = ""
        if self.wrap_up > 0 or target in (WORK, WORK_READY):
            wrap = target if target in (WORK, WORK_READY) else (WORK_READY if target == READY else WORK)
            self.set_state(agent, wrap)
            if self.wrap_up > 0:
                agent.wrap_timer = self.call_later(self.wrap_up, self.wrap_up_ends, agent.agent_id)
            return
        self.set_state(agent, target)

    def wrap_up_ends(self, agent_id: str) -> None:
        agent = self.agents[agent_id]
        agent.wrap_timer = None
        if agent.state in (WORK, WORK_READY):
            self.set_state(agent, READY if agent.state == WORK_READY else NOT_READY)

    def leave(self, dialog: Dialog, address: str) -> None:
        """`address` leaves the dialog; with fewer than two voices left it ends."""
        dropped = []
        party = dialog.party(address)
        if party is not None:
            party.state, party.changed = DROPPED, stamp()
            dropped.append(party)
        if len([p for p in dialog.live() if not p.silent]) < 2:
            dialog.state = DROPPED
            for p in dialog.live():
                p.state, p.changed = DROPPED, stamp()
                dropped.append(p)
            self.call_later(DIALOG_KEPT, self.forget_dialog, dialog.dialog_id)
        self.publish_dialog(dialog, event_name(dialog))
        for p in dropped:
            agent = self.by_extension.get(p.address)
            if agent is not None:
                self.after_call(agent)

    def forget_dialog(self, dialog_id: str) -> None:
        dialog = self.dialogs.get(dialog_id)
        if dialog is not None and dialog.state in (DROPPED, FAILED):
            del self.dialogs[dialog_id]
            self.dialog_started.pop(dialog_id, None)

    def cmd_makecall(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.require(agent.state in (NOT_READY, READY, WORK, WORK_READY), "MakeCall",
                     f"{agent.agent_id} is {agent.state}: cannot make a call")
        target = args["number"]
        self.require(target != agent.extension, "MakeCall", "cannot call yourself")
        call_type = "AGENT_INSIDE" if target in self.by_extension else "OUT"
        dialog = self.new_dialog(agent.extension, target, call_type)
        now = stamp()
        dialog.participants.append(Participant(agent.extension, INITIATED, "", now, now))
        self.on_call(agent, TALKING)  # dialling
        self.ring(dialog, target, "MakeCall")
        self.publish_dialog(dialog, "OutboundCall")
        if dialog.state == FAILED:  # the dialog stays FAILED until dropped; the agent is free again
            self.call_later(DIALOG_KEPT, self.forget_dialog, dialog.dialog_id)
            self.after_call(agent)

    def cmd_answercall(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog, party = self.dialog_of(agent, args["dialog_id"], "AnswerCall")
        self.require(party.state == ALERTING, "AnswerCall", f"the call is {party.state}, not ringing")
        self.activate(dialog, party)
        self.publish_dialog(dialog, event_name(dialog))

    def cmd_holdcall(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog, party = self.dialog_of(agent, args["dialog_id"], "HoldCall")
        self.require(party.state == ACTIVE, "HoldCall", f"the call is {party.state}, not ACTIVE")
        party.state, party.changed = HELD, stamp()
        self.after_call(agent)
        self.publish_dialog(dialog, event_name(dialog))

    def cmd_retrievecall(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog, party = self.dialog_of(agent, args["dialog_id"], "RetrieveCall")
        self.require(party.state == HELD, "RetrieveCall", f"the call is {party.state}, not HELD")
        party.state, party.changed = ACTIVE, stamp()
        self.set_state(agent, TALKING)
        self.publish_dialog(dialog, event_name(dialog))

    def cmd_releasecall(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog, party = self.dialog_of(agent, args["dialog_id"], "ReleaseCall")
        self.require("DROP" in self.actions(dialog, party) or party.state == INITIATED, "ReleaseCall",
                     f"the call is {party.state}: nothing to release")
        self.leave(dialog, agent.extension)

    def cmd_consultcall(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        main, party = self.dialog_of(agent, args["dialog_id"], "ConsultCall")
        self.require(party.state in (ACTIVE, HELD), "ConsultCall", f"the call is {party.state}")
        if party.state == ACTIVE:  # the customer waits on hold while the agent consults
            party.state, party.changed = HELD, stamp()
        consult = self.new_dialog(agent.extension, args["target"], "CONSULT", associated=main.dialog_id)
        now = stamp()
        consult.participants.append(Participant(agent.extension, INITIATED, "", now, now))
        self.ring(consult, args["target"], "ConsultCall")
        self.publish_dialog(main, "ConsultCall")
        self.publish_dialog(consult, "ConsultCall")
        self.after_call(agent)  # dialling the consult, or on hold if it failed

    def merge_consult(self, agent: VoiceAgent, main: Dialog, target: str, command: str) -> str:
        """Complete a consult: its target joins the held main call, the consult call ends."""
        consult = next((d for d in self.dialogs.values() if d.associated == main.dialog_id
                        and d.state in (ACTIVE, ALERTING) and d.party(target)), None)
        self.require(consult is not None, command, f"no consult call to {target} on {main.dialog_id}")
        self.require(main.party(agent.extension).state == HELD, command,  # type: ignore[union-attr]
                     "the main call must be on hold")
        consult_party = consult.party(target)  # type: ignore[union-attr]
        self.require(consult_party is not None and consult_party.state == ACTIVE, command,
                     f"{target} has not answered the consult call yet")
        now = stamp()
        main.participants.append(Participant(target, ACTIVE, "", now, now))
        consult.state = DROPPED  # type: ignore[union-attr]
        for p in consult.live():  # type: ignore[union-attr]
            p.state, p.changed = DROPPED, now
        self.publish_dialog(consult, "ConsultCall")  # type: ignore[arg-type]
        self.call_later(DIALOG_KEPT, self.forget_dialog, consult.dialog_id)  # type: ignore[union-attr]
        return now

    def cmd_transfercall(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        main, mine = self.dialog_of(agent, args["dialog_id"], "TransferCall")
        now = self.merge_consult(agent, main, args["target"], "TransferCall")
        mine.state, mine.changed = DROPPED, now
        main.call_type = "TRANSFER"
        self.publish_dialog(main, "TransferCall")
        self.after_call(agent)

    def cmd_conferencecall(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        main, mine = self.dialog_of(agent, args["dialog_id"], "Conferencecall")
        now = self.merge_consult(agent, main, args["target"], "Conferencecall")
        mine.state, mine.changed = ACTIVE, now
        main.call_type = "CONFERENCE"
        self.set_state(agent, TALKING)
        self.publish_dialog(main, "ConferenceCall")

    def cmd_blindtransfer(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        main, party = self.dialog_of(agent, args["dialog_id"], "BlindTransfer")
        self.require(party.state in (ACTIVE, HELD), "BlindTransfer", f"the call is {party.state}")
        target = args["target"]
        self.ring(main, target, "BlindTransfer")
        if main.state == FAILED:  # the target cannot take it: the call stays with the agent
            main.participants.pop()
            main.state = ACTIVE
            raise CommandError(G.INVALID_STATE, f"{target} cannot take the call", "BlindTransfer")
        party.state, party.changed = DROPPED, stamp()
        main.call_type = "TRANSFER"
        self.publish_dialog(main, "TransferCall")
        self.after_call(agent)

    def cmd_getdialog(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog, _ = self.dialog_of(agent, args["dialog_id"], "GetDialog")
        self.tell(agent, self.dialog_event(dialog, event_name(dialog)))

    cmd_getdialogparticipants = cmd_getdialog

    def cmd_getdialogcontrols(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog, party = self.dialog_of(agent, args["dialog_id"], "GetDialogControls")
        self.tell(agent, {"type": "DialogControls", "dialogId": dialog.dialog_id,
                          "actions": self.actions(dialog, party)})

    def any_dialog_of(self, agent: VoiceAgent, dialog_id: str, command: str) -> Dialog:
        """Also an ended one: wrap-up data is set after the call."""
        dialog = self.dialogs.get(dialog_id)
        if dialog is None or not any(p.address == agent.extension for p in dialog.participants):
            raise CommandError(G.NOT_FOUND, f"no dialog {dialog_id!r} with {agent.agent_id}", command)
        return dialog

    def cmd_updatewrapup(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog = self.any_dialog_of(agent, args["dialog_id"], "UpdateWrapUp")
        codes = {c["id"] for c in self.reasons.get("WRAP_UP", [])} | {c["label"] for c in self.reasons.get("WRAP_UP", [])}
        if codes and args["wrap_up_reason"] not in codes:
            raise CommandError(G.NOT_FOUND, f"no wrap-up reason {args['wrap_up_reason']!r}", "UpdateWrapUp")
        dialog.wrap_up_reason = args["wrap_up_reason"]

    def cmd_updatecallvariable(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog = self.any_dialog_of(agent, args["dialog_id"], "UpdateCallVariable")
        dialog.variables[args["name"]] = args["value"]
        self.publish_dialog(dialog, event_name(dialog))

    def cmd_getloggedinagents(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.tell(agent, {"type": "LoggedInAgents", "agents": [
            {"agentId": a.agent_id, "extension": a.extension, "state": a.state}
            for a in self.agents.values() if a.state != LOGOUT]})

    def reason_codes(self, agent: VoiceAgent, category: str) -> None:
        self.tell(agent, {"type": "ReasonCodes", "category": category, "codes": self.reasons.get(category, [])})

    def cmd_wrapupreasoncode(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.reason_codes(agent, "WRAP_UP")

    def cmd_reasoncodelogout(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.reason_codes(agent, "LOGOUT")

    def cmd_reasoncodenotready(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.reason_codes(agent, "NOT_READY")

    def recording(self, agent: VoiceAgent, status: str, command: str) -> None:
        self.require(agent.state in (TALKING, HOLD), command, f"{agent.agent_id} is not on a call")
        agent.recording = status
        self.tell(agent, {"type": "Recording", "agentId": agent.agent_id, "status": status})

    def cmd_zoompauserecording(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.recording(agent, "PAUSED", "ZOOMPauseRecording")

    def cmd_zoomresumerecording(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.recording(agent, "RESUMED", "ZOOMResumeRecording")

    # outbound preview -----------------------------------------------------------------------------
    def offer_preview(self, agent_id: str, number: str) -> str:
        """The dialer offers a number to a READY agent (RESERVED_OUTBOUND_PREVIEW)."""
        agent = self.agents.get(agent_id)
        if agent is None or agent.state != READY:
            raise CommandError(G.INVALID_STATE, f"{agent_id} cannot take a preview now", "preview")
        dialog = self.new_dialog(number, agent.extension, "OUTBOUND_PREVIEW")
        now = stamp()
        dialog.participants.append(Participant(agent.extension, ALERTING, "", now, now))
        dialog.state = ALERTING
        self.on_call(agent, RESERVED_OUTBOUND_PREVIEW)
        self.publish_dialog(dialog, "OutboundCall")
        return dialog.dialog_id

    def preview(self, agent: VoiceAgent, args: dict[str, str], action: str, command: str) -> None:
        dialog, party = self.dialog_of(agent, args["dialog_id"], command)
        self.require(dialog.call_type == "OUTBOUND_PREVIEW" and dialog.state == ALERTING, command,
                     f"{dialog.dialog_id} is not an open preview")
        given = args.get("action", action).upper()
        if given != action:
            raise CommandError(G.BAD_COMMAND, f"{command} takes {action}, not {given}", command)
        if action == "ACCEPT":
            dialog.state, party.state = ACCEPTED, ACTIVE
            dialog.participants.append(Participant(dialog.from_address, ALERTING, "", stamp(), stamp()))
            self.set_state(agent, "RESERVED_OUTBOUND")
            self.call_later(self.answer_delay, self.outside_answers, dialog.dialog_id, dialog.from_address)
            self.publish_dialog(dialog, "OutboundCall")
        else:
            self.leave(dialog, agent.extension)

    def cmd_acceptoutboundpreview(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.preview(agent, args, "ACCEPT", "AcceptOutboundPreview")

    def cmd_rejectoutboundpreview(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.preview(agent, args, "REJECT", "RejectOutboundPreview")

    def cmd_closeoutboundpreview(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.preview(agent, args, "CLOSE", "CloseOutboundPreview")

    # phonebooks and queues --------------------------------------------------------------------
    def books_for(self, team: str | None) -> list[dict[str, Any]]:
        return [b for b in self.phonebooks if b.get("type") == "GLOBAL" or b.get("team") == team]

    def cmd_getphonebooks(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.tell(agent, {"type": "PhoneBooks", "phonebooks": [
            {"id": b["id"], "name": b["name"], "type": b.get("type", "GLOBAL")} for b in self.books_for(agent.team)]})

    def cmd_getteamphonebooks(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.tell(agent, {"type": "PhoneBooks", "phonebooks": [
            {"id": b["id"], "name": b["name"], "type": b.get("type", "TEAM")} for b in self.phonebooks
            if b.get("team") == args["team_id"]]})

    def cmd_getcontacts(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        book = next((b for b in self.phonebooks if b["id"] == args["phonebook_id"]), None)
        if book is None:
            raise CommandError(G.NOT_FOUND, f"no phonebook {args['phonebook_id']!r}", "getcontacts")
        self.tell(agent, {"type": "Contacts", "phonebookId": book["id"], "contacts": book.get("contacts", [])})

    def cmd_getqueuelist(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        logged = [a for a in self.agents.values() if a.state != LOGOUT]
        now = self.clock()
        self.tell(agent, {"type": "QueueList", "queues": [
            {"id": name, "name": name, "callsInQueue": len(waiting),
             "longestWaitSec": round(max((now - self.dialog_started.get(d, now) for d in waiting), default=0)),
             "agentsReady": sum(1 for a in logged if a.state == READY),
             "agentsNotReady": sum(1 for a in logged if a.state == NOT_READY),
             "agentsTalking": sum(1 for a in logged if a.state in (TALKING, HOLD))}
            for name, waiting in self.queues.items()]})

    def team_users(self, team: str) -> list[dict[str, Any]]:
        return [{"agentId": a.agent_id, "firstName": a.first, "lastName": a.last, "extension": a.extension,
                 "state": a.state, "reasonCode": a.reason} for a in self.agents.values() if a.team == team]

    def cmd_getteamusers(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        if args.get("subscribe", "").lower() == "true":
            agent.watching_teams.add(args["team_id"])
        self.tell(agent, {"type": "TeamInfo", "teamId": args["team_id"], "name": args["team_id"],
                          "users": self.team_users(args["team_id"])})

    def cmd_getteamusersstate(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.tell(agent, {"type": "TeamUsersState", "teamId": args["team_id"], "name": args["team_id"],
                          "users": self.team_users(args["team_id"])})

    # supervisors ---------------------------------------------------------------------------------
    def agent_dialog(self, extension: str, command: str) -> Dialog:
        dialog = next((d for d in self.dialogs.values() if d.state == ACTIVE and d.party(extension)), None)
        if dialog is None:
            raise CommandError(G.NOT_FOUND, f"no active call at extension {extension}", command)
        return dialog

    def cmd_silentmonitor(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog = self.agent_dialog(args["agent_extension"], "SilentMonitor")
        now = stamp()
        dialog.participants.append(Participant(agent.extension, ACTIVE, "", now, now, silent=True))
        self.tell(agent, self.dialog_event(dialog, "Monitor", show_silent=True))

    def cmd_endsilentmonitor(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog, party = self.dialog_of(agent, args["dialog_id"], "EndSilentMonitor")
        self.require(party.silent, "EndSilentMonitor", "not monitoring this call")
        party.state, party.changed = DROPPED, stamp()
        self.tell(agent, self.dialog_event(dialog, "Monitor", show_silent=True))

    def known_dialog(self, dialog_id: str, command: str) -> Dialog:
        dialog = self.dialogs.get(dialog_id)
        if dialog is None:
            raise CommandError(G.NOT_FOUND, f"no dialog {dialog_id!r}", command)
        return dialog

    def cmd_bargecall(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog = self.known_dialog(args["dialog_id"], "BargeCall")
        self.require(dialog is not None and dialog.state == ACTIVE and dialog.party(args["agent_extension"])
                     is not None, "BargeCall", f"no active call {args['dialog_id']} at {args['agent_extension']}")
        party = dialog.party(agent.extension)  # type: ignore[union-attr]
        now = stamp()
        if party is not None and party.silent:  # from monitoring into the conversation
            party.silent = False
        else:
            dialog.participants.append(Participant(agent.extension, ACTIVE, "", now, now))  # type: ignore[union-attr]
        dialog.call_type = "CONFERENCE"  # type: ignore[union-attr]
        self.on_call(agent, TALKING)
        self.publish_dialog(dialog, "Barge")  # type: ignore[arg-type]

    def cmd_dropparticipant(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog = self.known_dialog(args["dialog_id"], "DropParticipant")
        if dialog.party(args["participant_extension"]) is None:
            raise CommandError(G.NOT_FOUND, f"{args['participant_extension']} is not on {args['dialog_id']}",
                               "DropParticipant")
        self.leave(dialog, args["participant_extension"])
        if dialog.party(agent.extension) is None:  # a supervisor not on the call hears the outcome too
            self.tell(agent, self.dialog_event(dialog, event_name(dialog)))

    # the ACD: inbound queue calls ------------------------------------------------------------------
    def inbound(self, queue: str, ani: str) -> str:
        """A customer calls a voice queue: it rings the agent READY longest, or waits."""
        if queue not in self.queues:
            raise CommandError(G.NOT_FOUND, f"no voice queue {queue!r} (queues: {', '.join(self.queues)})", "call")
        dialog = self.new_dialog(ani, queue, "ACD_IN")
        now = stamp()
        dialog.participants.append(Participant(ani, ACTIVE, "", now, now))
        self.dialog_started[dialog.dialog_id] = self.clock()
        self.queues[queue].append(dialog.dialog_id)
        self.serve_queues()
        return dialog.dialog_id

    def serve_queues(self) -> None:
        if not self.in_service:
            return  # calls wait until the voice side is back
        for waiting in self.queues.values():
            while waiting:
                ready = [a for a in self.agents.values() if a.state == READY and not self.busy(a)]
                if not ready:
                    return
                dialog = self.dialogs.get(waiting.popleft())
                if dialog is None or dialog.state == DROPPED:
                    continue
                agent = min(ready, key=lambda a: a.available_since)
                dialog.to_address = agent.extension
                self.ring(dialog, agent.extension, "call")
                self.publish_dialog(dialog, "InboundCall")
