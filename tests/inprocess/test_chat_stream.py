"""Following Comm's numbered stream (wire/stream.py): in order, gaps, new streams."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from wire.stream import FIRST, GAP, IN_ORDER, NEW_STREAM, REWOUND, UNNUMBERED, StreamFollower


def msg(seq, stream="s1"):
    return {"Seq": seq, "Stream": stream}


def kinds(follower, bodies, line=""):
    return [follower.observe(body, line).kind for body in bodies]


def test_messages_in_order_are_neither_gaps_nor_missed():
    follower = StreamFollower()
    assert kinds(follower, [msg(n) for n in range(1, 6)]) == [FIRST] + [IN_ORDER] * 4
    assert follower.counts() == {"gaps": 0, "missed": 0, "streams": 0}


def test_the_first_message_sets_the_place_whatever_its_seq():
    # a subscriber that joins late starts where it joins: what came before was not for it
    follower = StreamFollower()
    assert kinds(follower, [msg(41), msg(42)]) == [FIRST, IN_ORDER]
    assert follower.missed == 0


def test_a_gap_says_how_many_messages_were_lost():
    follower = StreamFollower()
    follower.observe(msg(1))
    seen = follower.observe(msg(5))
    assert seen.kind == GAP and seen.missed == 3 and seen.lost_track
    assert follower.observe(msg(6)).kind == IN_ORDER
    seen = follower.observe(msg(8))
    assert seen.kind == GAP and seen.missed == 1
    assert follower.counts() == {"gaps": 2, "missed": 4, "streams": 0}


def test_a_new_stream_is_a_new_comm_process_not_missed_messages():
    follower = StreamFollower()
    kinds(follower, [msg(1), msg(2)])
    seen = follower.observe(msg(7, "s2"))
    assert seen.kind == NEW_STREAM and seen.lost_track and seen.missed == 0
    assert kinds(follower, [msg(8, "s2"), msg(10, "s2")]) == [IN_ORDER, GAP]
    assert follower.counts() == {"gaps": 1, "missed": 1, "streams": 1}


def test_a_numbering_that_goes_back_in_the_same_stream_is_a_gap_of_unknown_size():
    # Comm forgets a destination's numbering when it holds too many: it starts again at 1
    follower = StreamFollower()
    kinds(follower, [msg(1), msg(2), msg(3)])
    seen = follower.observe(msg(1))
    assert seen.kind == REWOUND and seen.lost_track and seen.missed == 0
    assert follower.observe(msg(2)).kind == IN_ORDER
    assert follower.observe(msg(2)).kind == REWOUND  # a repeat is not in order either
    assert follower.counts() == {"gaps": 2, "missed": 0, "streams": 0}


def test_messages_without_a_usable_number_say_nothing_and_change_nothing():
    follower = StreamFollower()
    follower.observe(msg(1))
    for body in ({}, {"Seq": 2}, {"Stream": "s1"}, {"Seq": "2", "Stream": "s1"}, {"Seq": True, "Stream": "s1"},
                 {"Seq": -1, "Stream": "s1"}, {"Seq": 2.0, "Stream": "s1"}, {"Seq": 2, "Stream": None},
                 {"Seq": 2, "Stream": ["s1"]}, {"Seq": 2, "Stream": False}):
        seen = follower.observe(body)
        assert seen.kind == UNNUMBERED and not seen.lost_track
    assert follower.observe(msg(2)).kind == IN_ORDER
    assert follower.counts() == {"gaps": 0, "missed": 0, "streams": 0}


def test_a_beat_names_the_stream_and_a_new_one_starts_every_line_afresh():
    # Comm's heartbeat carries its Stream, no Seq: an idle desk learns at once of a new process
    follower = StreamFollower()
    assert follower.observe(msg(10), "desk").kind == FIRST
    assert follower.observe({"Stream": "s1"}, "beat").kind == UNNUMBERED  # the same Comm: nothing lost
    assert follower.observe(msg(11), "desk").kind == IN_ORDER
    seen = follower.observe({"Stream": "s2"}, "beat")
    assert seen.kind == NEW_STREAM and seen.lost_track
    assert follower.observe(msg(1, "s2"), "desk").kind == FIRST
    assert follower.observe(msg(3, "s2"), "desk").kind == GAP
    assert follower.counts() == {"gaps": 1, "missed": 1, "streams": 1}


def test_each_line_is_numbered_on_its_own_under_one_stream():
    follower = StreamFollower()
    assert follower.observe(msg(10), "desk").kind == FIRST
    assert follower.observe(msg(500), "other").kind == FIRST
    assert follower.observe(msg(11), "desk").kind == IN_ORDER
    assert follower.observe(msg(502), "other").kind == GAP
    assert follower.counts() == {"gaps": 1, "missed": 1, "streams": 0}


def test_counting_afresh_keeps_the_place_in_the_stream():
    follower = StreamFollower()
    kinds(follower, [msg(1), msg(3)])
    follower.count_afresh()
    assert follower.counts() == {"gaps": 0, "missed": 0, "streams": 0}
    assert follower.observe(msg(4)).kind == IN_ORDER  # not FIRST: it still knows where it is


def test_a_stream_may_be_named_by_a_number():
    follower = StreamFollower()
    assert kinds(follower, [msg(1, 7), msg(2, 7), msg(1, 8)]) == [FIRST, IN_ORDER, NEW_STREAM]


# properties ------------------------------------------------------------------------------

delivery = st.lists(st.booleans(), min_size=1, max_size=300)


@settings(max_examples=300)
@given(delivery)
def test_missed_is_exactly_what_was_dropped_between_the_first_and_last_delivered(delivered):
    follower = StreamFollower()
    seen = [follower.observe(msg(n)) for n, kept in enumerate(delivered, start=1) if kept]
    positions = [n for n, kept in enumerate(delivered, start=1) if kept]
    if not positions:
        assert follower.counts() == {"gaps": 0, "missed": 0, "streams": 0}
        return
    first, last = positions[0], positions[-1]
    dropped_inside = sum(1 for n in range(first, last + 1) if not delivered[n - 1])
    assert follower.missed == dropped_inside
    assert sum(s.missed for s in seen) == dropped_inside
    # a gap for each run of drops between two delivered messages
    runs = sum(1 for a, b in zip(positions, positions[1:]) if b > a + 1)
    assert follower.gaps == runs == sum(s.kind == GAP for s in seen)
    assert follower.streams == 0
    assert seen[0].kind == FIRST and all(s.kind in (IN_ORDER, GAP) for s in seen[1:])


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["desk", "beat"]), st.booleans()), max_size=300))
def test_lines_interleaved_count_their_own_drops(sends):
    """Messages to two lines, interleaved and each numbered on its own; some dropped."""
    follower = StreamFollower()
    numbers = {"desk": 0, "beat": 0}
    delivered: dict[str, list[int]] = {"desk": [], "beat": []}
    for line, kept in sends:
        numbers[line] += 1
        if kept:
            follower.observe(msg(numbers[line]), line)
            delivered[line].append(numbers[line])
    expected = sum((got[-1] - got[0] + 1) - len(got) for got in delivered.values() if got)
    assert follower.missed == expected
    assert follower.streams == 0


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(1, 4), delivery), min_size=1, max_size=6))
def test_over_several_streams_only_drops_within_a_stream_are_missed(segments):
    """Comm restarts: each segment is one process's stream, numbered from 1; a stream
    whose messages were all dropped is never heard."""
    follower = StreamFollower()
    expected_missed, heard = 0, []
    for stream, (name, delivered) in enumerate(segments):
        stream_id = f"{name}-{stream}"
        positions = [n for n, kept in enumerate(delivered, start=1) if kept]
        for n in positions:
            follower.observe(msg(n, stream_id))
        if positions:
            expected_missed += (positions[-1] - positions[0] + 1) - len(positions)
            heard.append(stream_id)
    assert follower.missed == expected_missed
    changes = sum(1 for a, b in zip(heard, heard[1:]) if a != b)
    assert follower.streams == changes


# cheap to draw: what matters is the kind of each value (a number where a string belongs),
# not how big or how deep it is
json_values = st.recursive(st.none() | st.booleans() | st.integers(-3, 2**40) | st.floats(allow_nan=False)
                           | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner,
                                                                                         max_size=2),
                           max_leaves=4)


@settings(max_examples=300)
@given(st.lists(st.dictionaries(st.sampled_from(["Seq", "Stream", "MsgId"]), json_values), max_size=30))
def test_any_body_is_observed_without_error_and_counts_never_go_negative(bodies):
    follower = StreamFollower()
    for body in bodies:
        seen = follower.observe(body)
        assert seen.missed >= 0
    assert min(follower.counts().values()) >= 0
