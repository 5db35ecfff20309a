"""Client-side throttling of new Tasks (wire/throttle.py; issue 28's overload target): what a
client sends while Comm refuses, and that it stops refusing when Comm takes again. Comm is
modelled as a room for `room` Tasks emptied at `capacity` a second, refusing OVERLOADED
what finds it full (comm.max_waiting, or the door's admission budget)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from wire.throttle import Throttle


class Comm:
    def __init__(self, capacity: float, room: float):
        self.capacity, self.room = capacity, room
        self.held, self.at = 0.0, 0.0

    def take(self, now: float) -> bool:
        self.held = max(0.0, self.held - (now - self.at) * self.capacity)
        self.at = now
        if self.held + 1 > self.room:
            return False
        self.held += 1
        return True


def offer(throttle: Throttle, comm: Comm, start: float, seconds: float, offered: float,
          rng: random.Random) -> tuple[int, int]:
    """Customers at `offered` a second (Poisson) for `seconds`: (sent to Comm, taken)."""
    sent = taken = 0
    now = start
    while (now := now + rng.expovariate(offered)) < start + seconds:
        if throttle.allow(now):
            sent += 1
            took = comm.take(now)
            taken += took
            throttle.answered(now, overloaded=not took)
    return sent, taken


def test_nothing_is_refused_while_comm_takes_everything():
    throttle, rng = Throttle(1.1, rand=random.Random(1).random), random.Random(1)
    sent, taken = offer(throttle, Comm(1000, 100), 0.0, 30.0, 500, rng)
    assert sent == taken and sent > 14_000 and throttle.refused == 0


@pytest.mark.parametrize("k", [1.1, 1.5, 2.0])
def test_under_overload_comm_takes_all_it_can_and_sees_about_k_times_that(k):
    throttle, rng = Throttle(k, rand=random.Random(2).random), random.Random(2)
    comm = Comm(500, room=100)   # a fifth of a second of what it completes
    offer(throttle, comm, 0.0, 10.0, 2000, rng)      # let it settle
    sent, taken = offer(throttle, comm, 10.0, 20.0, 2000, rng)
    assert taken == pytest.approx(500 * 20, rel=0.02)
    # without it Comm would have been sent 40,000 and refused 30,000
    assert sent / taken == pytest.approx(k, rel=0.05)


def test_once_comm_takes_again_a_window_without_its_refusal_opens_the_way():
    throttle, rng = Throttle(1.1, window=2.0, rand=random.Random(3).random), random.Random(3)
    comm = Comm(200, room=50)
    offer(throttle, comm, 0.0, 10.0, 2000, rng)
    assert throttle.refusal_chance(10.0) > 0.8
    comm.capacity = 5000   # Comm can take everything again
    offer(throttle, comm, 10.0, 2.0 + 0.25, 2000, rng)   # a window and a bucket
    assert throttle.refusal_chance(12.25) == 0.0
    sent, taken = offer(throttle, comm, 12.25, 1.0, 2000, rng)
    assert sent == taken and throttle.refusal_chance(13.25) == 0.0


def test_the_rule_alone_would_keep_refusing_after_the_overload():
    """Why a window without Comm's refusal opens the way (the module's first departure from
    the book): counted as requests, the client's own refusals hold the probability up."""
    throttle = Throttle(1.1, window=2.0, rand=random.Random(4).random)
    rng, comm = random.Random(4), Comm(200, room=50)
    offer(throttle, comm, 0.0, 10.0, 2000, rng)
    comm.capacity = 5000
    offer(throttle, comm, 10.0, 2.25, 2000, rng)
    requests, accepts = throttle.requests, throttle.accepts
    assert throttle.refusals == 0 and (requests - 1.1 * accepts) / (requests + 1) > 0.5


def test_a_room_for_one_task_starves_comm_at_a_k_near_one():
    """The module's second note, measured on the model: a surplus of a tenth does not fill
    a room that bursts overflow."""
    throttle, rng = Throttle(1.1, rand=random.Random(5).random), random.Random(5)
    comm = Comm(500, room=1)
    offer(throttle, comm, 0.0, 10.0, 2000, rng)
    _, taken = offer(throttle, comm, 10.0, 20.0, 2000, rng)
    assert taken < 0.3 * 500 * 20


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 0.5), st.sampled_from(["took", "refused", "unanswered"])), max_size=300),
       st.floats(1, 3))
def test_the_counts_are_those_of_the_window(events, k):
    """Whatever happens, the counts held are exactly those of the buckets kept, and the
    chance is a probability."""
    throttle = Throttle(k, window=2.0, rand=random.Random(6).random)
    now = 0.0
    for gap, answer in events:
        now += gap
        throttle.allow(now)
        if answer != "unanswered":
            throttle.answered(now, overloaded=answer == "refused")
        assert 0.0 <= throttle.refusal_chance(now) < 1.0
        assert throttle.requests == sum(b[1] for b in throttle.buckets)
        assert throttle.accepts == sum(b[2] for b in throttle.buckets)
        assert throttle.refusals == sum(b[3] for b in throttle.buckets)
        assert all(b[0] > now - 2.0 for b in throttle.buckets)


def test_k_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        Throttle(0.9)
