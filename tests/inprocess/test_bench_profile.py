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


def event(at, queue, type, state=None):
    return {"at": at, "queue": queue, "type": type, "agent": None, "state": state, "code": None}


def test_a_routes_legs_run_from_comms_task_to_the_offer_read_and_a_leg_missing_an_end_is_left_out():
    from launch.bench.legs import summary, task_legs
    traced = {
        "comm.1": [event(10.000100, "General", "Task", "QUEUED"),
                   event(10.000400, "CommunicationServer", "TaskAgentSelected"),
                   event(10.002000, "General", "TaskState", "ACTIVE")],
        "mre.1": [event(10.000200, "RoutingEngine", "NewTask")],
        "chat.2": [event(10.000300, "ChatEvents", "TaskState", "QUEUED")],
        # the offer reaches both the desk's server and the creator's: the first read ends the leg
        "chat.1": [event(10.000700, "ChatEvents", "TaskAgentSelected")],
        "chat.3": [event(10.000650, "ChatEvents", "TaskAgentSelected")],
    }
    legs = task_legs(traced)
    assert {leg: round(s * 1e6) for leg, s in legs.items()} == {
        "comm_task->mre_newtask": 100, "mre_newtask->comm_decision": 200,
        "comm_decision->chat_offer": 250, "comm_task->chat_queued": 200}
    # the MRE forgot it (its trace memory moved on): only the legs with both ends
    partial = task_legs({**traced, "mre.1": []})
    assert set(partial) == {"comm_decision->chat_offer", "comm_task->chat_queued"}
    stats = summary([legs, partial, legs])
    assert stats["comm_task->mre_newtask"] == {"tasks": 2, "p50_us": 100, "p99_us": 100}
    assert stats["comm_decision->chat_offer"]["tasks"] == 3
