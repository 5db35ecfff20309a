"""The supervisor's pieces that are pure logic, without processes: the restart policy
(backoff, FATAL after a crash loop), liveness (pings missed -> UNRESPONSIVE -> kill), the
table a process's state moves by, and the controller's promise that every request is
answered, even when a verb has a bug."""

from __future__ import annotations

from typing import Any

import pytest

from launch.process import states
from launch.process.liveness import FINE, KILL, SILENT, Liveness
from launch.supervisor.controller import CommandError, Controller, Request
from launch.supervisor.flapping import Flapping


def test_quick_failures_back_off_doubling_to_the_cap_then_fatal():
    policy = Flapping(started_after=1.0, first=0.1, cap=0.5, max_quick_failures=5)
    delays = [policy.exited(ran=0.2, was_started=False) for _ in range(4)]
    assert [v.fatal for v in delays] == [False] * 4
    assert [v.delay for v in delays] == [0.1, 0.2, 0.4, 0.5]
    assert policy.exited(ran=0.2, was_started=False).fatal


def test_a_process_that_ran_long_enough_starts_a_fresh_budget():
    policy = Flapping(started_after=1.0, first=0.1, cap=5.0, max_quick_failures=3)
    policy.exited(ran=0.1, was_started=False)
    policy.exited(ran=0.1, was_started=False)
    verdict = policy.exited(ran=30.0, was_started=True)  # it crashed, but after a good run
    assert not verdict.fatal and verdict.delay == 0.1 and policy.quick_failures == 0


def test_a_process_that_reported_ready_but_died_at_once_is_a_quick_failure():
    policy = Flapping(started_after=1.0, max_quick_failures=2)
    assert not policy.exited(ran=0.5, was_started=True).fatal
    assert policy.exited(ran=0.5, was_started=True).fatal


def test_an_operators_start_resets_the_budget():
    policy = Flapping(max_quick_failures=2)
    policy.exited(ran=0.0, was_started=False)
    policy.reset()
    assert not policy.exited(ran=0.0, was_started=False).fatal


def test_an_actor_that_answers_stays_fine():
    live = Liveness(misses=3, grace=10.0)
    for now in range(100):
        assert live.tick(float(now)) == FINE
        live.answered()
    assert not live.unresponsive


def test_missed_pings_make_it_silent_once_then_killed_after_the_grace():
    live = Liveness(misses=3, grace=2.0)
    assert live.tick(0.0) == FINE            # READY counted as an answer
    assert live.tick(1.0) == FINE            # 1 missed
    assert live.tick(2.0) == FINE            # 2 missed
    assert live.tick(3.0) == SILENT          # 3 missed: UNRESPONSIVE
    assert live.unresponsive
    assert live.tick(4.0) == FINE            # within the grace
    assert live.tick(5.0) == KILL


def test_an_answer_ends_the_silence_and_the_count():
    live = Liveness(misses=2, grace=5.0)
    live.tick(0.0)
    live.tick(1.0)
    assert live.tick(2.0) == SILENT
    assert live.answered() is True           # RUNNING again: say so
    assert live.answered() is False          # nothing more to say
    assert live.tick(3.0) == FINE
    assert live.tick(4.0) == FINE            # one miss of two allowed
    assert live.tick(5.0) == SILENT          # the count started again from zero
    assert live.tick(9.0) == FINE and live.tick(10.0) == KILL  # and so did the grace


def test_a_process_state_moves_only_as_the_table_says():
    assert set(states.PROCESS_MOVES) == set(states.PROCESS_STATES)
    assert all(targets <= set(states.PROCESS_STATES) for targets in states.PROCESS_MOVES.values())
    states.check_move("chat.1", states.STARTING, states.RUNNING)
    states.check_move("comm.1", states.DEGRADED, states.DEGRADED)     # another reason to serve in part
    for current, target in ((states.STOPPED, states.RUNNING),         # never without a start
                            (states.FATAL, states.RUNNING),
                            (states.STOPPING, states.RUNNING),         # asked to stop: it does not come back
                            (states.EXITED, states.STARTING),          # what follows an exit is decided first
                            (states.RUNNING, states.RUNNING)):
        assert not states.move_allowed(current, target)
        with pytest.raises(states.IllegalMove, match=f"chat.2: {current} -> {target} is not a move"):
            states.check_move("chat.2", current, target)


def test_an_illegal_move_is_refused_and_leaves_the_state_as_it_was():
    from launch.process.record import Process
    from launch.process.runner import ProcessRunner
    told: list[str] = []
    runner = ProcessRunner.__new__(ProcessRunner)   # no loop, no channel, no process: the check alone
    runner.moved, runner.illegal_moves = lambda process: told.append(process.state), 0
    process = Process("mre.1", "mre", state=states.STOPPING, reason="SIGTERM")
    # refused and counted, not raised: raised in the supervisor's loop it would end the loop
    assert not runner.move(process, states.RUNNING, "answering again")
    assert (process.state, process.reason, told, runner.illegal_moves) == (states.STOPPING, "SIGTERM", [], 1)
    assert runner.move(process, states.STOPPED)
    assert told == [states.STOPPED] and runner.illegal_moves == 1


def dispatch(controller: Controller, verb: str, body: dict[str, Any] | None = None) -> list[tuple[bool, Any]]:
    answers: list[tuple[bool, Any]] = []
    controller.dispatch(verb, body or {}, Request(verb, lambda ok, answer: answers.append((ok, answer))))
    return answers


@pytest.fixture
def controller() -> Controller:
    bare = Controller.__new__(Controller)  # no arbiter, no socket: dispatch alone
    bare.verbs = {}
    return bare


def test_a_bug_in_a_verb_is_answered_as_an_error_not_raised(controller):
    controller.verbs["broken"] = lambda body, request: {}["missing"]
    [(ok, answer)] = dispatch(controller, "broken")
    assert not ok and "KeyError" in answer["reason"] and "'broken'" in answer["reason"]


def test_a_refused_request_and_an_unknown_verb_are_answered(controller):
    def refuse(body, request):
        raise CommandError("no actor named 'x'")
    controller.verbs["refuse"] = refuse
    assert dispatch(controller, "refuse") == [(False, {"reason": "no actor named 'x'"})]
    [(ok, answer)] = dispatch(controller, "teleport")
    assert not ok and "unknown verb 'teleport'" in answer["reason"]


def test_a_bug_in_a_later_callback_is_answered_and_a_request_is_answered_once(controller):
    later = []

    def waits(body, request):
        later.append(request.guard(lambda: 1 / 0))
    controller.verbs["waits"] = waits
    answers = dispatch(controller, "waits")
    assert answers == []
    later[0]()
    assert len(answers) == 1 and "ZeroDivisionError" in answers[0][1]["reason"]

    def answers_then_fails(body, request):
        request.reply(True, {"fine": 1})
        raise RuntimeError("after the answer")
    controller.verbs["twice"] = answers_then_fails
    assert dispatch(controller, "twice") == [(True, {"fine": 1})]


def test_an_unresponsive_actor_is_not_up_in_the_metrics():
    from launch.metrics import TopologyCollector
    actors = [{"name": n, "role": r, "state": s, "restarts": 0, "pid": 1, "uptime": 1.0, "exit_status": None}
              for n, r, s in (("comm.1", "comm", "UNRESPONSIVE"), ("mre.1", "mre", "RUNNING"))]
    up = next(m for m in TopologyCollector(lambda: (actors, {})).collect() if m.name == "mroute_actor_up")
    assert {s.labels["actor"]: s.value for s in up.samples} == {"comm.1": 0.0, "mre.1": 1.0}
