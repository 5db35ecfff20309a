"""`mroute bench profile` splits each process's samples into the parts of the budget
(issue 28) by the innermost frame of a known kind."""

from __future__ import annotations

from launch.bench.profile import split


def test_each_stack_counts_to_its_innermost_known_frame_and_a_torn_frame_is_read_whole(tmp_path):
    folded = tmp_path / "comm.1.txt"
    folded.write_text(
        "main (actors/__main__.py:128);Turn.end (actors/comm/turn.py:126);Storage.write (storage.py:58);"
        "Journal.save (journal.py:307) 7\n"
        "main (actors/__main__.py:128);Turn.request (turn.py:82);CommCore.request (core.py:143) 3\n"
        # a request whose answer is sent: the send is the innermost part, not the handling
        "main (actors/__main__.py:128);Turn.request (turn.py:82);Sender.flush (sending.py:63);"
        "send_frames (frames.py:58) 2\n"
        "main (actors/__main__.py:128);Loop._run (loop.py:146);Poller.poll (poll.py:106) 5\n"
        # a frame read while it changed (py-spy --nonblocking): a line break inside it
        "main (actors/__main__.py:128);\uffff (\n:1513452120);send_frames (frames.py:58) 1\n"
        "main (actors/__main__.py:128);Loop._run (loop.py:120) 4\n")
    assert split(folded) == {"journal": 7, "handle": 3, "send": 3, "poll": 5, "other": 4}
