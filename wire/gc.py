"""The Generic Connector's command format (protocol.md section 2).

A command is two frames `[name#id, body]`: the command name and (normally) the agent's
login id, then the parameters joined by commas (empty when none). Names match
case-insensitively. Events are JSON objects with a `type` field, published on the GC's
event stream with the client's destination as topic (see codec.topic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

# Error codes (2.3).
AUTHORIZATION_FAILURE = "AUTHORIZATION_FAILURE"
NOT_FOUND = "NOT_FOUND"
GENERAL_ERROR = "GENERAL_ERROR"
MISSING_EXTENSION = "MISSING_EXTENSION"
WRONG_EXTENSION = "WRONG_EXTENSION"
LICENSES_EXCEEDED = "LICENSES_EXCEEDED"
MISSING_PASSWORD = "MISSING_PASSWORD"
USER_NOT_FOUND = "USER_NOT_FOUND"
INVALID_STATE = "INVALID_STATE"
BAD_COMMAND = "BAD_COMMAND"


@dataclass(frozen=True)
class CommandSpec:
    name: str                  # as protocol.md spells it
    category: str
    params: tuple[str, ...]    # required parameters, in order
    optional: tuple[str, ...] = ()
    supervisor: bool = False   # refused with AUTHORIZATION_FAILURE for others


_SPECS = [
    CommandSpec("Hello", "system", ()),
    CommandSpec("Beat", "system", ()),
    CommandSpec("Connect", "agent_info", ("client_destination", "password")),
    CommandSpec("Login", "agent_state", ("password", "extension")),
    CommandSpec("MobileAgentLogin", "agent_state", ("password", "extension", "phone", "call_by_call")),
    CommandSpec("Logout", "agent_state", ()),
    CommandSpec("LogoutWithReason", "agent_state", ("reason_code",)),
    CommandSpec("AbruptDisconnect", "agent_state", ()),
    CommandSpec("MakeReady", "agent_state", ()),
    CommandSpec("MakeNotReady", "agent_state", ()),
    CommandSpec("MakeNotReadyWithReason", "agent_state", ("reason_code",)),
    CommandSpec("MakeWorkReady", "agent_state", ()),
    CommandSpec("MakeWorkNotReady", "agent_state", ()),
    CommandSpec("GetState", "agent_state", ()),
    CommandSpec("refresh", "agent_state", ()),
    CommandSpec("MakeCall", "agent_call", ("number",)),
    CommandSpec("AnswerCall", "agent_call", ("dialog_id",)),
    CommandSpec("HoldCall", "agent_call", ("dialog_id",)),
    CommandSpec("RetrieveCall", "agent_call", ("dialog_id",)),
    CommandSpec("ReleaseCall", "agent_call", ("dialog_id",)),
    CommandSpec("ConsultCall", "agent_call", ("target", "dialog_id")),
    CommandSpec("TransferCall", "agent_call", ("target", "dialog_id")),
    CommandSpec("Conferencecall", "agent_call", ("target", "dialog_id")),
    CommandSpec("BlindTransfer", "agent_call", ("target", "dialog_id")),
    CommandSpec("GetDialog", "agent_dialog", ("dialog_id",)),
    CommandSpec("GetDialogControls", "agent_dialog", ("dialog_id",)),
    CommandSpec("UpdateWrapUp", "agent_dialog", ("dialog_id", "wrap_up_reason")),
    CommandSpec("UpdateCallVariable", "agent_call", ("dialog_id", "name", "value")),
    CommandSpec("GetDialogParticipants", "agent_call", ("dialog_id",)),
    CommandSpec("GetLoggedInAgents", "agent_call", ()),
    CommandSpec("wrapupreasoncode", "agent_work", ()),
    CommandSpec("reasoncodelogout", "agent_state", ()),
    CommandSpec("reasoncodenotready", "agent_state", ()),
    CommandSpec("ZOOMPauseRecording", "zoom", ()),
    CommandSpec("ZOOMResumeRecording", "zoom", ()),
    CommandSpec("AcceptOutboundPreview", "agent_call", ("dialog_id",), ("action",)),
    CommandSpec("RejectOutboundPreview", "agent_call", ("dialog_id",), ("action",)),
    CommandSpec("CloseOutboundPreview", "agent_call", ("dialog_id",), ("action",)),
    CommandSpec("getphonebooks", "phonebook", ()),
    CommandSpec("getcontacts", "contacts", ("phonebook_id",)),
    CommandSpec("getqueuelist", "supervisor_queue_info", ()),
    CommandSpec("getteamusers", "supervisor_team", ("team_id",), ("subscribe",), supervisor=True),
    CommandSpec("getteamusersstate", "supervisor_team_member_state", ("team_id",), supervisor=True),
    CommandSpec("SilentMonitor", "supervisor_dialog", ("agent_extension",), supervisor=True),
    CommandSpec("EndSilentMonitor", "supervisor_dialog", ("dialog_id",), supervisor=True),
    CommandSpec("DropParticipant", "supervisor_dialog", ("dialog_id", "participant_extension"), supervisor=True),
    CommandSpec("BargeCall", "agent_call", ("agent_extension", "dialog_id"), supervisor=True),
    CommandSpec("getteamphonebooks", "phonebook", ("team_id",), supervisor=True),
]
COMMANDS: dict[str, CommandSpec] = {spec.name.lower(): spec for spec in _SPECS}


class CommandError(Exception):
    def __init__(self, code: str, message: str, command: str = ""):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.command = code, message, command

    def event(self) -> dict[str, Any]:
        return {"type": "Error", "code": self.code, "command": self.command, "message": self.message}


@dataclass(frozen=True)
class Command:
    spec: CommandSpec
    who: str                  # the id after '#': an agent, or a client destination for Hello/Beat
    args: dict[str, str]


def addressee(frames: list[bytes]) -> str | None:
    """The id after '#' of a command that may not parse (unknown name, wrong parameters):
    whom to tell why it was refused."""
    if not frames:
        return None
    who = frames[0].decode(errors="replace").partition("#")[2].strip()
    return who[:200] or None


def parse(frames: list[bytes]) -> Command:
    """`[name#id, body]` -> Command; CommandError(BAD_COMMAND) says what is wrong."""
    if len(frames) not in (1, 2):
        raise CommandError(BAD_COMMAND, f"a command is [name#id, body], not {len(frames)} frames")
    try:
        head = frames[0].decode()
        body = frames[1].decode() if len(frames) == 2 else ""
    except UnicodeDecodeError:
        raise CommandError(BAD_COMMAND, "a command is UTF-8 text")
    name, sep, who = head.partition("#")
    spec = COMMANDS.get(name.strip().lower())
    if spec is None:
        raise CommandError(BAD_COMMAND, f"unknown command {name[:40]!r}", name[:40])
    if not sep or not who.strip():
        raise CommandError(BAD_COMMAND, f"{spec.name} needs '#<id>' after its name", spec.name)
    values = [v.strip() for v in body.split(",")] if body.strip() else []
    names = spec.params + spec.optional
    if len(values) < len(spec.params) or len(values) > len(names):
        wanted = ",".join(f"<{p}>" for p in spec.params) + "".join(f"[,<{p}>]" for p in spec.optional)
        # the parameters are not echoed: they may hold a password
        raise CommandError(BAD_COMMAND, f"{spec.name} takes {wanted or 'no parameters'}, got {len(values)} "
                                        f"parameters", spec.name)
    return Command(spec, who.strip(), dict(zip(names, values)))


# The events a GC publishes (protocol.md 2.3).
EVENT_TYPES = ("System", "AgentInfo", "State", "Dialog", "DialogControls", "ReasonCodes", "QueueList", "TeamInfo",
               "TeamUsersState", "LoggedInAgents", "PhoneBooks", "Contacts", "Recording", "Error")


def frames(name: str, who: str, *params: str) -> list[bytes]:
    return [f"{name}#{who}".encode(), ",".join(params).encode()]


def event_frames(topic: bytes, event: dict[str, Any]) -> list[bytes]:
    """Published as `[topic, type, body]`, like every other event stream."""
    return [topic, str(event["type"]).encode(), orjson.dumps(event)]
