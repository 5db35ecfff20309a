"""The simulated voice contact centre behind the GC, as a plain object (protocol.md 2)."""

from __future__ import annotations

import random

import pytest

from actors.comm.voice import VOICE_STATES
from actors.gc.centre import CLIENT_COMMANDS, VoiceCentre
from wire.kernel.settings import GcSettings
from wire import gc as G, voice as V

from ..fakeclock import FakeClock

DIRECTORY = [
    {"id": "alice", "password": "pa", "name": "Alice Smith", "extension": "1001", "team": "sales"},
    {"id": "bob", "password": "pb", "name": "Bob Jones", "extension": "1002", "team": "sales"},
    {"id": "carol", "password": "pc", "name": "Carol King", "extension": "1003", "team": "sales"},
    {"id": "sue", "password": "ps", "name": "Sue Boss", "extension": "1009", "team": "sales", "supervisor": True},
    {"id": "chatonly", "password": "px", "name": "Chat Only", "extension": ""},
]


class Voice(FakeClock):
    def __init__(self, **settings):
        super().__init__()
        self.events: list[tuple[str, dict]] = []
        # the callers' draws seeded: a test of their Poisson arrivals or their durations gives the
        # same figures on every run
        self.centre = VoiceCentre(DIRECTORY, GcSettings("gc", **{"queues": {"sales": {}}, "answer_delay": 1.0, **settings}),
                                  lambda dest, ev: self.events.append((dest, ev)), clock=self.clock,
                                  call_later=self.call_later, rng=random.Random(20))

    def do(self, who, command, *params):
        self.centre.handle(G.parse(G.frames(command, who, *params)))

    def refused(self, who, command, *params) -> str:
        with pytest.raises(G.CommandError) as info:
            self.do(who, command, *params)
        return info.value.code

    def login(self, who, ready=True):
        password = {"alice": "pa", "bob": "pb", "carol": "pc", "sue": "ps"}[who]
        self.do(who, "Connect", f"desk-{who}", password)
        self.do(who, "Login", password, self.centre.agents.by_id[who].extension)
        if ready:
            self.do(who, "MakeReady")

    def state(self, who):
        return self.centre.agents.by_id[who].state

    def last(self, who, type, **fields):
        for dest, ev in reversed(self.events):
            if dest == f"desk-{who}" and ev["type"] == type and all(ev.get(k) == v for k, v in fields.items()):
                return ev
        raise AssertionError(f"no {type} {fields} for {who}")

    def dialog(self, who):
        return self.last(who, "Dialog")["dialog"]

    def party(self, who, address):
        return next(p for p in self.dialog(who)["participants"] if p["mediaAddress"] == address)


def test_parse_is_case_insensitive_and_refuses_bad_commands():
    assert G.parse([b"makeready#alice", b""]).spec.name == "MakeReady"
    assert G.parse([b"LOGIN#alice", b"pa,1001"]).args == {"password": "pa", "extension": "1001"}
    for frames in ([b"Teleport#alice", b""], [b"MakeReady", b""], [b"Login#alice", b"pa"], [b"\xff#a", b""],
                   [b"MakeReady#alice", b"extra"], [b"a", b"b", b"c"]):
        with pytest.raises(G.CommandError) as info:
            G.parse(frames)
        assert info.value.code == G.BAD_COMMAND


def test_every_command_has_one_handler_and_every_voice_state_an_mrd_state():
    assert set(Voice().centre.commands) | CLIENT_COMMANDS == {spec.name for spec in G.COMMANDS.values()}
    assert set(VOICE_STATES) == set(V.AGENT_STATES)


def test_hello_and_beat_answer_system_and_outage_is_announced():
    v = Voice()
    epoch = v.centre.clients.epoch
    v.do("client-1", "Hello")
    assert v.events[-1] == ("client-1", {"type": "System", "status": "IN_SERVICE", "epoch": epoch,
                                         "clientTimeout": 10.0})
    v.do("client-1", "Beat")
    v.login("alice", ready=False)
    v.centre.set_in_service(False)
    down = {"type": "System", "status": "OUT_OF_SERVICE", "epoch": epoch, "clientTimeout": 10.0}
    assert ("client-1", down) in v.events and ("desk-alice", down) in v.events
    assert v.refused("alice", "GetState") == G.GENERAL_ERROR
    v.centre.set_in_service(True)
    assert v.events[-1][1]["status"] == "IN_SERVICE"


