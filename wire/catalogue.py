"""The message catalogue of protocol.md section 1: the one source of the contract.

A message is identified by the queue it travels on and its JMS type: `AgentState` on
`General` (#3, from a Chat Server) is not the same message as `AgentState` on
`RoutingEngine` (#10, from Comm). Each spec lists the fields a receiver requires and the
optional ones it understands; any other field is carried along untouched. What Comm
publishes to the Chat Servers on ChatEvents is here too (#201-#209), with what answers
each request, the values a field may take and the error codes a request may draw: Comm
validates with it (codec.py), the one client reads with it (wire/client.py), and the
AsyncAPI document and typed messages are generated from it (wire/generate.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from . import states as S

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
BOOL = "boolean"

# Who sends on each queue and who receives (protocol.md section 1's table).
CHAT_SERVER = "Chat Server"
COMM = "Communication Server"
MRE = "MRE"
ROLES: dict[str, tuple[str, str]] = {GENERAL: (CHAT_SERVER, COMM), ROUTING_ENGINE: (COMM, MRE),
                                     COMMUNICATION_SERVER: (MRE, COMM), CHAT_EVENTS: (COMM, CHAT_SERVER)}

# Error codes any request on General may draw (a body that is not JSON, a field missing or
# of the wrong kind, a fault of Comm's), and those that depend on what it asks.
ANY_REQUEST_ERRORS = (S.BAD_MESSAGE, S.MISSING_FIELD, S.BAD_FIELD, S.GENERAL_ERROR)


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
    answer: str | None = None   # a request's answer type (on its ReplyTo), besides Error
    errors: tuple[str, ...] = ()  # the Error codes a request may draw, besides ANY_REQUEST_ERRORS
    # field name -> the values it takes: for the schema and the reader (Comm checks them
    # where it handles the message: a State it does not allow is INVALID_STATE, not BAD_FIELD)
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    doc: str = ""

    @property
    def sender(self) -> str:
        return ROLES[self.queue][0]

    @property
    def receiver(self) -> str:
        return ROLES[self.queue][1]

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
# Fields every message Comm publishes to a destination carries: the MsgId of the request
# it answers (if it answers one), and its place in that destination's numbered stream.
PUBLISHED_ENVELOPE = ("MsgId", "Seq", "Stream")

_AUTH = S.AUTHORIZATION_FAILURE
_WRITE = (S.UNAVAILABLE,)  # a request that changes something, while the journal cannot be written
_AGENT_STATE = {"State": S.AGENT_STATES}
_TASK_STATE = {"State": S.TASK_STATES, "Code": ("", *S.TASK_CODES)}   # "": no code (not ended, nor moved)

SPECS: tuple[Spec, ...] = (
    Spec(1, "Connect", GENERAL, AGENT_STATE, ("AgentId", "Password", "Destination"), ("Extension",),
         answer="Ack", errors=(_AUTH, S.NOT_FOUND, *_WRITE),
         doc="Pre-login: the agent's session at Destination (its desk). A session alive at another desk moves "
             "here with the password; the old desk hears AgentState LOGOUT, ReasonCode SESSION_MOVED."),
    Spec(2, "Login", GENERAL, AGENT_STATE, ("AgentId", "Password", "Mrd"), answer="AgentState",
         errors=(_AUTH, S.NOT_FOUND, S.INVALID_STATE, *_WRITE),
         doc="The agent logs into one MRD and lands in NOT_READY; only from the desk holding its session."),
    Spec(3, "AgentState", GENERAL, AGENT_STATE, ("AgentId", "State", "Mrd"), ("ReasonCode",), answer="AgentState",
         errors=(_AUTH, S.NOT_FOUND, S.INVALID_STATE, *_WRITE), values={"State": tuple(sorted(S.AGENT_REQUESTABLE))},
         doc="An agent asks for NOT_READY, READY or LOGOUT; only from the desk holding its session."),
    Spec(4, "Conference", GENERAL, AGENT_STATE, ("TaskId", "ConferenceOwner", "ConferenceParticipant", "Mrd"),
         answer="TaskConferenced", errors=(_AUTH, S.NOT_FOUND, S.INVALID_STATE, *_WRITE),
         doc="The owner asks to add a participant to a task; only from the desk of an agent holding the task."),
    Spec(5, "Conference", ROUTING_ENGINE, AGENT_STATE, ("TaskId", "ConferenceOwner", "ConferenceParticipant", "Mrd")),
    Spec(6, "TaskConferenced", COMMUNICATION_SERVER, AGENT_STATE, ("TaskId", "OwnerAgentId", "ParticipantAgentId")),
    Spec(7, "Transfer", GENERAL, AGENT_STATE, ("TaskId", "OwnerAgentId", "RecipientAgentId"),
         answer="TaskAgentTransferred", errors=(_AUTH, S.NOT_FOUND, S.INVALID_STATE, *_WRITE),
         doc="The owner hands the task to the recipient; only from the desk of an agent holding the task."),
    Spec(8, "Transfer", ROUTING_ENGINE, AGENT_STATE, ("TaskId", "OwnerAgentId", "RecipientAgentId"), ("MRD",)),
    Spec(9, "TaskAgentTransferred", COMMUNICATION_SERVER, AGENT_STATE, ("TaskId", "AgentId", "PreviousAgentId")),
    Spec(10, "AgentState", ROUTING_ENGINE, AGENT_STATE, ("AgentId", "State", "MRD"), ("ReasonCode", "StateChangeTime"),
         values=_AGENT_STATE),
    # AgentId is optional here: a customer who leaves a queued task has no agent.
    Spec(11, "TaskState", GENERAL, TASK_STATE, ("TaskId", "State"), ("AgentId", "Code"), answer="TaskState",
         errors=(_AUTH, S.NOT_FOUND, S.INVALID_STATE, *_WRITE), values=_TASK_STATE,
         doc="An agent accepts (ACTIVE), wraps up (WRAP_UP) or closes (CLOSED, Code DONE) a task it holds, naming "
             "itself in AgentId (required for an agent: MISSING_FIELD without it); a customer leaves (CLOSED, "
             "Code CANCELLED, no AgentId) from the destination that created it."),
    Spec(12, "TaskState", ROUTING_ENGINE, TASK_STATE, ("TaskId", "MRD", "State"), ("AgentId", "Code"),
         values=_TASK_STATE),
    Spec(13, "Task", GENERAL, NEW_TASK, ("Mrd", "ClientUniqueId"), ("name", "params"), {"params": PARAMS},
         answer="TaskState", errors=(S.NOT_FOUND, S.OVERLOADED, *_WRITE),
         doc="A customer asks for service; answered at once with TaskState QUEUED and the TaskId Comm gave it. "
             "params: [key, value] pairs or an object; `queue` and `priority` route it."),
    Spec(14, "NewTask", ROUTING_ENGINE, NEW_TASK, ("MRD", "TaskId"), ("params",), {"params": OBJECT}),
    Spec(15, "TaskAgentSelected", COMMUNICATION_SERVER, NEW_TASK, ("TaskId", "AgentId", "Status"), ("MRD",),
         values={"Status": (S.SELECTED_RESERVED,)}),
    Spec(16, "GetAgentState", GENERAL, AGENT_STATE, ("AgentId", "Mrd"), answer="AgentState", errors=(S.NOT_FOUND,),
         doc="An agent's state on one MRD; harmless, so a new subscriber asks it (about one of its own agents) "
             "until the answer arrives: its subscription is live."),
    Spec(17, "GetTaskState", GENERAL, TASK_STATE, ("TaskId",), ("AgentId",), answer="TaskState",
         errors=(S.NOT_FOUND,), doc="A task's state."),
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
    Spec(103, "Heartbeat", GENERAL, AGENT_STATE, ("Destination",), answer="Ack", errors=(_AUTH,),
         doc="A desk's liveness beat, every second (ours). Once a destination sent one, Comm watches it: 3 s "
             "without any message from it and its agents go UNKNOWN, then are logged out. Only for the "
             "sender's own destination."),
    # Ours: a Chat Server that saw a gap in its numbered stream (Seq, Stream) asks for what
    # it should hold: Comm answers on Destination with `Snapshot {Destination, Agents, Tasks,
    # Unknown}`: the desk's agents, the live tasks it created or its agents hold, and the
    # state of each task named in TaskIds (live or closed; `Unknown` lists those Comm lost).
    # `Reset: true` (once, when a Chat Server starts): the live tasks it created and does not
    # name are gone with its earlier process, and Comm ends them.
    Spec(104, "Resync", GENERAL, AGENT_STATE, ("Destination",), ("TaskIds", "Reset"), {"TaskIds": LIST, "Reset": BOOL},
         answer="Snapshot", errors=(_AUTH, *_WRITE),
         doc="After a gap in its numbered stream, or a new Stream, a desk asks what it should hold (ours). "
             "Only for the sender's own destination. Reset: true, once when a Chat Server starts, ends the "
             "live tasks it created and does not name."),
    # Ours: Comm confirms the MRE's numbered decisions (TaskAgentSelected, TaskAgentTransferred,
    # TaskConferenced carry the MRE's own Seq and Stream): every one up to `Through` of the
    # MRE stream `Decisions` is applied. The MRE sends again what is not confirmed in time.
    Spec(105, "Confirm", ROUTING_ENGINE, NEW_TASK, ("Decisions", "Through"), kinds={"Through": INT}),
    # What Comm publishes to a Chat Server, on its destination's topic of ChatEvents (1.2).
    Spec(201, "AgentState", CHAT_EVENTS, AGENT_STATE, ("AgentId", "State", "Mrd", "StateChangeTime"),
         ("ReasonCode",), values=_AGENT_STATE,
         doc="An agent's state changed on one MRD, or the answer to Login, AgentState or GetAgentState. "
             "StateChangeTime: UTC, ISO 8601 (Comm's start for an agent never logged in since)."),
    Spec(202, "TaskState", CHAT_EVENTS, TASK_STATE, ("TaskId", "State", "MRD"),
         ("AgentId", "Code", "ClientUniqueId", "Participants"), {"Participants": LIST}, values=_TASK_STATE,
         doc="A task's state changed, or the answer to Task (QUEUED, with the TaskId), TaskState or GetTaskState."),
    Spec(203, "TaskAgentSelected", CHAT_EVENTS, NEW_TASK, ("TaskId", "AgentId", "Status"), ("MRD",),
         values={"Status": (S.SELECTED_RESERVED,)},
         doc="The MRE chose an agent: the task is offered to it (RESERVED) until it accepts (TaskState ACTIVE) "
             "or the offer times out (RONA). Sent to the desk of the agent and to the task's creator."),
    Spec(204, "TaskAgentTransferred", CHAT_EVENTS, AGENT_STATE, ("TaskId", "AgentId", "PreviousAgentId"),
         doc="A task moved to AgentId; the answer to Transfer."),
    Spec(205, "TaskConferenced", CHAT_EVENTS, AGENT_STATE, ("TaskId", "OwnerAgentId", "ParticipantAgentId"),
         doc="A participant joined a task; the answer to Conference."),
    Spec(206, "Ack", CHAT_EVENTS, AGENT_STATE, ("Type",),
         doc="The answer to Connect and Heartbeat; Type: the request's type (Connect or Heartbeat)."),
    Spec(207, "Error", CHAT_EVENTS, AGENT_STATE, ("Code", "Reason"), ("Type", "Field"),
         values={"Code": S.ERROR_CODES},
         doc="A request refused: nothing changed. Type: the request's type; Field: the field at fault."),
    Spec(208, "Snapshot", CHAT_EVENTS, AGENT_STATE, ("Destination", "Agents", "Tasks", "Unknown"),
         kinds={"Agents": LIST, "Tasks": LIST, "Unknown": LIST},
         doc="The answer to Resync: the desk's agents (AgentState rows), the live tasks it created or its "
             "agents hold (TaskState rows) and each task it named; Unknown: those Comm has no record of."),
    Spec(209, "Heartbeat", CHAT_EVENTS, AGENT_STATE, ("Epoch", "Stream"),
         doc="Comm's beat, every second on the topic mroute.comm, heard by every subscriber and not numbered. "
             "A new Epoch: a Comm without the old one's journal (log the agents in again); a new Stream: "
             "another Comm process (resync)."),
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
REQUESTS = BY_QUEUE[GENERAL]
PUBLISHED = BY_QUEUE[CHAT_EVENTS]

# Errors go back to the sender as type Error (protocol.md section 1.2).
ERROR = "Error"
ERROR_FIELDS = ("Code", "Reason", "Type", "MsgId")

# The MRD key is spelt `Mrd` in some messages and `MRD` in others: accept either on input.
MRD_SPELLINGS = ("Mrd", "MRD")
