"""Comm's side of the MRE: what it reports on CommunicationServer, and the snapshot of
everything the MRE derives its view from.

The MRE's decisions are numbered and applied once, in order (decisions.py). While the
journal cannot be written they wait: the MRE sends them again until they are confirmed.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from wire import states as S
from wire.codec import routing_params

from .agents import Agents
from .decisions import DecisionGate
from .streams import Streams
from .tasks import Tasks

log = logging.getLogger("mroute.comm")

RESYNC_SPACING = 0.1  # s: the MRE's Resyncs answered at most this often (resync)
DRIFT_SPACING = 1.0   # s: snapshots sent for the MRE's drift at most this often (drifted)
DRIFT = frozenset({"offer_pending", "at_limit"})  # offers refused for what the MRE should have known


class MreLink:
    def __init__(self, agents: Agents, tasks: Tasks, out: Streams, gate: DecisionGate,
                 unavailable: Callable[[], str]):
        self.agents = agents
        self.tasks = tasks
        self.out = out
        self.gate = gate
        self.unavailable = unavailable  # why nothing may change now, or ""
        self.reported = 0               # transfers and conferences the MRE said it counted
        self.deferred = 0               # decisions left while nothing could change
        self.resynced_at = -RESYNC_SPACING   # when the MRE was last sent a snapshot it asked for
        self.resyncs_spaced = 0              # the MRE's asks left unanswered: one came too soon before
        self.drift_snapshot_at = -DRIFT_SPACING  # when the MRE was last sent a snapshot for a drift

    def reports(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        """What the MRE reports, by type."""
        return {"TaskAgentSelected": self.selected, "TaskAgentTransferred": self.counted,
                "TaskConferenced": self.counted, "Resync": self.resync}

    def admit(self, body: dict[str, Any]) -> bool:
        """Whether a decision is applied now: the next on its stream, and Comm can change."""
        if self.unavailable():  # not now: the MRE sends it again until we confirm it
            self.deferred += 1
            return False
        return self.gate.admit(body)

    def selected(self, body: dict[str, Any]) -> None:
        """The MRE chose an agent for a task: offered, unless either moved meanwhile."""
        if not self.admit(body):
            return
        task_id, agent_id = body["TaskId"], body["AgentId"]
        task = self.tasks.live.get(task_id)
        if task is None:  # closed while the MRE chose: free the agent it reserved
            closed = self.tasks.closed.get(task_id)
            if closed is not None:
                self.out.to_mre("TaskState", {"TaskId": task_id, "AgentId": agent_id, "State": S.CLOSED,
                                              "MRD": closed.mrd, "Code": closed.code})
            else:
                log.warning("MRE selected %s for unknown task %s", agent_id, task_id,
                            extra={"TaskId": task_id, "AgentId": agent_id})
            return
        if task.state != S.QUEUED:
            self.drifted(f"MRE selected {agent_id} for task {task_id}, which is {task.state} with {task.owner}")
            return
        refused = self.tasks.select(task, agent_id)
        if refused in DRIFT:   # the MRE does not know of an offer or a task the agent holds
            self.drifted(f"MRE selected {agent_id} for task {task_id}, which it cannot take ({refused})")

    def counted(self, body: dict[str, Any]) -> None:
        """The MRE counted a transfer or conference: Comm told the desks when it made it."""
        if self.admit(body):
            self.reported += 1

    def drifted(self, why: str) -> None:
        """The MRE's view has drifted from ours: give it ours, whole, at most once every
        DRIFT_SPACING (a snapshot walks every agent and task; what the MRE decides before
        it has the snapshot is refused and sent back, one by one)."""
        now = self.tasks.clock()
        counters = self.tasks.counters
        if now - self.drift_snapshot_at < DRIFT_SPACING:
            counters["snapshots_spaced"] = counters.get("snapshots_spaced", 0) + 1
            return
        self.drift_snapshot_at = now
        log.warning("%s: sending the MRE a snapshot", why)
        counters["snapshots_sent"] = counters.get("snapshots_sent", 0) + 1
        self.out.to_mre("Snapshot", self.snapshot())

    def resync(self, body: dict[str, Any]) -> None:
        """The MRE asks for a snapshot (it asks again every 0.5 s until one comes). At most
        one is built every RESYNC_SPACING: each costs Comm a pass over every agent and task,
        and without CURVE anyone who reaches the queue can ask."""
        now = self.tasks.clock()
        if now - self.resynced_at < RESYNC_SPACING:
            self.resyncs_spaced += 1
            return
        self.resynced_at = now
        log.info("MRE asked for a snapshot (%s)", body.get("Reason", "no reason given"))
        self.out.to_mre("Snapshot", {**self.snapshot(unasked=False), "Request": body.get("Request")})

    def snapshot(self, unasked: bool = True) -> dict[str, Any]:
        """Everything the MRE derives its view from: logged-in agents and live tasks, and
        the stream it numbers its decisions on from then on (decisions.py; `unasked`: one
        the MRE did not ask for, which retires the streams before it)."""
        agents = [{"AgentId": agent_id, "MRD": mrd, "State": p.state, "Tasks": sorted(p.tasks), "Offer": p.offer}
                  for agent_id, session in self.agents.sessions.items()
                  for mrd, p in session.mrds.items() if p.state != S.LOGOUT]
        tasks = [{"TaskId": t.task_id, "MRD": t.mrd, "params": routing_params(t.params), "State": t.state,
                  "Agents": t.agents(), "ClientUniqueId": t.client_id, "Waited": round(self.tasks.waited(t), 3)}
                 for t in sorted(self.tasks.live.values(), key=lambda t: t.created)]
        return {"Epoch": self.tasks.prefix, "Agents": agents, "Tasks": tasks, "Decisions": self.gate.issue(unasked)}

    def confirmations(self) -> None:
        """Confirm the decisions applied so far (server.py sends them a few times a second)."""
        for confirm in self.gate.confirmations():
            self.out.to_mre("Confirm", confirm)

    def stats(self) -> dict[str, Any]:
        return {**self.gate.stats(), "mre_reports": self.reported, "mre_resyncs_spaced": self.resyncs_spaced}