def test_login_errors_and_login():
    v = Voice()
    v.do("alice", "Connect", "desk-alice", "pa")
    assert v.refused("nobody", "Login", "x", "1") == G.USER_NOT_FOUND
    assert v.refused("alice", "Login", "", "1001") == G.MISSING_PASSWORD
    assert v.refused("alice", "Login", "pa", "") == G.MISSING_EXTENSION
    assert v.refused("alice", "Login", "pa", "9999") == G.WRONG_EXTENSION
    assert v.refused("alice", "Login", "bad", "1001") == G.AUTHORIZATION_FAILURE
    assert v.refused("alice", "MakeReady") == G.INVALID_STATE  # not logged in
    v.do("alice", "Login", "pa", "1001")
    assert v.state("alice") == "NOT_READY"
    info = v.last("alice", "AgentInfo")
    assert (info["firstName"], info["lastName"], info["team"]) == ("Alice", "Smith", {"id": "sales", "name": "sales"})
    assert v.last("alice", "State")["stateChangeTime"]
    limited = Voice(licenses=1)
    limited.login("alice")
    limited.do("bob", "Connect", "desk-bob", "pb")
    assert limited.refused("bob", "Login", "pb", "1002") == G.LICENSES_EXCEEDED
    assert limited.refused("chatonly", "Login", "px", "1") == G.USER_NOT_FOUND  # no extension, no voice


def test_state_moves_and_reason_codes():
    v = Voice()
    v.login("alice", ready=False)
    assert v.refused("alice", "MakeNotReadyWithReason", "999") == G.NOT_FOUND
    v.do("alice", "MakeNotReadyWithReason", "2")
    assert (v.state("alice"), v.last("alice", "State")["reasonCode"]) == ("NOT_READY", "2")
    v.do("alice", "MakeReady")
    assert v.refused("alice", "Logout") == G.INVALID_STATE  # only from NOT_READY
    assert v.refused("alice", "MakeWorkReady") == G.INVALID_STATE
    v.do("alice", "reasoncodenotready")
    assert v.last("alice", "ReasonCodes")["category"] == "NOT_READY"
    v.do("alice", "wrapupreasoncode")
    v.do("alice", "reasoncodelogout")
    assert v.last("alice", "ReasonCodes", category="LOGOUT")["codes"]
    v.do("alice", "MakeNotReady")
    v.do("alice", "LogoutWithReason", "10")
    assert (v.state("alice"), v.last("alice", "State")["reasonCode"]) == ("LOGOUT", "10")


def test_a_full_inbound_call_ring_answer_hold_retrieve_consult_transfer():
    v = Voice()
    v.login("alice")
    v.login("bob", ready=False)
    dialog_id = v.centre.acd.inbound("sales", "5551234")
    assert v.state("alice") == "RESERVED"
    assert v.party("alice", "1001")["actions"] == ["ANSWER"] and v.dialog("alice")["callType"] == "ACD_IN"
    v.do("alice", "AnswerCall", dialog_id)
    assert v.state("alice") == "TALKING" and v.dialog("alice")["state"] == "ACTIVE"
    assert v.party("alice", "1001")["actions"] == ["HOLD", "DROP", "UPDATE_CALL_DATA", "CONSULT_CALL"]
    v.do("alice", "HoldCall", dialog_id)
    assert v.state("alice") == "HOLD"
    assert v.refused("alice", "HoldCall", dialog_id) == G.INVALID_STATE
    v.do("alice", "RetrieveCall", dialog_id)
    assert v.state("alice") == "TALKING"
    v.do("alice", "MakeReady")  # asked during the call: kept as pendingState
    assert v.last("alice", "State")["pendingState"] == "READY"
    v.do("alice", "ConsultCall", "1002", dialog_id)
    assert v.state("bob") == "RESERVED"
    consult = v.last("bob", "Dialog")["dialog"]
    assert consult["callType"] == "CONSULT" and consult["associatedDialogId"] == dialog_id
    v.do("bob", "AnswerCall", consult["id"])
    v.do("alice", "GetDialogControls", dialog_id)
    assert set(v.last("alice", "DialogControls")["actions"]) >= {"TRANSFER", "CONFERENCE", "RETRIEVE"}
    v.do("alice", "TransferCall", "1002", dialog_id)
    assert v.last("bob", "Dialog", event="TransferCall")["dialog"]["id"] == dialog_id
    assert v.state("alice") == "READY"  # the pending state, no wrap-up configured
    assert v.state("bob") == "TALKING"
    assert {p["mediaAddress"] for p in v.dialog("bob")["participants"] if p["state"] == "ACTIVE"} == {"5551234", "1002"}
    assert v.refused("alice", "AnswerCall", "d999") == G.NOT_FOUND


