"""The contract of the README's "Talking to a running topology" against real processes
over real sockets: every request answered by exactly one message of its own kind carrying its MsgId, a numbered
stream (Seq, Stream) to every destination, and a slow subscriber that sees its gaps, finds
them counted by Comm and recovers with Resync.

The desk here reads with the one client's reader (wire/client.py `published`) but sends
and keeps on its own: a contract test must see every copy of an answer and say what did NOT
arrive, which the client by design hides (it hands each answer back once). Nothing waits by sleeping: each wait is on a
condition (a poll with a deadline, or a round trip through Comm); the only deliberate delay
is the slow reader's pacing in the third test, which is what that test is about."""

from __future__ import annotations

import itertools
import time
from typing import Any, Callable, Iterator

import orjson
import pytest
import zmq

from launch import client as control_client
from wire import codec
from wire.catalogue import HEARTBEAT_TOPIC
from wire.client import published

from ..helpers import base_topology, wait_until

# The reply table: request -> the type of the one message that answers it.
ANSWER = {"Connect": "Ack", "Heartbeat": "Ack", "Login": "AgentState", "AgentState": "AgentState",
          "GetAgentState": "AgentState", "Task": "TaskState", "TaskState": "TaskState",
          "GetTaskState": "TaskState", "Transfer": "TaskAgentTransferred", "Conference": "TaskConferenced",
          "Resync": "Snapshot"}

Message = tuple[str, str, dict[str, Any]]  # (topic, type, body)
AUTO = object()


class Listener:
    """A SUB on ChatEvents and everything it received, in order of arrival."""

    def __init__(self, ctx: zmq.Context, endpoint: str, prefixes: list[bytes], rcvhwm: int | None = None):
        self.sub = ctx.socket(zmq.SUB)
        self.sub.linger = 0
        if rcvhwm is not None:
            self.sub.rcvhwm = rcvhwm
        self.sub.connect(endpoint)
        for prefix in prefixes:
            self.sub.setsockopt(zmq.SUBSCRIBE, prefix)
        self.log: list[Message] = []
        self.pending: list[Message] = []  # the rest of a batch

    def take(self, timeout: float) -> Message | None:
        """The next message, waiting at most `timeout` seconds for it (a batch's come one by one)."""
        if not self.pending:
            if not self.sub.poll(max(0, int(timeout * 1000))):
                return None
            self.pending = [(to, message.type, message.body) for to, message in published(self.sub.recv_multipart())]
        message = self.pending.pop(0)
        self.log.append(message)
        return message

    def take_until(self, done: Callable[[Message], bool], timeout: float, what: str) -> Message:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.take(left)
            if message is not None and done(message):
                return message
        tail = "\n  ".join(f"{t} {m} {b}" for t, m, b in self.log[-15:])
        raise AssertionError(f"no {what} within {timeout} s; last received:\n  {tail}")

    def seen(self, msg_id: str) -> list[Message]:
        return [m for m in self.log if m[2].get("MsgId") == msg_id]


