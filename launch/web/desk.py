"""The web console's Chat Server: real desks and real customers on the documented queues.

A person on the agent page connects and logs in as a directory agent, goes READY, is
offered tasks, accepts or declines them, chats, transfers, ends (wrap-up) and closes them;
a person on the customer page starts a chat (customers.py). Routing goes through Comm and
the MRE like any task's. What the pages should know goes to `publish(channel, event)`:
`agent:ID` and `chat:ID`. It talks to Comm through the one client (wire/client.py): when
news from Comm may have been lost, the client asks for a Snapshot of what this desk holds
and it sets the desk right.

An agent at this desk may be offered a task of another Chat Server (a person logged in as
a simulated Chat Server's agent takes its customers): the page says whose customer it is
(GetTaskState gives its ClientUniqueId) and that no conversation is carried here."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Coroutine

import zmq.asyncio

from wire import states as S

from ..topology import Topology
from .customers import Customers
from .hub import VERSIONS
from wire.client import AsyncClient, Refused, Request
from wire.messages import Message

log = logging.getLogger("mroute.web")
DECLINED = "DECLINED"   # the reason code of an agent who declined an offer


@dataclass
class Session:
    agent_id: str
    password: str = ""    # kept in memory only: the console's voice client connects with it (phone.py)
    state: str = S.LOGOUT
    reason: str = ""
    offers: dict[str, float] = field(default_factory=dict)   # task id -> when offered (time.monotonic())
    tasks: dict[str, str] = field(default_factory=dict)      # task id -> ACTIVE or WRAP_UP

    def has(self, task_id: str) -> bool:
        return task_id in self.offers or task_id in self.tasks


class WebDesk:
    def __init__(self, topology: Topology, ctx: zmq.asyncio.Context, publish: Callable[[str, dict[str, Any]], None]):
        self.topology = topology
        self.publish = publish
        self.destination = f"web-{socket.gethostname()}-{os.getpid()}"
        # the probe asks about an agent nobody has: Comm's Error (NOT_FOUND) on our topic is proof enough
        self.link = AsyncClient(topology.data_socket, self.destination, probe=("mroute-web-probe", self.default_mrd()),
                                on_message=self.on_message, ctx=ctx, held=self.held_tasks)
        self.sessions: dict[str, Session] = {}
        self.customers = Customers(self.destination, topology.queues, self.request, publish, self.tell_agent)
        self.others: dict[str, dict[str, Any]] = {}   # tasks of other Chat Servers at our desks: ClientUniqueId, MRD
        # a simulated Chat Server's customers are `<actor>.<n>-c<number>` (actors/chat/customers.py)
        chat_actors = [re.escape(name) for name, spec in topology.actors.items() if spec.get("role") == "chat"]
        self.simulated = re.compile(rf"^((?:{'|'.join(chat_actors)})\.\d+)-c\d+$") if chat_actors else None
        self.pending: set[asyncio.Future[Any]] = set()

    def start(self) -> None:
        self.link.start()

    async def close(self) -> None:
        for session in list(self.sessions.values()):   # our agents leave with us: their tasks go back
            if session.state != S.LOGOUT:   # (voice too: the Voice page may have made them ready for calls)
                for mrd in [self.default_mrd(), *(["voice"] if self.voice_agent(session.agent_id) else [])]:
                    self.link.send("AgentState", {"AgentId": session.agent_id, "State": S.LOGOUT, "Mrd": mrd})
        for future in self.pending:
            future.cancel()
        await asyncio.gather(*self.pending, return_exceptions=True)
        await self.link.close()

    def voice_agent(self, agent_id: str) -> bool:
        """Comm logs an agent with an extension into voice when it connects, if a GC runs."""
        return ("voice" in self.topology.mrds and any(s["role"] == "gc" for s in self.topology.actors.values())
                and any(a["id"] == agent_id and a.get("extension") for a in self.topology.agents))

    def default_mrd(self) -> str:
        return "chat" if "chat" in self.topology.mrds else next(iter(self.topology.mrds))

    async def request(self, type: str, body: dict[str, Any]) -> dict[str, Any]:
        return (await self.link.request(type, body)).body

    def later(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run in the background, cancelled when the desk closes."""
        future = asyncio.ensure_future(coroutine)
        self.pending.add(future)
        future.add_done_callback(self.pending.discard)

    # news lost: what this desk holds, from Comm ------------------------------------------
    def held_tasks(self) -> set[str]:
        """What a Resync names: the tasks our agents are offered or hold, and our customers'."""
        return {t for s in self.sessions.values() for t in [*s.offers, *s.tasks]} | set(self.customers.by_task)

    def resync(self) -> None:
        """Ask for a Snapshot (the client asks one at a time); it says which agents are still ours."""
        self.link.resync()

    def on_snapshot(self, body: dict[str, Any]) -> None:
        agents = {row["AgentId"]: row for row in body.get("Agents") or []   # (one row per MRD: ours)
                  if isinstance(row, dict) and (row.get("MRD") or row.get("Mrd")) in (None, self.default_mrd())}
        rows = {row["TaskId"]: row for row in body.get("Tasks") or [] if isinstance(row, dict)}
        unknown = {t for t in body.get("Unknown") or [] if isinstance(t, str)}
        now = time.monotonic()
        for agent_id, session in self.sessions.items():
            row = agents.get(agent_id)
            if row is None and session.state == S.LOGOUT:
                continue   # logged out already: nothing to tell its page
            session.state = str(row["State"]) if row else S.LOGOUT   # not at this desk any more: moved, or gone
            session.reason = str(row.get("ReasonCode") or "") if row else "no longer at this desk"
            session.offers = {t: session.offers.get(t, now) for t, r in rows.items()
                              if r.get("AgentId") == agent_id and r.get("State") == S.RESERVED}
            session.tasks = {t: str(r["State"]) for t, r in rows.items() if r.get("AgentId") == agent_id
                             and r.get("State") in (S.ACTIVE, S.WRAP_UP)}
            for task_id in [*session.offers, *session.tasks]:
                if task_id not in self.customers.by_task:
                    row = rows[task_id]
                    self.others[task_id] = {"mrd": row.get("MRD"), "client": row.get("ClientUniqueId")}
            self.tell_agent(agent_id, "state")
        for task_id in list(self.customers.by_task):
            if task_id in rows:
                self.customers.on_task_state(rows[task_id])
            elif task_id in unknown:
                self.customers.on_unknown(task_id)

    # what Comm says ------------------------------------------------------------------------
    def on_message(self, message: Message, answers: Request | None) -> None:
        handler = {"AgentState": self.on_agent_state, "TaskAgentSelected": self.on_selected,
                   "TaskState": self.on_task_state, "TaskAgentTransferred": self.on_transferred,
                   "Snapshot": self.on_snapshot}.get(message.type)
        if handler is not None:
            handler(message.body)

    def on_agent_state(self, body: dict[str, Any]) -> None:
        session = self.sessions.get(str(body.get("AgentId")))
        mrd = body.get("MRD") or body.get("Mrd")
        if session is None or (mrd is not None and mrd != self.default_mrd()):
            return   # (an agent with an extension is in voice too: the voice page shows that)
        session.state, session.reason = str(body.get("State")), str(body.get("ReasonCode") or "")
        if session.state == S.LOGOUT:
            session.offers.clear()
            session.tasks.clear()
        self.tell_agent(session.agent_id, "state")

    def on_selected(self, body: dict[str, Any]) -> None:
        task_id, agent_id = str(body.get("TaskId")), str(body.get("AgentId"))
        self.customers.on_selected(task_id, agent_id)
        session = self.sessions.get(agent_id)
        if session is not None:
            session.offers[task_id] = time.monotonic()
            if task_id not in self.customers.by_task and task_id not in self.others:
                # another Chat Server's customer: whose, its GetTaskState says (ClientUniqueId)
                self.others[task_id] = {"mrd": body.get("MRD") or body.get("Mrd") or self.default_mrd()}
                self.later(self.ask_task(task_id, agent_id))
            self.tell_agent(agent_id, "offer")

    async def ask_task(self, task_id: str, agent_id: str) -> None:
        try:   # (its answer is news like any TaskState: on_task_state notes the ClientUniqueId)
            await self.request("GetTaskState", {"TaskId": task_id, "AgentId": agent_id})
        except Refused as err:
            log.info("web desk: GetTaskState %s: %s", task_id, err)

    def on_task_state(self, body: dict[str, Any]) -> None:
        task_id, state, agent_id = str(body.get("TaskId")), body.get("State"), body.get("AgentId")
        self.customers.on_task_state(body)
        if task_id in self.others and body.get("ClientUniqueId"):
            self.others[task_id]["client"] = str(body["ClientUniqueId"])
        for session in self.sessions.values():
            if not session.has(task_id):
                continue
            if state in (S.ACTIVE, S.WRAP_UP) and agent_id == session.agent_id:
                session.offers.pop(task_id, None)
                session.tasks[task_id] = str(state)
            elif state in (S.CLOSED, S.QUEUED) or (state == S.ACTIVE and agent_id != session.agent_id):
                session.offers.pop(task_id, None)
                session.tasks.pop(task_id, None)
            self.tell_agent(session.agent_id, "tasks")
        self.forget_others()

    def on_transferred(self, body: dict[str, Any]) -> None:
        task_id, agent_id, previous = str(body.get("TaskId")), str(body.get("AgentId")), body.get("PreviousAgentId")
        self.customers.on_transferred(task_id, agent_id)
        for name in (previous, agent_id):
            session = self.sessions.get(str(name))
            if session is not None:
                session.offers.pop(task_id, None)
                if name == agent_id:
                    session.tasks[task_id] = S.ACTIVE
                    if task_id not in self.customers.by_task:
                        self.others.setdefault(task_id, {"mrd": self.default_mrd()})
                        self.later(self.ask_task(task_id, agent_id))
                else:
                    session.tasks.pop(task_id, None)
                self.tell_agent(str(name), "tasks")
        self.forget_others()

    def forget_others(self) -> None:
        held = {t for s in self.sessions.values() for t in [*s.offers, *s.tasks]}
        for task_id in [t for t in self.others if t not in held]:
            del self.others[task_id]

    # agents --------------------------------------------------------------------------------
    def tell_agent(self, agent_id: str, kind: str = "tasks") -> None:
        if agent_id in self.sessions:
            self.publish(f"agent:{agent_id}", {"kind": kind, **self.agent_view(agent_id)})

    def agent_view(self, agent_id: str, check: bool = False) -> dict[str, Any]:
        if check and agent_id not in self.sessions:
            raise Refused("NOT_FOUND", f"{agent_id} has not logged in here")
        session = self.sessions[agent_id]
        return {"agent": agent_id, "state": session.state, "reason": session.reason, "mrd": self.default_mrd(),
                "v": next(VERSIONS),
                "offers": [self.task_view(t, offered) for t, offered in sorted(session.offers.items())],
                "tasks": [{**self.task_view(t), "state": s} for t, s in sorted(session.tasks.items())]}

    def task_view(self, task_id: str, offered: float | None = None) -> dict[str, Any]:
        """What a person needs to decide: whose customer, which queue, how long the offer
        stands (`left`, seconds before RONA: the queue's offer_timeout)."""
        chat = self.customers.by_task.get(task_id)
        view: dict[str, Any] = {"task": task_id, "chat": chat.view() if chat else None, "kind": "console",
                                "customer": chat.customer if chat else None, "queue": chat.queue if chat else None,
                                "mrd": self.topology.queues[chat.queue]["mrd"] if chat else None}
        if chat is None:
            other = self.others.get(task_id, {})
            client = other.get("client")
            found = self.simulated.match(client) if self.simulated and client else None
            mrd = other.get("mrd") or self.default_mrd()
            # a simulated customer names no queue: it waits in its MRD's default queue
            view.update(kind="simulated" if found else "other", server=found.group(1) if found else None,
                        customer=client, mrd=mrd,
                        queue=self.topology.mrds.get(mrd, {}).get("default_queue") if found else None)
        if offered is not None:
            timeout = self.topology.queues.get(view["queue"] or "", {}).get("offer_timeout")
            view["left"] = None if timeout is None else max(0.0, round(offered + timeout - time.monotonic(), 1))
        return view

    async def login(self, agent_id: str, password: str) -> dict[str, Any]:
        agent = next((a for a in self.topology.agents if a["id"] == agent_id), None)
        if agent is None:
            raise Refused("NOT_FOUND", f"no agent {agent_id!r} in the directory")
        await self.request("Connect", {"AgentId": agent_id, "Password": password, "Destination": self.destination,
                                       "Extension": agent.get("extension", "")})
        session = self.sessions.setdefault(agent_id, Session(agent_id))   # connected: its news is ours from now on
        session.password = password
        # the answer was handled as news when it came (on_message): the session is up to date
        await self.request("Login", {"AgentId": agent_id, "Password": password, "Mrd": self.default_mrd()})
        self.resync()   # a session moved from another desk brings its tasks: which, a Snapshot says
        return self.agent_view(agent_id)

    async def set_state(self, agent_id: str, state: str, mrd: str = "") -> dict[str, Any]:
        self.session(agent_id)
        await self.request("AgentState", {"AgentId": agent_id, "State": state, "Mrd": mrd or self.default_mrd()})
        return self.agent_view(agent_id)

    async def task_action(self, agent_id: str, task_id: str, action: str, recipient: str = "") -> dict[str, Any]:
        """accept or decline an offer; end (wrap-up), close (DONE) or transfer (to
        `recipient`) a task the agent holds."""
        session = self.session(agent_id)
        if not session.has(task_id):
            raise Refused("NOT_FOUND", f"{agent_id} is offered or holds no task {task_id}")
        requests = {"accept": ("TaskState", {"AgentId": agent_id, "TaskId": task_id, "State": S.ACTIVE}),
                    # NOT_READY while an offer rings sends it back to the head of its queue (RONA);
                    # the reason code says why the agent is not ready
                    "decline": ("AgentState", {"AgentId": agent_id, "State": S.NOT_READY, "Mrd": self.default_mrd(),
                                               "ReasonCode": DECLINED}),
                    "end": ("TaskState", {"AgentId": agent_id, "TaskId": task_id, "State": S.WRAP_UP}),
                    "close": ("TaskState", {"AgentId": agent_id, "TaskId": task_id, "State": S.CLOSED,
                                            "Code": S.DONE}),
                    "transfer": ("Transfer", {"TaskId": task_id, "OwnerAgentId": agent_id,
                                              "RecipientAgentId": recipient})}
        if action not in requests:
            raise Refused("BAD_FIELD", f"no task action {action!r} ({', '.join(requests)})")
        await self.request(*requests[action])   # its answer was handled as news when it came
        return self.agent_view(agent_id)

    def logged_in(self, agent_id: str) -> bool:
        session = self.sessions.get(agent_id)
        return session is not None and session.state != S.LOGOUT

    def session(self, agent_id: str) -> Session:
        session = self.sessions.get(agent_id)
        if session is None or session.state == S.LOGOUT:
            raise Refused("INVALID_STATE", f"{agent_id} is not logged in here")
        return session