def test_conference_and_blind_transfer():
    v = Voice()
    for who in ("alice", "bob", "carol"):
        v.login(who, ready=who == "alice")
    call = v.centre.acd.inbound("sales", "5550001")
    v.do("alice", "AnswerCall", call)
    assert v.refused("alice", "Conferencecall", "1002", call) == G.INVALID_STATE  # no consult yet
    v.do("alice", "ConsultCall", "1002", call)
    v.do("bob", "AnswerCall", v.last("bob", "Dialog")["dialog"]["id"])
    v.do("alice", "Conferencecall", "1002", call)
    conf = v.last("alice", "Dialog", event="ConferenceCall")["dialog"]
    assert conf["callType"] == "CONFERENCE"
    assert {p["mediaAddress"] for p in conf["participants"] if p["state"] == "ACTIVE"} == {"5550001", "1001", "1002"}
    v.do("alice", "ReleaseCall", call)
    assert v.state("bob") == "TALKING"  # the customer stays with bob
    v.do("bob", "BlindTransfer", "1003", call)
    assert v.state("carol") == "RESERVED" and v.state("bob") == "NOT_READY"
    v.do("carol", "AnswerCall", call)
    assert v.state("carol") == "TALKING"
    assert v.refused("carol", "BlindTransfer", "42", call) == G.INVALID_STATE  # no such destination


def test_supervisor_monitor_barge_and_drop():
    v = Voice()
    v.login("alice")
    v.login("sue", ready=False)
    v.login("bob", ready=False)
    call = v.centre.acd.inbound("sales", "5550002")
    v.do("alice", "AnswerCall", call)
    assert v.refused("bob", "SilentMonitor", "1001") == G.AUTHORIZATION_FAILURE
    assert v.refused("sue", "SilentMonitor", "1002") == G.NOT_FOUND
    v.do("sue", "SilentMonitor", "1001")
    assert v.last("sue", "Dialog")["event"] == "Monitor"
    v.do("sue", "BargeCall", "1001", call)
    assert v.last("alice", "Dialog")["event"] == "Barge" and v.state("sue") == "TALKING"
    v.do("sue", "DropParticipant", call, "1001")
    assert v.state("alice") == "READY"  # back where it was before the call
    assert v.party("sue", "1001")["state"] == "DROPPED"
    v.do("sue", "getteamusers", "sales", "true")
    assert {u["agentId"] for u in v.last("sue", "TeamInfo")["users"]} >= {"alice", "bob", "sue"}
    v.do("alice", "MakeNotReady")  # sue watches the team now
    assert v.last("sue", "State", agentId="alice")["state"] == "NOT_READY"
    v.do("sue", "getteamusersstate", "sales")
    v.do("sue", "getqueuelist")
    assert v.last("sue", "QueueList")["queues"][0]["id"] == "sales"
    v.do("sue", "getteamphonebooks", "sales")


def test_a_supervisor_on_a_call_may_not_barge_into_it_again_and_its_logout_ends_its_part():
    """Found by the property test below: Sue barged into her own outside call, which joined her
    twice; her abrupt logout ended one part, and the other kept her on a call while LOGOUT."""
    v = Voice()
    v.login("sue")
    v.do("sue", "MakeCall", "5551234")
    v.advance(1.0)   # the outside number answers
    call = v.dialog("sue")["id"]
    assert v.state("sue") == "TALKING"
    assert v.refused("sue", "BargeCall", "1009", call) == "INVALID_STATE"
    v.do("sue", "AbruptDisconnect")
    assert v.state("sue") == "LOGOUT"
    assert not [p for d in v.centre.dialogs.by_id.values() for p in d.participants
                if p.address == "1009" and p.state not in ("DROPPED", "FAILED")]


def test_wrap_up_with_reason_then_ready_after_the_timer():
    v = Voice(wrap_up=5)
    v.login("alice")
    call = v.centre.acd.inbound("sales", "5550003")
    v.do("alice", "AnswerCall", call)
    v.do("alice", "UpdateCallVariable", call, "account", "42")
    assert v.dialog("alice")["callVariables"] == {"account": "42"}
    v.do("alice", "ReleaseCall", call)
    assert v.state("alice") == "WORK_READY"
    assert v.refused("alice", "UpdateWrapUp", call, "nonsense") == G.NOT_FOUND
    v.do("alice", "UpdateWrapUp", call, "20")
    assert v.centre.dialogs.by_id[call].wrap_up_reason == "20"
    v.advance(4.9)
    assert v.state("alice") == "WORK_READY"
    v.advance(0.2)
    assert v.state("alice") == "READY"


