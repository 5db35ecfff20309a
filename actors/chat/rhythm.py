"""An agent's day on a simulated Chat Server's desk, as a load scenario asks (wire/behaviour.py):
NOT_READY breaks (`breaks.every`, then `breaks.length` away) and logging out and back in
(`shifts`: at each `every`, a `logout` share of agents leave for `away`). Each is counted:
`breaks` asked, `logouts` asked. The desk (desk.py) keeps its agents READY otherwise; it asks
here whether an agent is meant to be away.
"""

from __future__ import annotations

from typing import Any

from wire import states as S

from .host import Host, Timer

RETRY_S = 0.5   # an agent with an offer on screen finishes deciding before its break


class Rhythm:
    def __init__(self, host: Host, desk: Any):
        self.host, self.desk = host, desk
        self.on_break: set[str] = set()
        self.away: set[str] = set()          # logged out by its shift, back after `away`
        self.timers: dict[tuple[str, str], Timer] = {}

    def restart(self) -> None:
        """New behaviours: agents on a break or away come back, and every agent's clocks
        start again."""
        for agent_id in list(self.on_break):
            self.end_break(agent_id)
        for agent_id in list(self.away):
            self.come_back(agent_id)
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
        behaviour = self.host.behaviour
        for agent_id in self.desk.agents:
            if behaviour.breaks is not None:
                self.schedule(agent_id, "break", behaviour.breaks.every.sample(self.host.rng), self.take_break)
            if behaviour.shifts is not None:
                self.schedule(agent_id, "shift", behaviour.shifts.every.sample(self.host.rng), self.shift)

    def forget(self) -> None:
        """A Comm that knows none of our agents: the desk logs them all in again."""
        self.on_break.clear()
        self.away.clear()

    def schedule(self, agent_id: str, kind: str, delay: float, fn: Any) -> None:
        earlier = self.timers.get((agent_id, kind))
        if earlier is not None:
            earlier.cancel()
        self.timers[(agent_id, kind)] = self.host.loop.call_later(delay, fn, agent_id)

    def resting(self, agent_id: str) -> bool:
        """Whether the agent is meant to be NOT_READY or logged out now (the desk leaves it so)."""
        return agent_id in self.on_break or agent_id in self.away

    # breaks ---------------------------------------------------------------------------
    def take_break(self, agent_id: str) -> None:
        breaks = self.host.behaviour.breaks
        if breaks is None:
            return
        state = self.desk.states.get(agent_id)
        if state in (None, S.LOGOUT, S.RESERVED) or self.resting(agent_id):
            # not logged in, away, or deciding on an offer: the break comes a little later
            self.schedule(agent_id, "break", RETRY_S, self.take_break)
            return
        self.on_break.add(agent_id)
        self.host.counts["breaks"] += 1
        self.host.request("AgentState", {"AgentId": agent_id, "State": S.NOT_READY, "Mrd": self.host.mrd})
        self.schedule(agent_id, "break", breaks.length.sample(self.host.rng), self.end_break)

    def end_break(self, agent_id: str) -> None:
        self.on_break.discard(agent_id)
        if self.desk.states.get(agent_id) == S.NOT_READY:
            self.host.request("AgentState", {"AgentId": agent_id, "State": S.READY, "Mrd": self.host.mrd})
        # (PENDING_NOT_READY: its last task still open; its NOT_READY will bring it READY)
        breaks = self.host.behaviour.breaks
        if breaks is not None:
            self.schedule(agent_id, "break", breaks.every.sample(self.host.rng), self.take_break)

    # shifts ---------------------------------------------------------------------------
    def shift(self, agent_id: str) -> None:
        shifts = self.host.behaviour.shifts
        if shifts is None:
            return
        if not self.resting(agent_id) and self.desk.logged_in(agent_id) \
                and self.host.rng.random() < shifts.logout:
            self.away.add(agent_id)
            self.host.counts["logouts"] += 1
            # what it holds goes back to its queue (Comm: QUEUED, AGENT_LOGOUT): it leaves it
            # now, so that no acceptance or close of it is asked after the logout
            self.host.request("AgentState", {"AgentId": agent_id, "State": S.LOGOUT, "Mrd": self.host.mrd})
            for task_id in [t for t, a in self.desk.held.items() if a == agent_id]:
                self.desk.drop(task_id)
            self.schedule(agent_id, "back", shifts.away.sample(self.host.rng), self.come_back)
        self.schedule(agent_id, "shift", shifts.every.sample(self.host.rng), self.shift)

    def come_back(self, agent_id: str) -> None:
        if agent_id in self.away:
            self.away.discard(agent_id)
            self.desk.states.pop(agent_id, None)
            self.desk.log_in(agent_id)