class Desk:
    """A Chat Server: PUSH to General, SUB to its destination; optionally a wiretap, a
    second SUB subscribed to every topic Comm publishes to in these tests, to see what went
    anywhere else."""

    _ids = itertools.count(1)

    def __init__(self, endpoints: dict[str, str], destination: str, *, rcvhwm: int | None = None,
                 wiretap: bool = False, also: tuple[str, ...] = ()):
        self.destination = destination
        self.ctx = zmq.Context()
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.linger = 0
        self.push.connect(endpoints["General"])
        self.inbox = Listener(self.ctx, endpoints["ChatEvents"],
                              [destination.encode() + b"\x00", *(a.encode() + b"\x00" for a in also)], rcvhwm)
        # Comm grants no subscription to a prefix (the empty one would hear every desk): the
        # wiretap subscribes to every destination a test's Comm publishes to, one by one
        # (and it takes all that comes, rcvhwm 0: a second subscriber of our topic that reads
        # only at the end would otherwise hold up what Comm sends us, a topic being one queue)
        self.wiretap = Listener(self.ctx, endpoints["ChatEvents"], [codec.topic(d) for d in (
            destination, *also, codec.UNROUTED_ERRORS, HEARTBEAT_TOPIC)], rcvhwm=0) if wiretap else None
        self.sent: dict[str, list[str]] = {}       # MsgId -> the answer type expected, once per send
        self.consumed: set[int] = set()            # indexes of inbox.log taken by `expect`
        self.base = 0                              # index in inbox.log of the handshake's last answer

    @property
    def log(self) -> list[Message]:
        return self.inbox.log

    def mine(self) -> list[Message]:
        """What arrived on our own topic since the handshake's last answer (included)."""
        return [m for m in self.log[self.base:] if m[0] == self.destination]

    def close(self) -> None:
        self.ctx.destroy(linger=0)

    def send(self, type: str, body: dict[str, Any], *, msg_id: Any = AUTO, answer: str | None = None,
             reply_to: bool = True) -> str | None:
        """Send a request; `answer`: the type expected to answer it (default: the table's)."""
        body = dict(body)
        if msg_id is AUTO:
            msg_id = f"{self.destination}-m{next(self._ids)}"
        if msg_id is not None:
            body["MsgId"] = msg_id
            self.sent.setdefault(msg_id, []).append(answer or ANSWER[type])
        if reply_to:
            body.setdefault("ReplyTo", self.destination)
        self.push.send_multipart([type.encode(), orjson.dumps(body)])
        return msg_id

    def answers(self, msg_id: str, count: int = 1, timeout: float = 5) -> list[Message]:
        """The first `count` messages carrying `msg_id` (waiting for them)."""
        def enough() -> bool:
            return len(self.inbox.seen(msg_id)) >= count
        deadline = time.monotonic() + timeout
        while not enough() and (left := deadline - time.monotonic()) > 0:
            self.inbox.take(left)
        found = self.inbox.seen(msg_id)
        assert len(found) >= count, f"{len(found)} messages carry MsgId {msg_id}, expected {count}; " \
                                    f"last received: {self.log[-10:]}"
        return found[:count]

    def call(self, type: str, body: dict[str, Any], *, msg_id: Any = AUTO, answer: str | None = None,
             nth: int = 1) -> dict[str, Any]:
        """Send a request, wait for the message carrying its MsgId and check its type."""
        sent = self.send(type, body, msg_id=msg_id, answer=answer)
        assert sent is not None
        topic, got, reply = self.answers(sent, nth)[nth - 1]
        want = answer or ANSWER[type]
        assert (topic, got) == (self.destination, want), \
            f"{type} {body} was answered by {got} on {topic!r} ({reply}), expected {want} on {self.destination!r}"
        return reply

    def expect(self, type: str, timeout: float = 5, **fields: Any) -> dict[str, Any]:
        """The first message of `type` with `fields` not taken already (waiting for it)."""
        def match(i: int) -> bool:
            _, t, body = self.log[i]
            return i not in self.consumed and t == type and all(body.get(k) == v for k, v in fields.items())
        deadline = time.monotonic() + timeout
        i = self.base
        while True:
            while i < len(self.log):
                if match(i):
                    self.consumed.add(i)
                    return self.log[i][2]
                i += 1
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.inbox.take(left)
        raise AssertionError(f"no {type} with {fields} within {timeout} s; got: {self.log[-15:]}")

    def handshake(self, agent_id: str = "alice", timeout: float = 10) -> dict[str, Any]:
        """Repeat a harmless GetAgentState until its answer comes back on every SUB of ours;
        then one more, whose answer is the base: everything after it is received live."""
        listeners = [self.inbox, *([self.wiretap] if self.wiretap else [])]
        asked: list[str] = []
        live: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(live) < len(listeners):
            assert time.monotonic() < deadline, "the subscription never went live"
            asked.append(self.send("GetAgentState", {"AgentId": agent_id, "Mrd": "chat"},
                                   msg_id=f"{self.destination}-hello-{len(asked)}") or "")
            for n, listener in enumerate(listeners):
                message = listener.take(0.05)
                while message is not None:
                    if message[2].get("MsgId") in asked:
                        live.add(n)
                    message = listener.take(0)
        last = self.send("GetAgentState", {"AgentId": agent_id, "Mrd": "chat"},
                         msg_id=f"{self.destination}-hello-last")
        for listener in listeners:
            listener.take_until(lambda m: m[2].get("MsgId") == last, 5, "the handshake's last answer")
        self.base = len(self.log) - 1
        for msg_id in [*asked, last]:
            self.sent.pop(msg_id, None)
        return self.log[self.base][2]

    def settle(self, rounds: int = 5, at_least: float = 0.2) -> None:
        """Harmless round trips until `rounds` are done and `at_least` seconds passed: what
        Comm published to us before the last one has arrived, on the wiretap too."""
        start = time.monotonic()
        n = 0
        while n < rounds or time.monotonic() - start < at_least:
            msg_id = self.send("GetAgentState", {"AgentId": "alice", "Mrd": "chat"})
            assert msg_id is not None
            self.answers(msg_id)
            n += 1
        if self.wiretap is not None:
            self.wiretap.take_until(lambda m: m[2].get("MsgId") == msg_id, 5, "the last settle answer on the wiretap")