def test_outside_calls_answer_after_a_delay_and_bad_numbers_fail():
    v = Voice()
    v.login("alice", ready=False)
    v.do("alice", "MakeCall", "5559876")
    out = v.dialog("alice")
    assert out["callType"] == "OUT" and out["state"] == "ALERTING"
    v.advance(1.1)
    assert v.dialog("alice")["state"] == "ACTIVE" and v.state("alice") == "TALKING"
    v.do("alice", "ZOOMPauseRecording")
    assert v.last("alice", "Recording")["status"] == "PAUSED"
    v.do("alice", "ZOOMResumeRecording")
    v.do("alice", "ReleaseCall", out["id"])
    assert v.state("alice") == "NOT_READY"
    assert v.refused("alice", "ZOOMPauseRecording") == G.INVALID_STATE
    v.do("alice", "MakeCall", "42")
    failed = v.dialog("alice")
    assert failed["state"] == "FAILED" and any(p["stateCause"] == "BAD_DESTINATION" for p in failed["participants"])


def test_agent_to_agent_call_and_refresh():
    v = Voice()
    v.login("alice", ready=False)
    v.login("bob", ready=False)
    v.do("alice", "MakeCall", "1002")
    call = v.dialog("bob")
    assert call["callType"] == "AGENT_INSIDE" and v.state("bob") == "RESERVED"
    v.do("bob", "AnswerCall", call["id"])
    v.do("bob", "refresh")
    assert v.last("bob", "Dialog")["dialog"]["id"] == call["id"]
    v.do("bob", "GetLoggedInAgents")
    assert {a["agentId"] for a in v.last("bob", "LoggedInAgents")["agents"]} == {"alice", "bob"}
    v.do("carol", "Connect", "desk-carol", "pc")
    v.do("carol", "Login", "pc", "1003")
    v.do("carol", "MakeCall", "1002")  # bob is talking
    assert any(p["stateCause"] == "BUSY" for p in v.dialog("carol")["participants"])


def test_outbound_preview_accept_reject_close():
    v = Voice()
    v.login("alice")
    dialog = v.centre.preview.offer("alice", "5557777")
    assert v.state("alice") == "RESERVED_OUTBOUND_PREVIEW"
    assert v.refused("alice", "AcceptOutboundPreview", dialog, "REJECT") == G.BAD_COMMAND
    v.do("alice", "AcceptOutboundPreview", dialog, "ACCEPT")
    assert v.dialog("alice")["state"] == "ACCEPTED"
    v.advance(1.1)
    assert v.state("alice") == "TALKING"
    v.do("alice", "ReleaseCall", dialog)
    for action, command in (("REJECT", "RejectOutboundPreview"), ("CLOSE", "CloseOutboundPreview")):
        offered = v.centre.preview.offer("alice", "5558888")
        v.do("alice", command, offered, action)
        assert v.centre.dialogs.by_id[offered].state == "DROPPED" and v.state("alice") == "READY"


def test_phonebooks_and_contacts_with_defaults():
    v = Voice()
    v.login("alice", ready=False)
    v.do("alice", "getphonebooks")
    books = v.last("alice", "PhoneBooks")["phonebooks"]
    assert books and books[0]["type"] == "GLOBAL"
    v.do("alice", "getcontacts", books[0]["id"])
    assert v.last("alice", "Contacts")["contacts"][0]["phoneNumber"]
    assert v.refused("alice", "getcontacts", "nope") == G.NOT_FOUND


def test_queue_calls_wait_for_a_ready_agent_longest_ready_first():
    v = Voice()
    v.login("alice", ready=False)
    v.login("bob", ready=False)
    call = v.centre.acd.inbound("sales", "5550004")
    assert v.centre.dialogs.by_id[call].state != "ALERTING"
    v.do("sue", "Connect", "desk-sue", "ps")
    v.do("bob", "MakeReady")
    v.now += 1
    v.do("alice", "MakeReady")
    assert v.state("bob") == "RESERVED" and v.state("alice") == "READY"
    with pytest.raises(G.CommandError):
        v.centre.acd.inbound("nope", "1")


