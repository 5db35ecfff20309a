"""Batches only for who asks (issue 26): a client written from protocol.md alone, which sent
Connect, Login and 300 Tasks, received frames of 316 and 290 parts and could read 1 of its
302 answers. One that subscribes to its destination and a NUL gets one message per ZeroMQ
message, always; one that subscribes with 0x01 instead asks for what a turn of Comm has
for it as one batch."""

from __future__ import annotations

import orjson
import zmq

from wire import codec

from ..helpers import base_topology, wait_until


def test_a_plain_client_gets_every_answer_in_a_frame_of_its_own_and_a_batching_one_gets_batches(start_topology):
    running = start_topology(base_topology("plain"))
    ctx = zmq.Context()
    try:
        push = ctx.socket(zmq.PUSH)
        push.connect(running.endpoints()["General"])
        subs = {}
        for name, topic in (("plain", codec.topic("plain")), ("batched", codec.batch_topic("batched"))):
            sub = subs[name] = ctx.socket(zmq.SUB)
            sub.connect(running.endpoints()["ChatEvents"])
            sub.setsockopt(zmq.SUBSCRIBE, topic)
        for name, sub in subs.items():   # live once a probe's answer comes back
            def live(name=name, sub=sub) -> bool:
                push.send_multipart([b"GetAgentState", orjson.dumps({"AgentId": "alice", "Mrd": "chat",
                                                                     "ReplyTo": name, "MsgId": "probe"})])
                if not sub.poll(100):
                    return False
                while sub.poll(100):
                    sub.recv_multipart()
                return True
            wait_until(live, timeout=10, what=f"{name}'s subscription live")
        for name in subs:
            for n in range(300):
                push.send_multipart([b"Task", orjson.dumps({"Mrd": "chat", "ClientUniqueId": f"{name}-{n}",
                                                            "ReplyTo": name, "MsgId": f"{name}-{n}"})])
        got = {}
        for name, sub in subs.items():
            frames_seen, answers = [], set()
            while len(answers) < 300 and sub.poll(10_000):
                frames = sub.recv_multipart()
                frames_seen.append(len(frames))
                answers |= {orjson.loads(m[2]).get("MsgId") for m in codec.unbatch(frames)}
            got[name] = (frames_seen, answers)
        plain_frames, plain_answers = got["plain"]
        assert plain_answers >= {f"plain-{n}" for n in range(300)}
        assert set(plain_frames) == {3}, "a plain client got a batch"
        batched_frames, batched_answers = got["batched"]
        assert batched_answers >= {f"batched-{n}" for n in range(300)}
        assert max(batched_frames) > 3 and len(batched_frames) < 300   # what a turn had, as one
    finally:
        ctx.destroy(0)