@pytest.fixture
def desks() -> Iterator[Callable[..., Desk]]:
    made: list[Desk] = []

    def make(*args: Any, **kwargs: Any) -> Desk:
        desk = Desk(*args, **kwargs)
        made.append(desk)
        return desk
    yield make
    for desk in made:
        desk.close()


def comm_stats(running: Any) -> dict[str, Any]:
    actors = control_client.ask(running.topology, "stats")["actors"]
    names = [name for name in actors if name.rpartition(".")[0] == "comm"]
    assert len(names) == 1, f"no single comm actor in {list(actors)}"
    return actors[names[0]]


# 1 --------------------------------------------------------------------------------------------
def test_every_request_is_answered_by_its_own_kind(start_topology, desks):
    running = start_topology(base_topology("replies"))
    desk = desks(running.endpoints(), "desk-1", wiretap=True)
    desk.handshake()
    agents = {"alice": "pw-alice", "bob": "pw-bob", "agent1": "secret"}

    # Connect -> Ack {MsgId, Type}; Login -> AgentState NOT_READY
    for agent, password in agents.items():
        ack = desk.call("Connect", {"AgentId": agent, "Password": password, "Destination": "desk-1"})
        assert ack["Type"] == "Connect"
        state = desk.call("Login", {"AgentId": agent, "Password": password, "Mrd": "chat"})
        assert (state["AgentId"], state["State"], state["Mrd"]) == (agent, "NOT_READY", "chat")

    # AgentState READY -> AgentState READY; GetAgentState -> AgentState (the same state)
    ready = desk.call("AgentState", {"AgentId": "alice", "State": "READY", "Mrd": "chat"})
    assert (ready["AgentId"], ready["State"], ready["Mrd"]) == ("alice", "READY", "chat")
    got = desk.call("GetAgentState", {"AgentId": "alice", "Mrd": "chat"})
    assert (got["State"], got["StateChangeTime"]) == ("READY", ready["StateChangeTime"])

    # Task -> TaskState QUEUED with TaskId, MRD, ClientUniqueId
    task_body = {"Mrd": "chat", "ClientUniqueId": "cust-1", "name": "Carol"}
    task_msg = desk.send("Task", task_body)
    assert task_msg is not None
    topic, kind, queued = desk.answers(task_msg)[0]
    assert (topic, kind) == ("desk-1", "TaskState")
    task_id = queued["TaskId"]
    assert isinstance(task_id, str) and task_id
    assert (queued["State"], queued["MRD"], queued["ClientUniqueId"]) == ("QUEUED", "chat", "cust-1")
    # ... a retry (same MsgId): answered again, the same task, not a second one
    again = desk.call("Task", task_body, msg_id=task_msg, nth=2)
    assert again["TaskId"] == task_id and again["State"] in ("QUEUED", "RESERVED"), again

    # The MRE offers it to alice, the only READY agent: notifications, no MsgId
    selected = desk.expect("TaskAgentSelected", TaskId=task_id)
    assert selected["AgentId"] == "alice" and "MsgId" not in selected, selected
    reserved = desk.expect("AgentState", AgentId="alice", State="RESERVED")
    assert "MsgId" not in reserved
    for agent in ("bob", "agent1"):
        assert desk.call("AgentState", {"AgentId": agent, "State": "READY", "Mrd": "chat"})["State"] == "READY"

    # TaskState ACTIVE from the offered agent -> the TaskState ACTIVE it caused, with AgentId;
    # the agent's AgentState ACTIVE arrives as a notification, without that MsgId
    accept_msg = desk.send("TaskState", {"AgentId": "alice", "TaskId": task_id, "State": "ACTIVE"})
    assert accept_msg is not None
    topic, kind, active = desk.answers(accept_msg)[0]
    assert (topic, kind) == ("desk-1", "TaskState")
    assert (active["TaskId"], active["State"], active["AgentId"]) == (task_id, "ACTIVE", "alice"), active
    busy = desk.expect("AgentState", AgentId="alice", State="ACTIVE")
    assert busy.get("MsgId") is None, f"the agent's AgentState carries the TaskState's MsgId: {busy}"

    # GetTaskState -> TaskState
    state = desk.call("GetTaskState", {"TaskId": task_id})
    assert (state["TaskId"], state["State"], state["AgentId"], state["MRD"]) == (task_id, "ACTIVE", "alice", "chat")

    # Transfer -> TaskAgentTransferred (once the MRE counted it)
    moved = desk.call("Transfer", {"TaskId": task_id, "OwnerAgentId": "alice", "RecipientAgentId": "bob"})
    assert (moved["TaskId"], moved["AgentId"], moved["PreviousAgentId"]) == (task_id, "bob", "alice"), moved

    # Conference -> TaskConferenced
    conf = desk.call("Conference", {"TaskId": task_id, "ConferenceOwner": "bob",
                                    "ConferenceParticipant": "agent1", "Mrd": "chat"})
    assert (conf["TaskId"], conf["OwnerAgentId"], conf["ParticipantAgentId"]) == (task_id, "bob", "agent1"), conf
    state = desk.call("GetTaskState", {"TaskId": task_id})
    assert (state["State"], state["AgentId"], state["Participants"]) == ("ACTIVE", "bob", ["agent1"]), state

    # Resync -> Snapshot: the desk's agents, its task, the unknown id in Unknown
    snap = desk.call("Resync", {"Destination": "desk-1", "TaskIds": [task_id, "no-such-task"]})
    assert snap["Destination"] == "desk-1"
    assert sorted(a["AgentId"] for a in snap["Agents"]) == sorted(agents), snap["Agents"]
    assert all(a["Mrd"] == "chat" for a in snap["Agents"])
    last_heard = {b["AgentId"]: b["State"] for _, t, b in desk.mine() if t == "AgentState"}
    assert {a["AgentId"]: a["State"] for a in snap["Agents"]} == last_heard, \
        "the Snapshot's agent states differ from what the desk heard last"
    assert [t["TaskId"] for t in snap["Tasks"]] == [task_id], snap["Tasks"]
    row = snap["Tasks"][0]
    assert (row["State"], row["AgentId"], row["MRD"], row["ClientUniqueId"], row["Participants"]) == \
        ("ACTIVE", "bob", "chat", "cust-1", ["agent1"]), row
    assert snap["Unknown"] == ["no-such-task"], snap["Unknown"]

    # Refused requests -> Error {Code, Field, MsgId, Type}; a retry of one is refused again
    err = desk.call("TaskState", {"AgentId": "alice", "TaskId": "no-such-task", "State": "ACTIVE"}, answer="Error")
    assert (err["Code"], err["Field"], err["Type"]) == ("NOT_FOUND", "TaskId", "TaskState"), err
    nap = {"AgentId": "agent1", "State": "NAP", "Mrd": "chat"}
    err = desk.call("AgentState", nap, answer="Error")
    assert (err["Code"], err["Field"], err["Type"]) == ("BAD_FIELD", "State", "AgentState"), err
    err = desk.call("AgentState", nap, msg_id=err["MsgId"], answer="Error", nth=2)
    assert (err["Code"], err["Field"]) == ("BAD_FIELD", "State"), err

    # TaskState CLOSED DONE -> TaskState CLOSED Code DONE
    closed = desk.call("TaskState", {"AgentId": "bob", "TaskId": task_id, "State": "CLOSED", "Code": "DONE"})
    assert (closed["TaskId"], closed["State"], closed["Code"]) == (task_id, "CLOSED", "DONE"), closed
    # the Task retried once more: the task's current state, still the same task
    again = desk.call("Task", task_body, msg_id=task_msg, nth=3)
    assert (again["TaskId"], again["State"], again["Code"]) == (task_id, "CLOSED", "DONE"), again

    # An AgentState retried: answered with the current state, not applied twice
    lunch = {"AgentId": "alice", "State": "NOT_READY", "Mrd": "chat", "ReasonCode": "lunch"}
    lunch_msg = desk.send("AgentState", lunch)
    assert lunch_msg is not None
    assert desk.answers(lunch_msg)[0][2]["State"] == "NOT_READY"
    ready_body = {"AgentId": "alice", "State": "READY", "Mrd": "chat"}
    ready = desk.call("AgentState", ready_body)
    assert ready["State"] == "READY"
    retry_mark = len(desk.log)
    retried = desk.call("AgentState", lunch, msg_id=lunch_msg, nth=2)
    assert (retried["State"], retried["StateChangeTime"]) == ("READY", ready["StateChangeTime"]), \
        f"a retried NOT_READY was applied again: {retried}"
    retried = desk.call("AgentState", ready_body, msg_id=ready["MsgId"], nth=2)
    assert (retried["State"], retried["StateChangeTime"]) == ("READY", ready["StateChangeTime"]), retried
    now = desk.call("GetAgentState", {"AgentId": "alice", "Mrd": "chat"})
    assert (now["State"], now["StateChangeTime"]) == ("READY", ready["StateChangeTime"]), now

    # Heartbeat (late: from now on Comm expects this desk to keep talking) with a MsgId
    # -> Ack; without one -> nothing (a round trip shows no Ack came)
    assert desk.call("Heartbeat", {"Destination": "desk-1"})["Type"] == "Heartbeat"
    mark = len(desk.log)
    desk.send("Heartbeat", {"Destination": "desk-1"}, msg_id=None)
    desk.call("GetAgentState", {"AgentId": "alice", "Mrd": "chat"})
    assert [m for m in desk.log[mark:] if m[1] == "Ack"] == [], "a Heartbeat without MsgId was answered"

    desk.settle()
    assert not [m for m in desk.log[retry_mark:] if m[1] == "AgentState" and m[2]["AgentId"] == "alice"
                and m[2]["State"] != "READY"], "alice moved again after the retries"

    # Only one task was ever created, whatever was retried
    assert comm_stats(running)["tasks_created"] == 1
    queued_ids = {b["TaskId"] for _, t, b in desk.mine() if t == "TaskState" and b["State"] == "QUEUED"}
    assert queued_ids == {task_id}, queued_ids

    # Every request: exactly as many messages carry its MsgId as it was sent, on our topic
    # and anywhere on ChatEvents, each of the type the table says.
    assert desk.wiretap is not None
    problems = []
    for msg_id, expected in desk.sent.items():
        here = [(topic, kind) for topic, kind, _ in desk.inbox.seen(msg_id)]
        anywhere = [(topic, kind) for topic, kind, _ in desk.wiretap.seen(msg_id)]
        want = [("desk-1", kind) for kind in expected]
        if here != want or anywhere != want:
            problems.append(f"{msg_id}: expected {want}, on desk-1 {here}, on ChatEvents {anywhere}")
    assert not problems, "\n".join(problems)

    # The sender gets the answer instead of the notification of the same change, never both
    mine = desk.mine()
    for state_name, code in (("QUEUED", None), ("ACTIVE", ""), ("CLOSED", "DONE")):
        notes = [b for _, t, b in mine if t == "TaskState" and b.get("TaskId") == task_id
                 and b["State"] == state_name and (code is None or b.get("Code") == code) and "MsgId" not in b]
        assert notes == [], f"TaskState {state_name} came both as an answer and as a notification: {notes}"
    for agent in agents:
        notes = [b for _, t, b in mine if t == "AgentState" and b["AgentId"] == agent
                 and b["State"] == "NOT_READY" and b.get("ReasonCode", "") == "" and "MsgId" not in b]
        assert notes == [], f"Login's AgentState NOT_READY came also as a notification: {notes}"