def test_the_remaining_commands_and_their_refusals():
    v = Voice(phonebooks=[{"id": "t1", "name": "Sales book", "type": "TEAM", "team": "sales",
                           "contacts": [{"firstName": "A", "lastName": "B", "phoneNumber": "5550000",
                                         "description": ""}]}])
    v.do("alice", "Connect", "desk-alice", "pa")
    assert v.refused("alice", "MobileAgentLogin", "pa", "1001", "5551111", "maybe") == G.BAD_COMMAND
    v.do("alice", "MobileAgentLogin", "pa", "1001", "5551111", "true")
    v.do("alice", "MakeReady")
    call = v.centre.acd.inbound("sales", "5550005")
    v.do("alice", "AnswerCall", call)
    v.do("alice", "MakeWorkReady")  # during the call: wrap-up after it
    v.do("alice", "GetDialogParticipants", call)
    assert {p["mediaAddress"] for p in v.dialog("alice")["participants"]} == {"5550005", "1001"}
    v.do("alice", "ReleaseCall", call)
    assert v.state("alice") == "WORK_READY"
    v.do("alice", "MakeReady")  # wrap-up done
    assert v.state("alice") == "READY"
    assert v.refused("alice", "UpdateWrapUp", "d404", "20") == G.NOT_FOUND
    v.login("bob", ready=False)
    assert v.refused("bob", "ReleaseCall", call) == G.NOT_FOUND  # not bob's call
    v.login("sue", ready=False)
    second = v.centre.acd.inbound("sales", "5550006")
    v.do("alice", "AnswerCall", second)
    v.do("sue", "SilentMonitor", "1001")
    v.do("sue", "EndSilentMonitor", second)
    assert next(p for p in v.centre.dialogs.by_id[second].participants if p.address == "1009").state == "DROPPED"
    assert v.refused("sue", "EndSilentMonitor", second) == G.NOT_FOUND
    v.do("sue", "getteamphonebooks", "sales")
    assert v.last("sue", "PhoneBooks")["phonebooks"] == [{"id": "t1", "name": "Sales book", "type": "TEAM"}]
    v.do("alice", "MakeWorkNotReady")
    v.do("alice", "AbruptDisconnect")  # from any state: drops the call, logs out
    assert v.state("alice") == "LOGOUT" and v.centre.dialogs.by_id[second].state == "DROPPED"


from hypothesis import given, settings, strategies as st  # noqa: E402

names = st.sampled_from(sorted(G.COMMANDS) + ["Teleport", ""])
words = st.sampled_from(["alice", "bob", "sue", "1001", "1002", "1009", "d1", "d2", "d3", "pa", "5551234", "",
                         "true", "ACCEPT"])


def check_consistency(v: Voice) -> None:
    """An agent's state agrees with its calls."""
    for agent in v.centre.agents.by_id.values():
        parties = {p.state for d in v.centre.dialogs.by_id.values() if d.state not in ("DROPPED", "FAILED")
                   for p in d.participants if p.address == agent.extension and not p.silent
                   and p.state not in ("DROPPED", "FAILED")}
        state = agent.state
        if state == "TALKING":
            assert parties & {"ACTIVE", "INITIATED"}, (agent.agent_id, state, parties)
        elif state == "RESERVED":
            assert "ALERTING" in parties and not parties & {"ACTIVE", "INITIATED"}, (agent.agent_id, parties)
        elif state == "HOLD":
            assert parties == {"HELD"}, (agent.agent_id, parties)
        elif state in ("READY", "NOT_READY", "LOGOUT", "WORK", "WORK_READY"):
            assert not parties, (agent.agent_id, state, parties)
        if state in ("WORK", "WORK_READY"):
            assert agent.wrap_timer is not None and not agent.wrap_timer.cancelled, agent.agent_id


AGENT_NAMES = ["alice", "bob", "carol", "sue"]
TARGETS = st.sampled_from(["1001", "1002", "1003", "1009", "5551234", "42"])
DIALOGS = st.sampled_from([f"d{n}" for n in range(1, 7)])
AGENTS_ = st.sampled_from(AGENT_NAMES)
call_commands = st.one_of(
    st.tuples(st.sampled_from(["AnswerCall", "HoldCall", "RetrieveCall", "ReleaseCall", "EndSilentMonitor"]),
              AGENTS_, st.tuples(DIALOGS)),
    st.tuples(st.sampled_from(["ConsultCall", "TransferCall", "Conferencecall", "BlindTransfer"]), AGENTS_,
              st.tuples(TARGETS, DIALOGS)),
    st.tuples(st.sampled_from(["MakeReady", "MakeNotReady", "MakeWorkReady", "MakeWorkNotReady", "Logout",
                               "AbruptDisconnect"]), AGENTS_, st.just(())),
    st.tuples(st.sampled_from(["MakeCall", "SilentMonitor"]), AGENTS_, st.tuples(TARGETS)),
    st.tuples(st.just("BargeCall"), AGENTS_, st.tuples(TARGETS, DIALOGS)),
    st.tuples(st.just("DropParticipant"), AGENTS_, st.tuples(DIALOGS, TARGETS)),
    st.tuples(st.sampled_from(list(G.COMMANDS) + ["Teleport"]), st.sampled_from(AGENT_NAMES + ["", "x"]),
              st.lists(st.sampled_from(["", "pa", "1001", "d1", "true"]), max_size=4)),
    st.tuples(st.just("advance"), st.floats(0, 4), st.just(())),
    st.tuples(st.just("inbound"), st.just(""), st.just(())),
    st.tuples(st.just("relogin"), AGENTS_, st.just(())),
)


