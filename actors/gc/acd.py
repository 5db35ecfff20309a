"""The ACD (protocol.md 2.2, getqueuelist): inbound calls wait in the voice queues, the one
owner of them, and each rings the agent READY longest; none is rung while the voice side
is out of service."""

from __future__ import annotations

from collections import deque
from typing import Callable, Iterable

from wire import gc as G, voice as V

from .agents import Agents, VoiceAgent
from .clients import Clients
from .dialogs import Dialog, Dialogs


class QueueFull(G.CommandError):
    """A voice queue holds `max_waiting` calls already: one more is refused."""


class Acd:
    def __init__(self, queue_names: Iterable[str], agents: Agents, dialogs: Dialogs, clients: Clients,
                 clock: Callable[[], float], max_waiting: int = 1_000):
        self.queues: dict[str, deque[str]] = {name: deque() for name in queue_names}  # -> dialog ids waiting
        self.max_waiting = max_waiting   # a queue's calls waiting at most (faster arrivals than agents)
        self.agents = agents
        self.dialogs = dialogs
        self.clients = clients
        self.clock = clock

    def inbound(self, queue: str, ani: str) -> str:
        """A customer calls a voice queue: it rings the agent READY longest, or waits."""
        dialog = self.admit(queue, ani)
        self.serve()
        return dialog.dialog_id

    def admit(self, queue: str, ani: str) -> Dialog:
        """A customer's call waiting on a voice queue, not rung yet (`serve` rings it); QueueFull
        when it holds `max_waiting` already."""
        if queue not in self.queues:
            raise G.CommandError(G.NOT_FOUND, f"no voice queue {queue!r} (queues: {', '.join(self.queues)})", "call")
        if len(self.queues[queue]) >= self.max_waiting:
            raise QueueFull(G.GENERAL_ERROR, f"voice queue {queue!r} is full: {self.max_waiting} calls wait for "
                                             f"an agent (max_waiting)", "call")
        dialog = self.dialogs.new(ani, queue, V.ACD_IN, queued_at=self.clock())
        dialog.queue = queue
        dialog.join(ani, V.ACTIVE)
        self.queues[queue].append(dialog.dialog_id)
        return dialog

    def serve(self) -> None:
        if not self.clients.in_service:
            return  # calls wait until the voice side is back
        for waiting in self.queues.values():
            while waiting:
                ready = [a for a in self.agents.by_id.values() if a.state == V.READY and not self.dialogs.busy(a)]
                if not ready:
                    return
                dialog = self.dialogs.by_id.get(waiting.popleft())
                if dialog is None or dialog.state == V.DROPPED:
                    continue
                agent = min(ready, key=lambda a: a.available_since)
                dialog.to_address = agent.extension
                self.dialogs.ring(dialog, agent.extension)
                self.dialogs.publish(dialog, "InboundCall")

    def waited(self, dialog_id: str, now: float) -> float:
        dialog = self.dialogs.by_id.get(dialog_id)
        return now - dialog.queued_at if dialog is not None and dialog.queued_at is not None else 0.0

    def get_queue_list(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        logged = self.agents.logged_in()
        now = self.clock()
        self.agents.tell(agent, {"type": "QueueList", "queues": [
            {"id": name, "name": name, "callsInQueue": len(waiting),
             "longestWaitSec": round(max((self.waited(d, now) for d in waiting), default=0)),
             "agentsReady": sum(1 for a in logged if a.state == V.READY),
             "agentsNotReady": sum(1 for a in logged if a.state == V.NOT_READY),
             "agentsTalking": sum(1 for a in logged if a.state in (V.TALKING, V.HOLD))}
            for name, waiting in self.queues.items()]})
