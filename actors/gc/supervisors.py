"""What a supervisor does (protocol.md 2.2): see its team's agents and their states (and
hear every change, subscribed), and on an agent's call monitor silently, barge in, or drop
a participant. The wire/gc.py specs mark these supervisor-only; the centre refuses others."""

from __future__ import annotations

from typing import Any

from wire import gc as G, voice as V

from .agents import Agents, VoiceAgent
from .dialogs import Dialogs, event_name
from .refusals import require


class SupervisorCommands:
    def __init__(self, agents: Agents, dialogs: Dialogs):
        self.agents = agents
        self.dialogs = dialogs

    def team_users(self, team: str) -> list[dict[str, Any]]:
        return [{"agentId": a.agent_id, "firstName": a.first, "lastName": a.last, "extension": a.extension,
                 "state": a.state, "reasonCode": a.reason} for a in self.agents.by_id.values() if a.team == team]

    def get_team_users(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        if args.get("subscribe", "").lower() == "true":
            self.agents.watch(agent, args["team_id"])
        self.agents.tell(agent, {"type": "TeamInfo", "teamId": args["team_id"], "name": args["team_id"],
                                 "users": self.team_users(args["team_id"])})

    def get_team_users_state(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.agents.tell(agent, {"type": "TeamUsersState", "teamId": args["team_id"], "name": args["team_id"],
                                 "users": self.team_users(args["team_id"])})

    # on an agent's call ----------------------------------------------------------------------------
    def silent_monitor(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog = self.dialogs.active_at(args["agent_extension"], "SilentMonitor")
        dialog.join(agent.extension, V.ACTIVE, silent=True)
        self.agents.tell(agent, self.dialogs.event(dialog, "Monitor", show_silent=True))

    def end_silent_monitor(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog, party = self.dialogs.of(agent, args["dialog_id"], "EndSilentMonitor")
        require(party.silent, "EndSilentMonitor", "not monitoring this call")
        party.move(V.DROPPED)
        self.agents.tell(agent, self.dialogs.event(dialog, "Monitor", show_silent=True))

    def barge_call(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog = self.dialogs.known(args["dialog_id"], "BargeCall")
        require(dialog.state == V.ACTIVE and dialog.party(args["agent_extension"]) is not None, "BargeCall",
                f"no active call {args['dialog_id']} at {args['agent_extension']}")
        party = dialog.party(agent.extension)
        # on the call already, and heard: a second part of it would outlive the first's end
        require(party is None or party.silent, "BargeCall", f"{agent.agent_id} is on {args['dialog_id']} already")
        if party is not None:  # from monitoring into the conversation
            party.silent = False
        else:
            dialog.join(agent.extension, V.ACTIVE)
        dialog.call_type = V.CONFERENCE
        self.agents.on_call(agent, V.TALKING)
        self.dialogs.publish(dialog, "Barge")

    def drop_participant(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        dialog = self.dialogs.known(args["dialog_id"], "DropParticipant")
        if dialog.party(args["participant_extension"]) is None:
            raise G.CommandError(G.NOT_FOUND, f"{args['participant_extension']} is not on {args['dialog_id']}",
                                 "DropParticipant")
        self.dialogs.leave(dialog, args["participant_extension"])
        if dialog.party(agent.extension) is None:  # a supervisor not on the call hears the outcome too
            self.agents.tell(agent, self.dialogs.event(dialog, event_name(dialog)))