# 2 --------------------------------------------------------------------------------------------
def numbering_problems(messages: list[Message]) -> list[str]:
    """Seq 1, 2, 3... from the first message on, one Stream throughout."""
    problems = []
    for topic, kind, body in messages:
        if not isinstance(body.get("Seq"), int) or isinstance(body.get("Seq"), bool) \
                or not isinstance(body.get("Stream"), str):
            problems.append(f"{topic} {kind}: Seq {body.get('Seq')!r}, Stream {body.get('Stream')!r}")
    if problems:
        return problems
    first = messages[0][2]
    for n, (topic, kind, body) in enumerate(messages):
        if body["Seq"] != first["Seq"] + n or body["Stream"] != first["Stream"]:
            problems.append(f"message {n} ({kind}) to {topic}: Seq {body['Seq']} Stream {body['Stream']}, "
                            f"expected Seq {first['Seq'] + n} Stream {first['Stream']}")
    return problems


def test_every_message_to_a_destination_is_numbered(start_topology, desks):
    running = start_topology(base_topology("numbered"))
    endpoints = running.endpoints()
    desk = desks(endpoints, "desk-1")
    web = desks(endpoints, "web-1")
    beats = desks(endpoints, "mroute.comm")   # Comm's heartbeat topic, only listened to
    desk.handshake()
    web.handshake()

    for agent, password in (("alice", "pw-alice"), ("bob", "pw-bob")):
        desk.call("Connect", {"AgentId": agent, "Password": password, "Destination": "desk-1"})
        desk.call("Login", {"AgentId": agent, "Password": password, "Mrd": "chat"})
    desk.call("AgentState", {"AgentId": "alice", "State": "READY", "Mrd": "chat"})
    task_ids = []
    for n in range(3):  # alice takes two (max_tasks 2), the third waits
        task_ids.append(web.call("Task", {"Mrd": "chat", "ClientUniqueId": f"c{n}"})["TaskId"])
    for task_id in task_ids[:2]:
        desk.expect("TaskAgentSelected", TaskId=task_id, AgentId="alice")
        desk.call("TaskState", {"AgentId": "alice", "TaskId": task_id, "State": "ACTIVE"})
    desk.call("AgentState", {"AgentId": "bob", "State": "READY", "Mrd": "chat"})
    desk.expect("TaskAgentSelected", TaskId=task_ids[2], AgentId="bob")
    desk.call("TaskState", {"AgentId": "bob", "TaskId": task_ids[2], "State": "ACTIVE"})
    desk.call("TaskState", {"AgentId": "alice", "TaskId": task_ids[0], "State": "WRAP_UP"})
    for task_id, agent in ((task_ids[0], "alice"), (task_ids[1], "alice"), (task_ids[2], "bob")):
        desk.call("TaskState", {"AgentId": agent, "TaskId": task_id, "State": "CLOSED", "Code": "DONE"})
    web.call("TaskState", {"TaskId": "no-such-task", "State": "CLOSED", "Code": "CANCELLED"}, answer="Error")
    desk.call("AgentState", {"AgentId": "bob", "State": "SLEEPING", "Mrd": "chat"}, answer="Error")
    desk.call("Heartbeat", {"Destination": "desk-1"})
    snap = web.call("Resync", {"Destination": "web-1", "TaskIds": [*task_ids, "no-such-task"]})
    assert [(t["TaskId"], t["State"], t["Code"]) for t in snap["Tasks"]] == [(t, "CLOSED", "DONE") for t in task_ids]
    assert (snap["Agents"], snap["Unknown"]) == ([], ["no-such-task"]), snap
    for each in (desk, web):
        each.settle()
    for customer_note in ("TaskAgentSelected", "TaskState"):  # the customer heard of its tasks too
        assert any(t == customer_note and "MsgId" not in b for _, t, b in web.mine()), customer_note

    # Comm's heartbeat: not numbered (one full subscriber keeps it from all), it names the
    # Comm process: its Stream, and the Epoch (the task ids' prefix)
    for _ in range(3):
        beats.inbox.take_until(lambda m: m[1] == "Heartbeat", 5, "Comm's heartbeat")
    heard = [m for m in beats.log if m[0] == "mroute.comm"]
    assert len(heard) >= 3
    epoch = heard[0][2]["Epoch"]
    assert isinstance(epoch, str) and all(task_id.startswith(f"{epoch}-") for task_id in task_ids), (epoch, task_ids)

    assert all("Seq" not in body for _, _, body in heard)
    streams = {"mroute.comm": heard[0][2]["Stream"]}
    for name, messages in (("desk-1", desk.mine()), ("web-1", web.mine())):
        assert len(messages) > 1, name
        problems = numbering_problems(messages)
        assert not problems, f"to {name}:\n" + "\n".join(problems)
        streams[name] = messages[0][2]["Stream"]
    assert len(set(streams.values())) == 1, f"one Comm process, several Streams: {streams}"
    assert len(desk.mine()) > 30, "too few messages to say much"