@settings(max_examples=300)
@given(st.lists(call_commands, min_size=20, max_size=60))
def test_any_command_sequence_keeps_agent_states_true_to_their_calls(commands):
    v = Voice(wrap_up=3)
    for who in AGENT_NAMES:
        v.login(who)
    v.centre.acd.inbound("sales", "5551234")
    for name, who, params in commands:
        if name == "advance":
            v.advance(who)
        elif name == "inbound":
            v.centre.acd.inbound("sales", "5550000")
        elif name == "relogin":
            if v.state(who) == "LOGOUT":
                v.login(who)
        else:
            try:
                v.centre.handle(G.parse([f"{name}#{who}".encode(), ",".join(params).encode()]))
            except G.CommandError as err:
                assert err.code in (G.BAD_COMMAND, G.NOT_FOUND, G.INVALID_STATE, G.AUTHORIZATION_FAILURE,
                                    G.USER_NOT_FOUND, G.GENERAL_ERROR, G.MISSING_PASSWORD, G.MISSING_EXTENSION,
                                    G.WRONG_EXTENSION, G.LICENSES_EXCEEDED)
        check_consistency(v)


# the simulated callers and the phones' Auto Answer (callers.py): a load run's voice side --------

def counts(placed: int, answered: int, ended: int, dropped: int, refused: int = 0) -> dict[str, int]:
    """A voice queue's counts of its callers' calls (callers.py)."""
    return {"calls_placed": placed, "calls_answered": answered, "calls_ended": ended, "calls_dropped": dropped,
            "calls_refused": refused}


def test_a_phone_with_auto_answer_answers_itself_and_the_caller_hangs_up_after_talking():
    v = Voice(queues={"sales": {"talk": "fixed:5"}}, auto_answer="fixed:1")
    callers = v.centre.callers
    v.login("alice")
    call = callers.place("sales", "5550001")
    assert v.state("alice") == "RESERVED"
    v.advance(0.9)
    assert v.state("alice") == "RESERVED" and callers.counts["sales"]["calls_answered"] == 0
    v.advance(0.2)   # rang 1 s: answered, as AnswerCall would
    assert v.state("alice") == "TALKING" and v.party("alice", "1001")["state"] == "ACTIVE"
    assert callers.counts["sales"] == counts(1, 1, 0, 0)
    assert callers.live() == 1
    v.advance(4.8)
    assert v.state("alice") == "TALKING"
    v.advance(0.3)   # talked 5 s: the caller hangs up, the dialog ends, alice is READY for the next
    assert v.centre.dialogs.by_id[call].state == "DROPPED" and v.party("alice", "5550001")["state"] == "DROPPED"
    assert v.state("alice") == "READY"
    assert callers.counts["sales"] == counts(1, 1, 1, 0)
    assert callers.live() == 0


def test_without_auto_answer_the_agent_answers_and_a_caller_without_talk_stays_until_released():
    v = Voice(queues={"sales": {"talk": "fixed:2"}})
    callers = v.centre.callers
    v.login("alice")
    call = callers.place("sales", "5550001")
    v.advance(60)
    assert v.state("alice") == "RESERVED"   # nothing answers but her client
    v.do("alice", "AnswerCall", call)
    assert callers.counts["sales"]["calls_answered"] == 1
    v.do("alice", "ReleaseCall", call)      # she releases first: the caller's hang-up finds nothing to end
    v.advance(3)
    assert callers.counts["sales"] == counts(1, 1, 0, 1)
    callers.configure({"queues": {"sales": {"talk": None}}, "auto_answer": "fixed:0"})
    second = callers.place("sales", "5550002")
    v.advance(600)
    assert v.state("alice") == "TALKING" and callers.counts["sales"]["calls_answered"] == 2 and callers.live() == 1
    v.do("alice", "ReleaseCall", second)
    assert callers.live() == 0 and callers.counts["sales"]["calls_ended"] == 0


