"""The web console's Chat Server: real desks and real customers on the documented queues.

A person on the agent page connects and logs in as a directory agent, goes READY, is
offered tasks, accepts, chats, transfers and closes them; a person on the customer page
starts a chat (a Task on a queue) and talks with whoever accepts it. Routing goes through
Comm and the MRE like any task's; the conversation itself stays here, between the two
pages (a Chat Server carries the media, Comm routes the work). What the pages should know
goes to `publish(channel, event)`: `agent:ID` and `chat:ID`. When news from Comm may have
been lost (link.py), a Snapshot of what this desk holds sets it right."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import zmq.asyncio

from wire import states as S

from ..topology import Topology
from .link import DeskError, Link

log = logging.getLogger("mroute.web")


@dataclass
class Chat:
    chat_id: str                      # the customer page's handle; the Task's ClientUniqueId
    customer: str
    queue: str
    task_id: str | None = None
    agent: str | None = None
    state: str = "REQUESTED"          # REQUESTED, QUEUED, OFFERED, CONNECTED, CLOSED
    code: str = ""
    transcript: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {"chat": self.chat_id, "customer": self.customer, "queue": self.queue, "task": self.task_id,
                "agent": self.agent, "state": self.state, "code": self.code, "transcript": self.transcript}


@dataclass
class Session:
    agent_id: str
    state: str = S.LOGOUT
    offers: set[str] = field(default_factory=set)   # task ids offered, not yet accepted
    tasks: set[str] = field(default_factory=set)    # task ids accepted


class WebDesk:
    def __init__(self, topology: Topology, ctx: zmq.asyncio.Context, publish: Callable[[str, dict[str, Any]], None]):
        self.topology = topology
        self.publish = publish
        self.destination = f"web-{socket.gethostname()}-{os.getpid()}"
        self.link = Link(topology, ctx, self.destination, self.on_message, self.resync)
        self.numbers = itertools.count(1)
        self.sessions: dict[str, Session] = {}
        self.chats: dict[str, Chat] = {}          # by chat id
        self.by_task: dict[str, Chat] = {}        # our customers' chats by TaskId
        self.resyncing = False

    def start(self) -> None:
        self.link.start()

    async def close(self) -> None:
        for session in list(self.sessions.values()):   # our agents leave with us: their tasks go back
            if session.state != S.LOGOUT:
                self.link.send("AgentState", {"AgentId": session.agent_id, "State": S.LOGOUT,
                                              "Mrd": self.default_mrd()})
        await self.link.close()

    def default_mrd(self) -> str:
        return "chat" if "chat" in self.topology.mrds else next(iter(self.topology.mrds))

    async def request(self, type: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.link.request(type, body)

    # news lost: what this desk holds, from Comm ------------------------------------------
    def resync(self) -> None:
        """Ask for a Snapshot (one at a time); it says which agents are still ours."""
        if self.resyncing:
            return
        self.resyncing = True
        tasks = sorted({t for s in self.sessions.values() for t in s.offers | s.tasks} | set(self.by_task))
        log.info("web desk: news from Comm may be lost: resynchronising %d agents, %d tasks", len(self.sessions),
                 len(tasks))

        async def ask() -> None:
            try:
                self.on_snapshot(await self.request("Resync", {"Destination": self.destination, "TaskIds": tasks}))
            except DeskError as err:
                log.warning("web desk: resync refused: %s", err)
            finally:
                self.resyncing = False
        self.link.tasks.append(asyncio.ensure_future(ask()))

    def on_snapshot(self, body: dict[str, Any]) -> None:
        agents = {row["AgentId"]: row for row in body.get("Agents") or []   # (one row per MRD: ours)
                  if isinstance(row, dict) and (row.get("MRD") or row.get("Mrd")) in (None, self.default_mrd())}
        rows = {row["TaskId"]: row for row in body.get("Tasks") or [] if isinstance(row, dict)}
        unknown = {t for t in body.get("Unknown") or [] if isinstance(t, str)}
        for agent_id, session in self.sessions.items():
            row = agents.get(agent_id)
            if row is None and session.state == S.LOGOUT:
                continue   # logged out already: nothing to tell its page
            session.state = str(row["State"]) if row else S.LOGOUT   # not at this desk any more: moved, or gone
            session.offers = {t for t, r in rows.items() if r.get("AgentId") == agent_id and r.get("State") == S.RESERVED}
            session.tasks = {t for t, r in rows.items() if r.get("AgentId") == agent_id
                             and r.get("State") in (S.ACTIVE, S.WRAP_UP)}
            self.publish(f"agent:{agent_id}", {"kind": "state", **self.agent_view(agent_id),
                                               "reason": "" if row else "no longer at this desk"})
        for task_id, chat in list(self.by_task.items()):
            if task_id in rows:
                self.on_task_state(rows[task_id])
            elif task_id in unknown and chat.state != "CLOSED":
                chat.state, chat.code = "CLOSED", "UNKNOWN"
                self.tell_customer(chat, "the chat was lost with a Comm that restarted")

    # what Comm says ------------------------------------------------------------------------
    def on_message(self, type: str, body: dict[str, Any]) -> None:
        handler = {"AgentState": self.on_agent_state, "TaskAgentSelected": self.on_selected,
                   "TaskState": self.on_task_state, "TaskAgentTransferred": self.on_transferred}.get(type)
        if handler is not None:
            handler(body)

    def on_agent_state(self, body: dict[str, Any]) -> None:
        session = self.sessions.get(str(body.get("AgentId")))
        mrd = body.get("MRD") or body.get("Mrd")
        if session is None or (mrd is not None and mrd != self.default_mrd()):
            return   # (an agent with an extension is in voice too: its voice states are the GC's page's)
        session.state = str(body.get("State"))
        if session.state == S.LOGOUT:
            session.offers.clear()
            session.tasks.clear()
        self.publish(f"agent:{session.agent_id}", {"kind": "state", **self.agent_view(session.agent_id),
                                                   "reason": body.get("ReasonCode") or ""})

    def on_selected(self, body: dict[str, Any]) -> None:
        task_id, agent_id = str(body.get("TaskId")), str(body.get("AgentId"))
        chat = self.by_task.get(task_id)
        if chat is not None and chat.state != S.CLOSED:
            chat.state, chat.agent = "OFFERED", agent_id
            self.tell_customer(chat, f"{agent_id} has been chosen for you")
        session = self.sessions.get(agent_id)
        if session is not None:
            session.offers.add(task_id)
            self.publish(f"agent:{agent_id}", {"kind": "offer", **self.agent_view(agent_id)})

    def on_task_state(self, body: dict[str, Any]) -> None:
        task_id, state, code = str(body.get("TaskId")), body.get("State"), body.get("Code") or ""
        agent_id = body.get("AgentId")
        chat = self.by_task.get(task_id)
        if chat is None and body.get("ClientUniqueId") in self.chats:
            # the answer to our customer's Task: known here, at once, because the offer may
            # follow in the same batch, before start_chat has its answer back
            chat = self.chats[body["ClientUniqueId"]]
            chat.task_id, chat.state = task_id, "QUEUED"
            self.by_task[task_id] = chat
            self.tell_customer(chat, f"waiting in {chat.queue} for an agent")
        if chat is not None and chat.state != "CLOSED":
            if state == S.ACTIVE and agent_id:
                chat.state, chat.agent = "CONNECTED", str(agent_id)
                self.tell_customer(chat, f"{agent_id} has joined the chat")
            elif state == S.QUEUED and code:
                chat.state, chat.agent = "QUEUED", None
                self.tell_customer(chat, f"back in the queue ({code})")
            elif state == S.CLOSED and body.get("Scope") != "PARTICIPANT":
                chat.state, chat.code = "CLOSED", code
                self.tell_customer(chat, f"the chat is closed ({code})")
        for session in self.sessions.values():
            if task_id not in session.offers and task_id not in session.tasks:
                continue
            if state == S.ACTIVE and agent_id == session.agent_id:
                session.offers.discard(task_id)
                session.tasks.add(task_id)
            elif state in (S.CLOSED, S.QUEUED) or (state == S.ACTIVE and agent_id != session.agent_id):
                session.offers.discard(task_id)
                session.tasks.discard(task_id)
            self.publish(f"agent:{session.agent_id}", {"kind": "tasks", **self.agent_view(session.agent_id)})

    def on_transferred(self, body: dict[str, Any]) -> None:
        task_id, agent_id, previous = str(body.get("TaskId")), str(body.get("AgentId")), body.get("PreviousAgentId")
        chat = self.by_task.get(task_id)
        if chat is not None:
            chat.agent = agent_id
            self.tell_customer(chat, f"transferred to {agent_id}")
        for name in (previous, agent_id):
            session = self.sessions.get(str(name))
            if session is not None:
                session.offers.discard(task_id)
                (session.tasks.add if name == agent_id else session.tasks.discard)(task_id)
                self.publish(f"agent:{name}", {"kind": "tasks", **self.agent_view(str(name))})

    # agents --------------------------------------------------------------------------------
    def agent_view(self, agent_id: str, check: bool = False) -> dict[str, Any]:
        if check and agent_id not in self.sessions:
            raise DeskError("NOT_FOUND", f"{agent_id} has not logged in here")
        session = self.sessions[agent_id]
        return {"agent": agent_id, "state": session.state,
                "offers": [self.task_view(t) for t in sorted(session.offers)],
                "tasks": [self.task_view(t) for t in sorted(session.tasks)]}

    def task_view(self, task_id: str) -> dict[str, Any]:
        chat = self.by_task.get(task_id)
        return {"task": task_id, "chat": chat.view() if chat else None}

    async def login(self, agent_id: str, password: str) -> dict[str, Any]:
        agent = next((a for a in self.topology.agents if a["id"] == agent_id), None)
        if agent is None:
            raise DeskError("NOT_FOUND", f"no agent {agent_id!r} in the directory")
        await self.request("Connect", {"AgentId": agent_id, "Password": password, "Destination": self.destination,
                                       "Extension": agent.get("extension", "")})
        self.sessions.setdefault(agent_id, Session(agent_id))   # connected: its news is ours from now on
        # the answer was handled as news when it came (on_message): the session is up to date
        await self.request("Login", {"AgentId": agent_id, "Password": password, "Mrd": self.default_mrd()})
        return self.agent_view(agent_id)

    async def set_state(self, agent_id: str, state: str) -> dict[str, Any]:
        self.session(agent_id)
        await self.request("AgentState", {"AgentId": agent_id, "State": state, "Mrd": self.default_mrd()})
        return self.agent_view(agent_id)

    async def task_action(self, agent_id: str, task_id: str, action: str, recipient: str = "") -> dict[str, Any]:
        """accept, close (DONE) or transfer (to `recipient`) a task the agent is offered or holds."""
        session = self.session(agent_id)
        if task_id not in session.offers | session.tasks:
            raise DeskError("NOT_FOUND", f"{agent_id} is offered or holds no task {task_id}")
        requests = {"accept": ("TaskState", {"AgentId": agent_id, "TaskId": task_id, "State": S.ACTIVE}),
                    "close": ("TaskState", {"AgentId": agent_id, "TaskId": task_id, "State": S.CLOSED,
                                            "Code": S.DONE}),
                    "transfer": ("Transfer", {"TaskId": task_id, "OwnerAgentId": agent_id,
                                              "RecipientAgentId": recipient})}
        if action not in requests:
            raise DeskError("BAD_FIELD", f"no task action {action!r} (accept, close, transfer)")
        await self.request(*requests[action])   # its answer was handled as news when it came
        return self.agent_view(agent_id)

    def session(self, agent_id: str) -> Session:
        session = self.sessions.get(agent_id)
        if session is None or session.state == S.LOGOUT:
            raise DeskError("INVALID_STATE", f"{agent_id} is not logged in here")
        return session

    # customers -----------------------------------------------------------------------------
    async def start_chat(self, customer: str, queue: str) -> dict[str, Any]:
        spec = self.topology.queues.get(queue)
        if spec is None:
            raise DeskError("NOT_FOUND", f"no queue {queue!r} (queues: {', '.join(self.topology.queues)})")
        chat = Chat(f"{self.destination}-c{next(self.numbers)}", customer or "a customer", queue)
        self.chats[chat.chat_id] = chat
        try:
            answer = await self.request("Task", {"Mrd": spec["mrd"], "ClientUniqueId": chat.chat_id,
                                                 "name": chat.customer, "params": [["queue", queue], ["channel", "web"]]})
        except DeskError:
            if chat.task_id is None:   # never made: no page will follow it
                del self.chats[chat.chat_id]
            raise
        if chat.task_id is None:   # (on_task_state registers it as the answer comes)
            chat.task_id = str(answer["TaskId"])
            self.by_task[chat.task_id] = chat
        return chat.view()

    async def leave(self, chat_id: str) -> dict[str, Any]:
        chat = self.chat(chat_id)
        if chat.state != "CLOSED" and chat.task_id:
            self.tell_customer(chat, f"{chat.customer} has left")
            try:
                await self.request("TaskState", {"TaskId": chat.task_id, "State": S.CLOSED, "Code": S.CANCELLED})
            except DeskError as err:
                if err.code != S.INVALID_STATE:   # accepted already: the agent closes it
                    raise
        return chat.view()

    def say(self, chat_id: str, sender: str, text: str) -> dict[str, Any]:
        """A line of the conversation: from the customer, or from the agent who holds it."""
        chat = self.chat(chat_id)
        if sender != "customer" and (chat.agent != sender or chat.state != "CONNECTED"):
            raise DeskError("AUTHORIZATION_FAILURE", f"{sender} does not hold this chat")
        if chat.state == "CLOSED":
            raise DeskError("INVALID_STATE", "the chat is closed")
        line = {"from": chat.customer if sender == "customer" else sender, "by": sender, "text": text[:2000],
                "at": time.time()}
        chat.transcript.append(line)
        self.publish(f"chat:{chat.chat_id}", {"kind": "line", **chat.view()})
        if chat.agent in self.sessions:
            self.publish(f"agent:{chat.agent}", {"kind": "line", **self.agent_view(chat.agent)})
        return chat.view()

    def chat(self, chat_id: str) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise DeskError("NOT_FOUND", f"no chat {chat_id}")
        return chat

    def tell_customer(self, chat: Chat, note: str) -> None:
        chat.transcript.append({"from": "", "by": "system", "text": note, "at": time.time()})
        self.publish(f"chat:{chat.chat_id}", {"kind": "chat", **chat.view()})
        if chat.agent in self.sessions:
            self.publish(f"agent:{chat.agent}", {"kind": "tasks", **self.agent_view(str(chat.agent))})