# 3 --------------------------------------------------------------------------------------------
def test_a_slow_subscriber_sees_the_gap_resyncs_and_drops_are_counted(start_topology, desks):
    spec = base_topology("slow")
    # What one wake-up has for a desk leaves as one batch of up to 256 (codec.batch): queues
    # of one message each way, and the kernel's socket buffers, make a subscriber full soon.
    spec["actors"]["comm"]["events_hwm"] = 1
    # and past 1.5 MiB (ZeroMQ's queue and what waits in Comm) what Comm holds for it is
    # dropped: well under the flood's answers (about 2.7 MB: long MsgIds, which the answers
    # carry, less what the kernel's socket buffers take), over the Snapshot of its tasks (0.9 MB)
    spec["actors"]["comm"]["receiver_bytes"] = 1536 * 1024
    spec["actors"]["comm"]["admission_budget"] = 600  # every Task of the flood is taken (none refused at the door)
    running = start_topology(spec)
    desk = desks(running.endpoints(), "desk-slow", rcvhwm=1)
    base = desk.handshake()
    other = desks(running.endpoints(), "desk-other")  # a desk that keeps up, beside the slow one
    other.handshake()
    desk.call("Connect", {"AgentId": "alice", "Password": "pw-alice", "Destination": "desk-slow"})
    desk.call("Login", {"AgentId": "alice", "Password": "pw-alice", "Mrd": "chat"})  # NOT_READY: tasks wait
    before = comm_stats(running)
    dropped_before = before.get("dropped_to", {}).get("desk-slow", 0)
    assert dropped_before == 0, before.get("dropped_to")

    # A flood of Task requests, nothing read meanwhile
    n_tasks = 6000
    flood = {f"desk-slow-t{n}-{'x' * 200}": f"c-{n}" for n in range(n_tasks)}
    for msg_id, client_id in flood.items():
        desk.send("Task", {"Mrd": "chat", "ClientUniqueId": client_id}, msg_id=msg_id)
    wait_until(lambda: comm_stats(running)["tasks_created"] >= n_tasks, timeout=20,
               what="Comm to take every Task")  # every answer was sent (or dropped) by then

    # Read slowly: one message every 10 ms for the first 100. This pacing is the one deliberate
    # delay in this file: it is the slowness under test, not a wait for something to happen.
    slot = time.monotonic()
    for _ in range(100):
        assert desk.inbox.take(5) is not None, "nothing more arrived"
        slot += 0.010
        time.sleep(max(0.0, slot - time.monotonic()))
    # Then as fast as possible, until a GetAgentState sent after the backlog is answered: its
    # Seq is the last Comm used for us. Should its answer be dropped as well (a gap like the
    # others), another is asked for.
    deadline = time.monotonic() + 20
    last_msg: str | None = None
    while last_msg is None or not desk.inbox.seen(last_msg):
        assert time.monotonic() < deadline, "the final GetAgentState was never answered"
        while desk.inbox.take(0.2) is not None:  # the backlog, until 200 ms pass without a message
            pass
        if last_msg is None or not desk.inbox.seen(last_msg):
            last_msg = desk.send("GetAgentState", {"AgentId": "alice", "Mrd": "chat"})
            assert last_msg is not None
            answered_by = time.monotonic() + 1
            while not desk.inbox.seen(last_msg) and (left := answered_by - time.monotonic()) > 0:
                desk.inbox.take(left)
    final = desk.inbox.seen(last_msg)[0][2]
    stats = comm_stats(running)

    received = [b["Seq"] for _, _, b in desk.mine()]
    assert received[0] == base["Seq"] and received[-1] == final["Seq"]
    assert all(b > a for a, b in zip(received, received[1:])), "Seqs not increasing"
    assert len({b["Stream"] for _, _, b in desk.mine()}) == 1
    gaps = [(a, b) for a, b in zip(received, received[1:]) if b != a + 1]
    missing = sum(b - a - 1 for a, b in gaps)
    after_last = 0  # the final answer is the last message Comm sent us
    answered = {b["MsgId"]: b for _, t, b in desk.mine() if t == "TaskState" and b.get("MsgId") in flood}
    assert gaps, f"no gap: all {len(answered)} answers arrived; the subscriber was never full"
    assert len(answered) < n_tasks
    assert all(b["State"] == "QUEUED" for b in answered.values())
    dropped = stats.get("dropped_to", {}).get("desk-slow", 0)
    # exactly: nothing else was lost (Comm's unnumbered heartbeat, which the full subscriber
    # kept from everyone meanwhile, is no drop: the next one says the same)
    assert stats["counters"].get("send_dropped", 0) == dropped and set(stats["dropped_to"]) == {"desk-slow"}
    assert missing + after_last == dropped, \
        f"{missing} Seqs never received in {len(gaps)} gaps, Comm counts {dropped} dropped to desk-slow " \
        f"(send_dropped {stats['counters'].get('send_dropped')}); received {len(received)} messages, " \
        f"Seq {received[0]}..{received[-1]}"

    # Resync: the Snapshot recovers every task
    snap = desk.call("Resync", {"Destination": "desk-slow", "TaskIds": []})
    rows = {row["ClientUniqueId"]: row for row in snap["Tasks"]}
    assert set(rows) == set(flood.values()), \
        f"the Snapshot lists {len(rows)} tasks of {n_tasks}; missing e.g. {sorted(set(flood.values()) - set(rows))[:5]}"
    assert len(snap["Tasks"]) == n_tasks
    assert all(row["State"] == "QUEUED" and row["MRD"] == "chat" for row in rows.values())
    for msg_id, body in answered.items():
        assert rows[flood[msg_id]]["TaskId"] == body["TaskId"]
    assert len({row["TaskId"] for row in rows.values()}) == n_tasks
    assert [(a["AgentId"], a["State"]) for a in snap["Agents"]] == [("alice", "NOT_READY")], snap["Agents"]
    assert snap["Unknown"] == []

    # Still serving; the desk that kept up lost nothing
    assert desk.call("GetAgentState", {"AgentId": "alice", "Mrd": "chat"})["State"] == "NOT_READY"
    assert other.call("GetAgentState", {"AgentId": "bob", "Mrd": "chat"})["State"] == "LOGOUT"
    assert not numbering_problems(other.mine())
    assert comm_stats(running)["tasks_created"] == n_tasks
