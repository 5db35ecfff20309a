"""One whole ZeroMQ message in and out, without blocking, at the least cost per message:
the receive path of every actor (runtime.py) and the ZAP handler (zap.py) use it."""

from __future__ import annotations

import zmq

# pyzmq's send_multipart and recv_multipart cost 2-3 us a message more than the calls they
# make (enum flag arithmetic, the RCVMORE property, the sugar layer's checks): on the hot
# path we call the Cython socket methods with plain int flags.
_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE_NOBLOCK = int(zmq.SNDMORE | zmq.NOBLOCK)
_RCVMORE = int(zmq.RCVMORE)
_send = zmq.backend.Socket.send
_recv = zmq.backend.Socket.recv
_get = zmq.backend.Socket.get


def recv_frames(sock: zmq.Socket) -> list[bytes] | None:
    """One whole message from `sock`, or None when none is waiting."""
    try:
        frames = [_recv(sock, _NOBLOCK)]
    except zmq.Again:
        return None
    while _get(sock, _RCVMORE):
        frames.append(_recv(sock, _NOBLOCK))
    return frames


_Frame_get = zmq.Frame.get
_Frame_bytes = zmq.Frame.bytes.__get__  # type: ignore[attr-defined]


def recv_frames_with_peer(sock: zmq.Socket) -> tuple[list[bytes] | None, str | None]:
    """One whole message from a CURVE server socket and who sent it: the `User-Id` its ZAP
    handler gave the connection (actors/zap.py: the name of the client's key), or (None,
    None) when no message is waiting. Only the first frame is received as a Frame, the
    one object that carries the connection's metadata."""
    try:
        first = _recv(sock, _NOBLOCK, False)
    except zmq.Again:
        return None, None
    try:
        peer = _Frame_get(first, "User-Id")
    except zmq.ZMQError:  # no metadata: not a CURVE connection
        peer = None
    frames = [_Frame_bytes(first)]
    while _get(sock, _RCVMORE):
        frames.append(_recv(sock, _NOBLOCK))
    return frames, peer


def send_frames(sock: zmq.Socket, frames: list[bytes]) -> None:
    """Send one message without blocking; raises zmq.Again when the peer's queue is full.
    A message is all or nothing: the high-water mark is checked on its first frame only."""
    for frame in frames[:-1]:
        _send(sock, frame, _SNDMORE_NOBLOCK)
    _send(sock, frames[-1], _NOBLOCK)
