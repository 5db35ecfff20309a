"""`mroute chaos`: what it counts across Chat Servers it restarted. The kills under load:
tests/processes/test_chaos.py."""

from __future__ import annotations

from launch.load.chaos import StreamTally


def stats(gaps, missed, received, resyncs=0, streams=0):
    return {"gaps": gaps, "missed": missed, "resyncs": resyncs, "streams": streams,
            "counters": {"received": received}}


def test_the_stream_tally_counts_across_restarted_chat_servers():
    tally = StreamTally(["chat.1", "chat.2"])
    tally.note({"chat.1": stats(1, 4, 100), "chat.2": stats(0, 0, 50)})
    tally.note({"chat.1": stats(2, 5, 200, streams=1), "chat.2": {"error": {"reason": "did not answer"}}})
    # chat.2 was killed and counts again from zero; chat.1 goes on
    tally.note({"chat.1": stats(2, 5, 300, streams=1), "chat.2": stats(1, 3, 10)})
    assert tally.totals() == {"gaps": 3, "missed": 8, "resyncs": 0, "streams": 1}
    # a restart seen only in the messages received (its figures already back where they were)
    tally.note({"chat.1": stats(2, 5, 5, streams=1), "chat.2": stats(1, 3, 20)})
    assert tally.totals() == {"gaps": 5, "missed": 13, "resyncs": 0, "streams": 2}