def test_a_calls_ring_and_talk_are_those_of_when_it_was_placed_whatever_the_settings_say_later():
    # a load run on a running GC gives it its own settings back (often no talk, no auto
    # answer) with calls of the load still waiting or talking: they end as the load said
    v = Voice(queues={"sales": {"talk": "fixed:5"}}, auto_answer="fixed:1")
    callers = v.centre.callers
    v.login("alice")
    first, second, third = (callers.place("sales", f"555000{n}") for n in (1, 2, 3))   # two wait for alice
    v.advance(1.1)
    assert v.state("alice") == "TALKING"
    callers.configure({"queues": {"sales": {"talk": None}}, "auto_answer": None})
    v.advance(5)      # first: talked 5 s and hung up (t=6); second rings alice
    assert v.centre.dialogs.by_id[first].state == "DROPPED" and v.state("alice") == "RESERVED"
    v.advance(1)      # and her phone answers it by itself after its 1 s
    assert v.state("alice") == "TALKING" and callers.counts["sales"]["calls_answered"] == 2
    v.advance(12)     # second: talked its 5 s (t=12); third rang, was answered (13), talked (18)
    assert all(v.centre.dialogs.by_id[d].state == "DROPPED" for d in (first, second, third))
    assert v.state("alice") == "READY" and callers.counts["sales"]["calls_ended"] == 3 and callers.live() == 0
    fourth = callers.place("sales", "5550004")   # placed after: the settings of now, nothing answers it
    v.advance(60)
    assert v.state("alice") == "RESERVED" and v.centre.dialogs.by_id[fourth].state == "ALERTING"


def test_every_call_placed_is_counted_once_by_its_queue_ended_by_its_caller_dropped_or_live():
    v = Voice(queues={"sales": {"talk": "fixed:5"}, "support": {"talk": "fixed:5"}}, auto_answer="fixed:1")
    callers = v.centre.callers
    v.login("alice")
    v.login("bob")
    v.login("carol")
    talked, released, logged_out = (callers.place(q, "") for q in ("sales", "sales", "support"))
    waiting = callers.place("sales", "")   # no agent left: it waits
    v.advance(2)
    v.do("bob", "ReleaseCall", released)   # the agent ends it: dropped, not ended by its caller
    v.do("carol", "AbruptDisconnect")      # a logout ends carol's call (leave_all): dropped too
    v.advance(4.5)                         # talked: its caller hung up; bob then took the waiting call
    assert [v.centre.dialogs.by_id[d].state for d in (talked, released, logged_out)] == ["DROPPED"] * 3
    assert v.centre.dialogs.by_id[waiting].state == "ACTIVE"
    stats = callers.stats()
    assert stats["sales"] == {**counts(3, 3, 1, 1), "calls_live": 1, "calls_waiting": 0}
    assert stats["support"] == {**counts(1, 1, 0, 1), "calls_live": 0, "calls_waiting": 0}
    for queue in stats.values():   # they add up, on each queue
        assert queue["calls_placed"] == queue["calls_ended"] + queue["calls_dropped"] + queue["calls_live"]
    v.advance(400)   # every dialog ended and forgotten: nothing of ours is kept
    assert callers.placed == {} and v.centre.dialogs.by_id == {}
    assert callers.stats()["sales"]["calls_ended"] == 2 and callers.live("sales") == callers.live() == 0


def test_a_queue_holds_max_waiting_calls_and_refuses_and_counts_those_past_it():
    v = Voice(queues={"sales": {"rate": 50, "talk": "fixed:1"}, "support": {"talk": "fixed:1"}},
              auto_answer="fixed:0.5", max_waiting=3)
    callers, dialogs = v.centre.callers, v.centre.dialogs
    v.login("alice", ready=False)
    callers.start()
    v.advance(10)   # about 500 arrivals, no agent ready: 3 wait, the rest are refused
    sales = callers.stats()["sales"]
    assert sales["calls_waiting"] == sales["calls_live"] == 3 and sales["calls_refused"] == sales["calls_placed"] - 3
    assert sales["calls_placed"] > 300 and len(dialogs.by_id) == 3   # refused calls leave no dialog behind
    with pytest.raises(G.CommandError) as refused:   # the control verb `call` hears it
        callers.place("sales", "5550001")
    assert "is full: 3 calls wait" in refused.value.message and callers.stats()["sales"]["calls_refused"] == \
        sales["calls_refused"] + 1
    callers.place("support", "5550002")               # another queue's room is its own
    assert callers.stats()["support"]["calls_waiting"] == 1
    callers.configure({"queues": {"sales": {"rate": 0}}})
    v.do("alice", "MakeReady")
    v.advance(60)   # alice answers every call waiting, one after another; each caller hangs up after 1 s
    for queue in callers.stats().values():
        assert queue["calls_live"] == queue["calls_waiting"] == 0
        assert queue["calls_placed"] == queue["calls_ended"] + queue["calls_dropped"] + queue["calls_refused"]
    assert callers.stats()["sales"]["calls_ended"] == 3 and dialogs.at == {}   # nobody is on a call


