"""The message catalogue of protocol.md section 1.1, plus Error.

A message is identified by the queue it travels on and its JMS type: `AgentState` on
`General` (#3, from a Chat Server) is not the same message as `AgentState` on
`RoutingEngine` (#10, from Comm). Each spec lists the fields a receiver requires and the
optional ones it understands; any other field is carried along untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

# Queues (PULL sockets, bound by their one consumer) and streams (PUB sockets).
GENERAL = "General"
ROUTING_ENGINE = "RoutingEngine"
COMMUNICATION_SERVER = "CommunicationServer"
CHAT_EVENTS = "ChatEvents"
GC = "GC"
GC_EVENTS = "GCEvents"
ENDPOINT_NAMES = (GENERAL, ROUTING_ENGINE, COMMUNICATION_SERVER, CHAT_EVENTS, GC, GC_EVENTS)

# Categories (protocol.md section 1).
AGENT_STATE = "agent-state"
TASK_STATE = "task-state"
NEW_TASK = "new task"

STR = "string"
OBJECT = "object"
PARAMS = "params"  # a list of [key, value] pairs, or an object
LIST = "list"
INT = "integer"


@dataclass(frozen=True)
class Spec:
    number: int
    type: str
    queue: str
    category: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    # field name -> kind; fields not listed here are strings
    kinds: dict[str, str] = field(default_factory=dict)

    def kind(self, name: str) -> str:
        return self.kinds.get(name, STR)

    @cached_property
    def checks(self) -> tuple[tuple[str, str, bool], ...]:
        """(field, kind, required) for every field the spec names: what validation walks."""
        return tuple((name, self.kind(name), True) for name in self.required) + tuple(
            (name, self.kind(name), False) for name in self.optional)

    @cached_property  # asked for every message received
    def mrd_key(self) -> str | None:
        """How this message spells the MRD key, if it has one."""
        for name in self.required + self.optional:
            if name in MRD_SPELLINGS:
                return name
        return None


# Fields every body may carry (protocol.md section 1.2).
ENVELOPE = ("MsgId", "ReplyTo")

SPECS: tuple[Spec, ...] = (
    Spec(1, "Connect", GENERAL, AGENT_STATE, ("AgentId", "Password", "Destination"), ("Extension",)),
    Spec(2, "Login", GENERAL, AGENT_STATE, ("AgentId", "Password", "Mrd")),
    Spec(3, "AgentState", GENERAL, AGENT_STATE, ("AgentId", "State", "Mrd"), ("ReasonCode",)),
    Spec(4, "Conference", GENERAL, AGENT_STATE, ("TaskId", "ConferenceOwner", "ConferenceParticipant", "Mrd")),
    Spec(5, "Conference", ROUTING_ENGINE, AGENT_STATE, ("TaskId", "ConferenceOwner", "ConferenceParticipant", "Mrd")),
    Spec(6, "TaskConferenced", COMMUNICATION_SERVER, AGENT_STATE, ("TaskId", "OwnerAgentId", "ParticipantAgentId")),
    Spec(7, "Transfer", GENERAL, AGENT_STATE, ("TaskId", "OwnerAgentId", "RecipientAgentId")),
    Spec(8, "Transfer", ROUTING_ENGINE, AGENT_STATE, ("TaskId", "OwnerAgentId", "RecipientAgentId"), ("MRD",)),
    Spec(9, "TaskAgentTransferred", COMMUNICATION_SERVER, AGENT_STATE, ("TaskId", "AgentId", "PreviousAgentId")),
    Spec(10, "AgentState", ROUTING_ENGINE, AGENT_STATE, ("AgentId", "State", "MRD"), ("ReasonCode", "StateChangeTime")),
    # AgentId is optional here: a customer who leaves a queued task has no agent.
    Spec(11, "TaskState", GENERAL, TASK_STATE, ("TaskId", "State"), ("AgentId", "Code")),
    Spec(12, "TaskState", ROUTING_ENGINE, TASK_STATE, ("TaskId", "MRD", "State"), ("AgentId", "Code")),
    Spec(13, "Task", GENERAL, NEW_TASK, ("Mrd", "ClientUniqueId"), ("name", "params"), {"params": PARAMS}),
    Spec(14, "NewTask", ROUTING_ENGINE, NEW_TASK, ("MRD", "TaskId"), ("params",), {"params": OBJECT}),
    Spec(15, "TaskAgentSelected", COMMUNICATION_SERVER, NEW_TASK, ("TaskId", "AgentId", "Status")),
    Spec(16, "GetAgentState", GENERAL, AGENT_STATE, ("AgentId", "Mrd")),
    Spec(17, "GetTaskState", GENERAL, TASK_STATE, ("TaskId",), ("AgentId",)),
    # Ours: the MRE's state is rebuilt from Comm's, never trusted across restarts (design.md 6).
    # The MRE asks with Resync when it starts; Comm answers with a Snapshot of every logged-in
    # agent and live task, and sends one unasked when Comm itself starts.
    Spec(101, "Resync", COMMUNICATION_SERVER, AGENT_STATE, (), ("Reason",)),
    # `Decisions`: the stream the MRE numbers its decisions on once it has applied this
    # snapshot; Comm takes decisions on no other (actors/comm/decisions.py).
    Spec(102, "Snapshot", ROUTING_ENGINE, AGENT_STATE, ("Epoch", "Agents", "Tasks"), ("Decisions",),
         kinds={"Agents": LIST, "Tasks": LIST}),
    # Ours: a Chat Server's liveness beat, every HEARTBEAT_INTERVAL. Once a destination has
    # sent one, Comm expects them: after SESSION_TIMEOUT without any message from it, its
    # agents go UNKNOWN; after the grace period they are logged out (AGENT_LOGOUT).
    Spec(103, "Heartbeat", GENERAL, AGENT_STATE, ("Destination",)),
    # Ours: a Chat Server that saw a gap in its numbered stream (Seq, Stream) asks for what
    # it should hold: Comm answers on Destination with `Snapshot {Destination, Agents, Tasks,
    # Unknown}`: the desk's agents, the live tasks it created or its agents hold, and the
    # state of each task named in TaskIds (live or closed; `Unknown` lists those Comm lost).
    Spec(104, "Resync", GENERAL, AGENT_STATE, ("Destination",), ("TaskIds",), {"TaskIds": LIST}),
    # Ours: Comm confirms the MRE's numbered decisions (TaskAgentSelected, TaskAgentTransferred,
    # TaskConferenced carry the MRE's own Seq and Stream): every one up to `Through` of the
    # MRE stream `Decisions` is applied. The MRE sends again what is not confirmed in time.
    Spec(105, "Confirm", ROUTING_ENGINE, NEW_TASK, ("Decisions", "Through"), kinds={"Through": INT}),
)

# Ours: Comm's liveness beat, published every second on this topic of ChatEvents. A Chat
# Server that sees a new Epoch knows Comm restarted and logs its agents in again.
HEARTBEAT = "Heartbeat"
HEARTBEAT_TOPIC = "mroute.comm"
HEARTBEAT_INTERVAL = 1.0
SESSION_TIMEOUT = 3 * HEARTBEAT_INTERVAL

BY_QUEUE: dict[str, dict[str, Spec]] = {}
for _spec in SPECS:
    BY_QUEUE.setdefault(_spec.queue, {})[_spec.type] = _spec

# Errors go back to the sender as type Error (protocol.md section 1.2).
ERROR = "Error"
ERROR_FIELDS = ("Code", "Reason", "Type", "MsgId")

# The MRD key is spelt `Mrd` in some messages and `MRD` in others: accept either on input.
MRD_SPELLINGS = ("Mrd", "MRD")
