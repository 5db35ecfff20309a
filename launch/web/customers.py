"""The customer page's side of the console's Chat Server: each chat a person starts is a
real Task on a queue; its news from Comm is told to the customer as lines of its transcript.
The conversation itself stays here, between the two pages (a Chat Server carries the media,
Comm routes the work)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from wire import states as S

from .hub import VERSIONS
from wire.client import Refused

# A chat as its customer sees it: REQUESTED, QUEUED, OFFERED, CONNECTED, ENDED (the agent
# ended it and wraps up: nothing more is said), CLOSED.
OVER = ("ENDED", "CLOSED")


@dataclass
class Chat:
    chat_id: str                      # the customer page's handle; the Task's ClientUniqueId
    customer: str
    queue: str
    task_id: str | None = None
    agent: str | None = None
    state: str = "REQUESTED"
    code: str = ""
    transcript: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {"chat": self.chat_id, "customer": self.customer, "queue": self.queue, "task": self.task_id,
                "agent": self.agent, "state": self.state, "code": self.code, "transcript": self.transcript,
                "v": next(VERSIONS)}


class Customers:
    def __init__(self, destination: str, queues: dict[str, dict[str, Any]],
                 request: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]],
                 publish: Callable[[str, dict[str, Any]], None], agent_news: Callable[[str], None]):
        """`agent_news(agent_id)`: the agent's page is told again (a line was said to it)."""
        self.destination = destination
        self.queues = queues
        self.request = request
        self.publish = publish
        self.agent_news = agent_news
        self.numbers = itertools.count(1)
        self.chats: dict[str, Chat] = {}          # by chat id
        self.by_task: dict[str, Chat] = {}        # by TaskId

    # what a person does ---------------------------------------------------------------------
    async def start(self, customer: str, queue: str) -> dict[str, Any]:
        spec = self.queues.get(queue)
        if spec is None:
            raise Refused("NOT_FOUND", f"no queue {queue!r} (queues: {', '.join(self.queues)})")
        chat = Chat(f"{self.destination}-c{next(self.numbers)}", customer or "a customer", queue)
        self.chats[chat.chat_id] = chat
        try:
            answer = await self.request("Task", {"Mrd": spec["mrd"], "ClientUniqueId": chat.chat_id,
                                                 "name": chat.customer,
                                                 "params": [["queue", queue], ["channel", "web"]]})
        except Refused:
            if chat.task_id is None:   # never made: no page will follow it
                del self.chats[chat.chat_id]
            raise
        if chat.task_id is None:   # (on_task_state registers it as the answer comes)
            chat.task_id = str(answer["TaskId"])
            self.by_task[chat.task_id] = chat
        return chat.view()

    async def leave(self, chat_id: str) -> dict[str, Any]:
        chat = self.chat(chat_id)
        if chat.state not in OVER and chat.task_id:
            self.tell(chat, f"{chat.customer} has left")
            try:
                await self.request("TaskState", {"TaskId": chat.task_id, "State": S.CLOSED, "Code": S.CANCELLED})
            except Refused as err:
                if err.code != S.INVALID_STATE:   # accepted already: the agent closes it
                    raise
        return chat.view()

    def say(self, chat_id: str, sender: str, text: str) -> dict[str, Any]:
        """A line of the conversation: from the customer, or from the agent who holds it."""
        chat = self.chat(chat_id)
        if chat.state in OVER:
            raise Refused("INVALID_STATE", "the chat has ended")
        if sender != "customer" and (chat.agent != sender or chat.state != "CONNECTED"):
            raise Refused("AUTHORIZATION_FAILURE", f"{sender} does not hold this chat")
        line = {"from": chat.customer if sender == "customer" else sender, "by": sender, "text": text[:2000],
                "at": time.time()}
        chat.transcript.append(line)
        self.publish(f"chat:{chat.chat_id}", {"kind": "line", **chat.view()})
        if chat.agent:
            self.agent_news(chat.agent)
        return chat.view()

    def chat(self, chat_id: str) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise Refused("NOT_FOUND", f"no chat {chat_id}")
        return chat

    def tell(self, chat: Chat, note: str) -> None:
        chat.transcript.append({"from": "", "by": "system", "text": note, "at": time.time()})
        self.publish(f"chat:{chat.chat_id}", {"kind": "chat", **chat.view()})
        if chat.agent:
            self.agent_news(chat.agent)

    # what Comm says about our customers' tasks ---------------------------------------------
    def on_selected(self, task_id: str, agent_id: str) -> None:
        chat = self.by_task.get(task_id)
        if chat is not None and chat.state not in OVER:
            chat.state, chat.agent = "OFFERED", agent_id
            self.tell(chat, f"{agent_id} has been chosen for you")

    def on_task_state(self, body: dict[str, Any]) -> None:
        task_id, state, code = str(body.get("TaskId")), body.get("State"), body.get("Code") or ""
        agent_id = body.get("AgentId")
        chat = self.by_task.get(task_id)
        if chat is None and body.get("ClientUniqueId") in self.chats:
            # the answer to our customer's Task: known here, at once, because the offer may
            # follow in the same batch, before start has its answer back
            chat = self.chats[body["ClientUniqueId"]]
            chat.task_id, chat.state = task_id, "QUEUED"
            self.by_task[task_id] = chat
            self.tell(chat, f"waiting in {chat.queue} for an agent")
        if chat is None or chat.state == "CLOSED":
            return
        if state == S.CLOSED and body.get("Scope") != "PARTICIPANT":
            chat.state, chat.code = "CLOSED", code
            self.tell(chat, f"the chat is closed ({code})")
        elif chat.state == "ENDED":
            return
        elif state == S.ACTIVE and agent_id:
            chat.state, chat.agent = "CONNECTED", str(agent_id)
            self.tell(chat, f"{agent_id} has joined the chat")
        elif state == S.WRAP_UP:
            chat.state = "ENDED"
            self.tell(chat, f"{chat.agent or 'the agent'} ended the chat")
        elif state == S.QUEUED and code:
            chat.state, chat.agent = "QUEUED", None
            self.tell(chat, f"back in the queue ({code})")

    def on_transferred(self, task_id: str, agent_id: str) -> None:
        chat = self.by_task.get(task_id)
        if chat is not None:
            chat.agent = agent_id
            self.tell(chat, f"transferred to {agent_id}")

    def on_unknown(self, task_id: str) -> None:
        """Comm does not know the task (a Comm restarted without its journal)."""
        chat = self.by_task.get(task_id)
        if chat is not None and chat.state != "CLOSED":
            chat.state, chat.code = "CLOSED", "UNKNOWN"
            self.tell(chat, "the chat was lost with a Comm that restarted")
