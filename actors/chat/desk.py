"""The agent side of a simulated Chat Server: its agents' desktops. Agents connect, log into
the MRD and go READY; they accept what they are offered after a think time and close it
after a handling time. The desk remembers the tasks each agent is offered or holds, so that
agents act only on live ones. An agent with an extension is on voice too (Comm logs it in):
its voice state is kept apart from its chat state, and a call that holds its chats
(INTERRUPTED) is counted. Transfers and conferences a load scenario asks for are
handover.py's.
"""

from __future__ import annotations

from typing import Any

from actors.runtime import log
from wire import states as S

from .handover import Handover
from .host import Host
from .rhythm import Rhythm

LIVE_WITH_AGENT = frozenset({S.RESERVED, S.ACTIVE, S.WRAP_UP})


class Desk:
    def __init__(self, host: Host, agents: dict[str, dict[str, Any]], passwords: dict[str, str]):
        self.host = host
        self.agents = agents
        self.passwords = passwords
        self.states: dict[str, str] = {}     # agent -> its state on our MRD, as Comm last told us
        # (agent, MRD) -> its state on another MRD it is logged into (voice, when it has an
        # extension: Comm logs it in), kept apart so that it never reads as its state on ours
        self.elsewhere: dict[tuple[str, str], str] = {}
        self.held: dict[str, str] = {}       # TaskId -> the agent of ours it is offered to or held by
        self.accepted: set[str] = set()      # held tasks seen ACTIVE (counted, their close is due)
        self.closing: set[str] = set()       # held tasks our agents have closed, not yet confirmed
        self.rhythm = Rhythm(host, self)     # breaks and shifts, when a load scenario asks for them
        self.handover = Handover(host, self)  # transfers and conferences, likewise

    def behaviour_changed(self) -> None:
        """A load run set new behaviours: breaks and shifts start again by them."""
        self.rhythm.restart()

    # agents ---------------------------------------------------------------------------
    def log_all_in(self, reset: bool = False) -> None:
        """Connect and Login every agent; `reset` (once, when this process starts) tells Comm
        that whatever they held on an earlier process of ours is on no screen any more."""
        for agent_id in self.agents:
            self.log_in(agent_id, reset)

    def log_in(self, agent_id: str, reset: bool = False) -> None:
        password = self.passwords.get(agent_id)
        if password is None:
            log.warning("%s: no password for %s (the topology gives only its hash): not logged in", self.host.name,
                        agent_id)
            return
        self.host.request("Connect", {"AgentId": agent_id, "Password": password, "Reset": reset,
                                      "Extension": self.agents[agent_id].get("extension", ""),
                                      "Destination": self.host.name})
        self.host.request("Login", {"AgentId": agent_id, "Password": password, "Mrd": self.host.mrd})

    def on_agent_state(self, body: dict[str, Any]) -> None:
        agent_id, state = body.get("AgentId"), body.get("State")
        if agent_id.__class__ is not str or agent_id not in self.agents or state.__class__ is not str:
            return
        mrd = body.get("Mrd") or body.get("MRD") or self.host.mrd
        ours = mrd == self.host.mrd
        if ours:
            previous = self.states.get(agent_id)
            self.states[agent_id] = state
        else:
            previous = self.elsewhere.get((agent_id, mrd))
            self.elsewhere[(agent_id, mrd)] = state
        if state == S.NOT_READY and previous != S.NOT_READY and not self.rhythm.resting(agent_id):
            # Our agents want work, on every MRD they are logged into: NOT_READY after login
            # (or after a missed offer) -> READY. (On voice that makes them take calls.)
            self.host.request("AgentState", {"AgentId": agent_id, "State": S.READY, "Mrd": mrd})
        if not ours:
            return
        if state == S.READY and previous in (None, S.LOGIN, S.NOT_READY):
            self.host.counts["agents_ready"] += 1
        if state == S.INTERRUPTED and previous not in (None, S.INTERRUPTED):
            self.host.counts["chats_interrupted"] += 1   # a call holds the agent's chats (protocol.md 2.5)

    def logged_in(self, agent_id: str) -> bool:
        """Whether we believe the agent is logged in (we heard a state other than LOGOUT)."""
        return self.states.get(agent_id, S.LOGOUT) != S.LOGOUT

    # tasks ----------------------------------------------------------------------------
    def on_offer(self, task_id: str, agent_id: str) -> None:
        if agent_id in self.agents and self.held.get(task_id) != agent_id:  # (told twice: one offer)
            self.host.counts["offered"] += 1
            self.held[task_id] = agent_id
            self.accepted.discard(task_id)  # offered afresh (after RONA): its acceptance is new
            host = self.host
            think = None if host.rng.random() < host.behaviour.ignore_offer else host.think.sample(host.rng)
            if host.hooks is not None:
                think = host.hooks.offer(agent_id, task_id, think)
            if think is None:
                host.counts["ignored"] += 1   # left to time out: Comm takes it back (RONA)
                return
            host.loop.call_later(think, self.accept, agent_id, task_id)

    def accept(self, agent_id: str, task_id: str) -> None:
        if self.held.get(task_id) == agent_id:  # not taken back meanwhile (the customer left, RONA)
            self.host.request("TaskState", {"AgentId": agent_id, "TaskId": task_id, "State": S.ACTIVE})

    def keep(self, agent_id: str, task_id: str) -> None:
        """Our agent holds the chat: it closes it after a handling time (the hook's, if it has one)."""
        host = self.host
        handle = host.handle.sample(host.rng)
        if host.hooks is not None:
            handle = host.hooks.accept(agent_id, task_id, handle)
        host.loop.call_later(handle, self.finish, agent_id, task_id)

    def finish(self, agent_id: str, task_id: str) -> None:
        if self.held.get(task_id) == agent_id:
            self.closing.add(task_id)  # our agent is done with it, whatever the news says
            self.host.request("TaskState", {"AgentId": agent_id, "TaskId": task_id, "State": S.CLOSED,
                                            "Code": S.DONE})

    def on_task_state(self, body: dict[str, Any]) -> None:
        """A task we hold changed (a notification, or the answer to our agent's request):
        count an acceptance once, however often ACTIVE is told (a retry's answer repeats it)."""
        if self.handover.on_task_state(body):
            return   # a transfer: the task moved between agents, and handover.py moved it here
        task_id = body.get("TaskId")
        agent_id = self.held.get(task_id)  # type: ignore[arg-type]
        if agent_id is None:
            return
        state = body.get("State")
        if state == S.ACTIVE and body.get("AgentId") == agent_id and not body.get("Code"):
            if task_id not in self.accepted:
                self.accepted.add(task_id)
                self.host.counts["acceptances"] += 1   # by our agents (a task offered again counts again)
                self.keep(agent_id, task_id)
                self.handover.on_accepted(agent_id, task_id)
        elif state == S.CLOSED and body.get("Scope") != "PARTICIPANT":
            self.drop(task_id)
            if body.get("Code") == S.DONE and body.get("AgentId") in self.agents:
                self.host.counts["handled"] += 1
        elif state == S.QUEUED and body.get("Code"):  # RONA, AGENT_LOGOUT: taken from our agent
            if body.get("Code") == S.RONA:
                self.host.counts["rona"] += 1
            self.drop(task_id)

    def on_refused(self, request: dict[str, Any]) -> None:
        """Comm refused our agent's TaskState: the agent does not have that task (it went
        back while we missed the news)."""
        task_id, agent_id = request.get("TaskId"), request.get("AgentId")
        if agent_id is not None and self.held.get(task_id) == agent_id:  # type: ignore[arg-type]
            self.drop(task_id)
        self.handover.on_refused(request)

    def drop(self, task_id: str) -> None:
        self.held.pop(task_id, None)
        self.accepted.discard(task_id)
        self.closing.discard(task_id)

    def forget(self) -> None:
        """A Comm that knows none of our agents or tasks: we start again."""
        self.held.clear()
        self.accepted.clear()
        self.closing.clear()
        self.states.clear()
        self.elsewhere.clear()
        self.rhythm.forget()
        self.handover.forget()

    # after lost news --------------------------------------------------------------------
    def apply_snapshot(self, agents: list[dict[str, Any]], tasks: dict[str, dict[str, Any]],
                       unknown: set[str]) -> None:
        """What Comm holds for our desk supersedes what we do. It lists every agent whose
        session is on our desk and every live task they hold or are offered."""
        listed = set()
        for row in agents:
            agent_id = row.get("AgentId")
            if agent_id not in self.agents or (row.get("Mrd") or row.get("MRD") or self.host.mrd) != self.host.mrd:
                continue  # not ours, or its state on another MRD (voice): ours log into one
            listed.add(agent_id)
            if self.rhythm.resting(agent_id):
                self.states[agent_id] = row.get("State")   # on a break or away: left so
            elif row.get("State") == S.LOGOUT and self.logged_in(agent_id):
                self.log_back_in(agent_id)
            else:
                self.on_agent_state(row)  # NOT_READY we did not know of -> ask READY again
        for agent_id in self.agents:
            if agent_id not in listed and self.logged_in(agent_id) and agent_id not in self.rhythm.away:
                self.log_back_in(agent_id)  # its session is not on our desk any more
        for task_id, agent_id in list(self.held.items()):
            row = tasks.get(task_id)
            if task_id in unknown or row is None or row.get("State") not in LIVE_WITH_AGENT \
                    or row.get("AgentId") != agent_id:
                self.drop(task_id)
        for task_id, row in tasks.items():
            agent_id = row.get("AgentId")
            if task_id in self.held or agent_id.__class__ is not str or agent_id not in self.agents:
                continue
            if row.get("State") == S.RESERVED:
                self.on_offer(task_id, agent_id)  # an offer whose TaskAgentSelected we missed
            elif row.get("State") in (S.ACTIVE, S.WRAP_UP):
                # our agent has it on screen (its acceptance was counted when it was told, or
                # is lost with the news): it finishes it, or the task would stay open forever
                self.held[task_id] = agent_id
                self.accepted.add(task_id)
                self.keep(agent_id, task_id)
        self.handover.apply_snapshot(tasks, unknown)

    def log_back_in(self, agent_id: str) -> None:
        log.info("%s: Comm has %s logged out: logging it in again", self.host.name, agent_id)
        self.states.pop(agent_id, None)
        for key in [key for key in self.elsewhere if key[0] == agent_id]:
            del self.elsewhere[key]   # its other MRDs' states are told again after its login
        self.log_in(agent_id)

    def held_view(self) -> dict[str, str] | None:
        """What our agents hold or are offered, for an outside check of capacity and double
        assignment (mroute chaos); only while it is small."""
        if len(self.held) > 10_000:
            return None
        return {t: a for t, a in self.held.items() if t not in self.closing}
