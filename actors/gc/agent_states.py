"""An agent's own voice state (protocol.md 2.1 agent_state, 2.4): Login (also as a mobile
agent), Logout, MakeReady, MakeNotReady, wrap-up's MakeWork(Not)Ready, GetState, refresh,
and who is logged in. What each command checks and asks; the moves are Agents'."""

from __future__ import annotations

from wire import gc as G, voice as V

from .agents import Agents, VoiceAgent
from .dialogs import Dialogs, event_name
from .reasons import ReasonCodes
from .refusals import require


class AgentStateCommands:
    def __init__(self, agents: Agents, dialogs: Dialogs, reasons: ReasonCodes):
        self.agents = agents
        self.dialogs = dialogs
        self.reasons = reasons

    def login(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        if not args.get("password"):
            raise G.CommandError(G.MISSING_PASSWORD, "a password is needed", "Login")
        if not agent.password_matches(args["password"]):
            raise G.CommandError(G.AUTHORIZATION_FAILURE, "wrong password", "Login")
        if not args.get("extension"):
            raise G.CommandError(G.MISSING_EXTENSION, "an extension is needed", "Login")
        if args["extension"] != agent.extension:
            raise G.CommandError(G.WRONG_EXTENSION, f"{agent.agent_id}'s extension is not {args['extension']}",
                                 "Login")
        self.agents.log_in(agent)

    def mobile_agent_login(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        if args["call_by_call"].lower() not in ("true", "false"):
            raise G.CommandError(G.BAD_COMMAND, "call_by_call is true or false", "MobileAgentLogin")
        self.login(agent, args)

    def log_out(self, agent: VoiceAgent, reason: str, command: str, abrupt: bool = False) -> None:
        if not abrupt:
            require(agent.state == V.NOT_READY, command, f"logout is from NOT_READY, not {agent.state}")
        self.agents.log_out(agent, reason, self.dialogs.leave_all)

    def logout(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.log_out(agent, "", "Logout")

    def logout_with_reason(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        if not self.reasons.known("LOGOUT", args["reason_code"]):
            raise G.CommandError(G.NOT_FOUND, f"no LOGOUT reason code {args['reason_code']!r}", "LogoutWithReason")
        self.log_out(agent, args["reason_code"], "LogoutWithReason")

    def abrupt_disconnect(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        """A logout from any state: the agent's calls end."""
        self.log_out(agent, "", "AbruptDisconnect", abrupt=True)

    def make_ready(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.agents.ask(agent, V.READY, "", "MakeReady")

    def make_not_ready(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.agents.ask(agent, V.NOT_READY, "", "MakeNotReady")

    def make_not_ready_with_reason(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        if not self.reasons.known("NOT_READY", args["reason_code"]):
            raise G.CommandError(G.NOT_FOUND, f"no NOT_READY reason code {args['reason_code']!r}",
                                 "MakeNotReadyWithReason")
        self.agents.ask(agent, V.NOT_READY, args["reason_code"], "MakeNotReadyWithReason")

    def make_work_ready(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.agents.ask(agent, V.WORK_READY, "", "MakeWorkReady")

    def make_work_not_ready(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.agents.ask(agent, V.WORK, "", "MakeWorkNotReady")

    def get_state(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.agents.tell(agent, self.agents.state_event(agent))

    def refresh(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        """Its State, its AgentInfo, and a Dialog for each of its live calls."""
        self.agents.tell(agent, self.agents.state_event(agent))
        self.agents.tell(agent, self.agents.info_event(agent))
        for dialog in self.dialogs.by_id.values():
            if dialog.party(agent.extension) and dialog.state not in V.ENDED:
                self.agents.tell(agent, self.dialogs.event(dialog, event_name(dialog)))

    def get_logged_in_agents(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        self.agents.tell(agent, {"type": "LoggedInAgents", "agents": [
            {"agentId": a.agent_id, "extension": a.extension, "state": a.state} for a in self.agents.logged_in()]})