def test_a_queues_rate_places_poisson_arrivals_and_a_new_rate_restarts_them():
    v = Voice(queues={"sales": {"rate": 2}})
    callers = v.centre.callers
    callers.start()
    v.advance(200)
    # 400 expected, Poisson: the standard deviation 20; the draws are seeded (Voice), so the count
    # is the same on every run, and these bounds (4 standard deviations) check the rate
    assert 320 <= callers.counts["sales"]["calls_placed"] <= 480
    assert callers.configure({"queues": {"sales": {"rate": 0}}})["queues"]["sales"]["rate"] == 0.0
    placed = callers.counts["sales"]["calls_placed"]
    v.advance(100)
    assert callers.counts["sales"]["calls_placed"] == placed   # 0 stops them: the old timer is cancelled
    callers.configure({"queues": {"sales": {"rate": 10}}})
    callers.configure({"queues": {"sales": {"rate": 10}}})   # the same rate again: one stream, not two
    v.advance(100)
    assert 800 <= callers.counts["sales"]["calls_placed"] - placed <= 1200


def test_the_gc_load_verb_answers_its_settings_and_refuses_a_bad_one_naming_it_changing_nothing():
    from actors.gc.callers import SettingError
    v = Voice(queues={"sales": {"rate": 0, "talk": "exp:20"}})
    callers = v.centre.callers
    before = callers.configure({})
    assert before == {"queues": {"sales": {"rate": 0.0, "talk": "exp:20"}}, "auto_answer": None}
    assert callers.configure({"queues": {"sales": {"rate": 3}}, "auto_answer": "fixed:1"}) == \
        {"queues": {"sales": {"rate": 3.0, "talk": "exp:20"}}, "auto_answer": "fixed:1"}
    for body, key in (({"queues": {"sales": {"rate": -1}}}, "queues.sales.rate"),
                      ({"queues": {"sales": {"rate": True}}}, "queues.sales.rate"),
                      ({"queues": {"sales": {"rate": 1000.5}}}, "queues.sales.rate"),
                      ({"queues": {"sales": {"talk": "gamma:2"}}}, "queues.sales.talk"),
                      ({"queues": {"sales": {"patience": 2}}}, "queues.sales.patience"),
                      ({"queues": {"billing": {"rate": 1}}}, "queues.billing"),
                      ({"queues": [1]}, "queues"), ({"queues": {"sales": 3}}, "queues.sales"),
                      ({"queues": {"sales": {"rate": 0}}, "auto_answer": "uniform:3,1"}, "auto_answer"),
                      ({"rate": 2}, "rate")):
        with pytest.raises(SettingError) as caught:
            callers.configure(body)
        assert caught.value.key == key, (body, caught.value)
    assert callers.configure({}) == {"queues": {"sales": {"rate": 3.0, "talk": "exp:20"}}, "auto_answer": "fixed:1"}
    assert callers.configure(before) == before   # what a load run gives back


@pytest.mark.parametrize("gc, key, why", [
    ({"queues": {"sales": {"rate": -1}}}, "actors.gc.queues.sales.rate", "number >= 0"),
    ({"queues": {"sales": {"rate": 1001}}}, "actors.gc.queues.sales.rate", "at most 1000 calls a second"),
    ({"max_waiting": 0}, "actors.gc.max_waiting", "integer >= 1"),
    ({"queues": {"sales": {"talk": "exp:x"}}}, "actors.gc.queues.sales.talk", "not a number"),
    ({"queues": {"sales": {"rate": 1, "ring": 2}}}, "actors.gc.queues.sales.ring", "unknown key"),
    ({"queues": {"sales": "fast"}}, "actors.gc.queues.sales", "must be a mapping"),
    ({"queues": ["sales"]}, "actors.gc.queues", "must be a mapping"),
    ({"auto_answer": "gamma:2"}, "actors.gc.auto_answer", "not a distribution"),
    ({"auto_ansewr": 1}, "actors.gc.auto_ansewr", "unknown key"),
])
def test_a_bad_gc_setting_is_refused_naming_the_key(tmp_path, gc, key, why):
    import yaml

    from launch.topology import TopologyError, load
    spec = {"name": "t", "mrds": {"chat": {"max_tasks": 1}}, "agents": [{"id": "a", "password": "p"}],
            "actors": {"comm": {"role": "comm"}, "gc": {"role": "gc", **gc}}}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(TopologyError) as caught:
        load(tmp_path / "t.yaml")
    assert caught.value.key == key and why in caught.value.reason


def test_good_gc_settings_are_normalised():
    from wire.kernel.settings import validate
    settings = validate("gc", {"queues": {"sales": {"rate": 1, "talk": 20}, "support": None}, "auto_answer": 1},
                        lambda key, reason: ValueError(key, reason))
    assert settings.queues == {"sales": {"rate": 1.0, "talk": "fixed:20"}, "support": {"rate": 0.0, "talk": None}}
    assert settings.auto_answer == "fixed:1"
