"""The door of an actor whose sockets are CURVE servers: the ZAP handler that lets in only
the allowed client keys, and the one owner of what it refused: counted (the actor's stats,
`mroute_auth_failures_total`) and logged, one line at most every LOG_EVERY seconds.

Why not pyzmq's ThreadAuthenticator (measured): in a one-process ZAP loop it costs 126-134
us of CPU per request (an asyncio loop per wake-up, debug-log calls, a z85 encoding) and tops
out near 6,900 requests/s; facing a storm of unknown keys it answered 268 of the 46,000
handshakes that came in 3 s (the rest waited until their clients gave up), and counted
nothing. Here a request is one set lookup of the raw 32-byte key between Cython-level
receives and sends, every request waiting is answered in one go, nothing is formatted per
refusal: 14 us per request in the same loop, about 3 us per refusal inside Comm during
`mroute bench curve`. The thread touches nothing of the actor's but its own counters.
What a storm still costs is libzmq's: its I/O thread does the TCP and CURVE work of every
handshake (81-92 % of Comm's CPU during the storms of the bench; this thread 2-6 %).

Refusals are of three kinds:
- `unknown_key`: the key exchange succeeded and ZAP says no; ZAP gives the peer's address;
- `no_curve`: a client without CURVE (mechanism mismatch; on a loaded machine libzmq now
  and then reports it without detail, and it is counted as the next kind), and
- `bad_handshake`: the wrong server key (the HELLO cannot be opened) or garbage. libzmq
  refuses these two itself, before ZAP; a socket monitor that asks only for the handshake
  failure events tells us, with the endpoint of ours they came to (libzmq gives no peer
  address there). A wrong server key is retried by libzmq every RECONNECT_IVL, so these
  come in storms: the monitors are read every MONITOR_DRAIN seconds rather than waking the
  thread per event (measured in such a storm: 20 us per failure woken, under 3 us read in
  batches).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable

import zmq

from actors.frames import recv_frames

log = logging.getLogger("mroute")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"  # where libzmq sends a context's ZAP requests
ZAP_DOMAIN = b"mroute"
LOG_EVERY = 10.0  # seconds between two log lines about refusals
RELOAD_EVERY = 1.0  # seconds between two reads of the allow-list prompted by unknown keys
MONITOR_DRAIN = 0.1  # seconds between two reads of the handshake failures libzmq reports
MAX_SOURCES = 8  # distinct (reason, source) pairs told apart in one log line; the rest summed
UNKNOWN_KEY, NO_CURVE, BAD_HANDSHAKE = "unknown_key", "no_curve", "bad_handshake"
SAID = {UNKNOWN_KEY: "unknown client key", NO_CURVE: "no CURVE (mechanism mismatch)",
        BAD_HANDSHAKE: "bad handshake (wrong server key?)"}
# libzmq's events for a handshake that failed before ZAP, and the protocol error for "no CURVE"
PRE_ZAP_EVENTS = zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
MECHANISM_MISMATCH = int(zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
OTHERS = b"\0others"  # the source of refusals past MAX_SOURCES distinct ones
REFUSED_HEAD, REFUSED_TAIL = [b"1.0"], [b"400", b"unknown key", b"", b""]


class Door:
    """`start` it before any CURVE socket binds, then `watch` each CURVE server socket
    before it binds. Its thread is the only writer of the counters; `stats()` reads them."""

    def __init__(self, ctx: zmq.Context, name: str, allowed: dict[bytes, str], log_every: float = LOG_EVERY,
                 reload: Callable[[], dict[bytes, str]] | None = None):
        self.ctx = ctx
        self.name = name
        # raw 32-byte public key -> its name, which the connection's messages carry as their
        # User-Id: who sent a message is its key (wire/curve.py), whatever the message says
        self.allowed = {key: holder.encode() for key, holder in allowed.items()}
        self.reload = reload    # the allow-list read again: a key added while we run gets in
        self.reloaded_at = 0.0
        self.log_every = log_every
        self.accepted = 0
        self.failures = 0
        self.disconnects = 0  # connections libzmq dropped (runtime.Actor.socket says why they matter)
        self.by_reason = dict.fromkeys(SAID, 0)
        self.pending: dict[tuple[str, bytes], int] = {}  # refused and not logged yet, by (reason, source)
        self.pending_since = 0.0
        self.next_line = 0.0  # monotonic time before which no line is written
        self.watched = 0  # sockets watched so far: each monitor's endpoint is its own
        self.zap: zmq.Socket | None = None
        self.pipe: zmq.Socket | None = None  # ours -> the thread: an endpoint to monitor, or b"" to stop
        self.thread: threading.Thread | None = None

    # the actor's side ------------------------------------------------------------------
    def start(self) -> None:
        # Bound before start() returns: no CURVE socket of ours binds before a handler is there.
        self.zap = self.ctx.socket(zmq.REP)
        self.zap.linger = 0
        self.zap.bind(ZAP_ENDPOINT)
        self.pipe = self.ctx.socket(zmq.PAIR)
        self.pipe.linger = 0
        self.pipe.bind(f"inproc://mroute-door-{id(self)}")
        self.thread = threading.Thread(target=self._run, name=f"{self.name}-zap", daemon=True)
        self.thread.start()

    def watch(self, sock: zmq.Socket) -> None:
        """Make `sock` (a CURVE server, not bound yet) one the door answers for."""
        assert self.pipe is not None, "start the door first"
        # Fail closed. Measured (libzmq 4.3.5): with no ZAP handler bound, a CURVE server lets
        # any client key in; ZAP_ENFORCE_DOMAIN alone makes it worse (with no domain ZAP is
        # never asked: every key gets in); with a domain and ZAP_ENFORCE_DOMAIN ZAP is asked,
        # and a missing handler means refused.
        sock.zap_domain = ZAP_DOMAIN
        sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
        self.watched += 1
        endpoint = f"inproc://mroute-door-{id(self)}-monitor-{self.watched}"
        sock.monitor(endpoint, PRE_ZAP_EVENTS | zmq.EVENT_DISCONNECTED)
        self.pipe.send_string(endpoint)

    def stats(self) -> dict[str, Any]:
        return {"failures": self.failures, "accepted": self.accepted, "by_reason": dict(self.by_reason)}

    def stop(self) -> None:
        if self.pipe is not None and self.thread is not None:
            self.pipe.send(b"")
            self.thread.join(5)
            self.pipe.close(0)
            self.pipe = None

    # the thread's side -----------------------------------------------------------------
    def _run(self) -> None:
        zap = self.zap
        assert zap is not None
        pipe = self.ctx.socket(zmq.PAIR)
        pipe.linger = 0
        pipe.connect(f"inproc://mroute-door-{id(self)}")
        poller = zmq.Poller()
        poller.register(zap, zmq.POLLIN)
        poller.register(pipe, zmq.POLLIN)
        monitors: list[zmq.Socket] = []
        next_drain = time.monotonic()
        try:
            while True:
                # Woken by a ZAP request (a handshake waits on it) or the pipe; by the clock
                # to read the monitors and to write the line that is due.
                now = time.monotonic()
                wake = next_drain if monitors else math.inf
                if self.pending:
                    wake = min(wake, self.next_line)
                for sock, _ in poller.poll(None if wake == math.inf else max(0.0, wake - now) * 1000):
                    if sock is zap:
                        self._answer(zap)
                    else:
                        endpoint = pipe.recv_string()
                        if not endpoint:
                            return
                        monitors.append(self._follow(endpoint))
                now = time.monotonic()
                if monitors and now >= next_drain:
                    for mon in monitors:
                        self._failed_before_zap(mon)
                    next_drain = now + MONITOR_DRAIN
                if self.pending and now >= self.next_line:
                    self._report()
        finally:
            for mon in monitors:
                self._failed_before_zap(mon)
                mon.close(0)
            if self.pending:
                self._report()
            pipe.close(0)
            zap.close(0)

    def _follow(self, endpoint: str) -> zmq.Socket:
        mon = self.ctx.socket(zmq.PAIR)
        mon.linger = 0
        mon.rcvhwm = 1_000_000  # events wait here between two reads; libzmq drops what does not fit
        mon.connect(endpoint)
        return mon

    def _answer(self, zap: zmq.Socket) -> None:
        """Every request waiting, with no poll between two (a storm brings them in bursts):
        [version, request id, domain, address, routing id, mechanism, credentials...]."""
        while (frames := recv_frames(zap)) is not None:
            request_id = frames[1] if len(frames) > 1 else b""
            holder = self.holder(frames[6]) if len(frames) == 7 and frames[5] == b"CURVE" else None
            if holder is not None:
                self.accepted += 1
                _send_all(zap, [b"1.0", request_id, b"200", b"OK", holder, b""])
                continue
            _send_all(zap, REFUSED_HEAD + [request_id] + REFUSED_TAIL)
            self._refused(UNKNOWN_KEY, frames[3] if len(frames) > 3 else b"")

    def holder(self, key: bytes) -> bytes | None:
        """The name of an allowed key; an unknown one makes the allow-list be read again, at
        most once every RELOAD_EVERY seconds (a storm of unknown keys reads it no oftener)."""
        holder = self.allowed.get(key)
        if holder is None and self.reload is not None and time.monotonic() - self.reloaded_at >= RELOAD_EVERY:
            self.reloaded_at = time.monotonic()
            try:
                self.allowed = {k: name.encode() for k, name in self.reload().items()}
            except (OSError, ValueError) as exc:
                log.warning("%s: cannot read the allowed keys again: %s", self.name, exc)
            holder = self.allowed.get(key)
        return holder

    def _failed_before_zap(self, mon: zmq.Socket) -> None:
        """Every event waiting: [event (16 bits) and value (32 bits), our endpoint]."""
        while (frames := recv_frames(mon)) is not None:
            if len(frames) == 2 and len(frames[0]) == 6:
                if int.from_bytes(frames[0][:2], "little") == zmq.EVENT_DISCONNECTED:
                    self.disconnects += 1
                    continue
                value = int.from_bytes(frames[0][2:], "little")
                self._refused(NO_CURVE if value == MECHANISM_MISMATCH else BAD_HANDSHAKE, frames[1])

    def _refused(self, reason: str, source: bytes) -> None:
        """Counted at once; told in the next line, and only then formatted."""
        self.failures += 1
        self.by_reason[reason] += 1
        pending = self.pending
        key = (reason, source)
        if key not in pending and len(pending) >= MAX_SOURCES:
            key = (reason, OTHERS)
        if not pending:
            self.pending_since = time.monotonic()
        pending[key] = pending.get(key, 0) + 1
        if self.pending_since >= self.next_line:  # the first after a quiet spell is told at once
            self._report()

    def _report(self) -> None:
        now = time.monotonic()
        count = sum(self.pending.values())
        parts = "; ".join(f"{f'{n:,} ' if count > 1 else ''}{SAID[reason]} {where(reason, source)}"
                          for (reason, source), n in sorted(self.pending.items(), key=lambda item: -item[1]))
        span = f"s in the last {now - self.pending_since:.1f} s" if count > 1 else ""
        log.warning("%s: refused %s CURVE handshake%s: %s (%s since start; one line every %g s at most)",
                    self.name, f"{count:,}", span, parts, f"{self.failures:,}", self.log_every)
        self.pending = {}
        self.next_line = now + self.log_every


def where(reason: str, source: bytes) -> str:
    """ZAP gives the peer's address (empty over ipc); a monitor the endpoint of ours."""
    if source == OTHERS:
        return "from other sources"
    text = source.decode("ascii", "replace")
    if reason == UNKNOWN_KEY:
        return f"from {text}" if text else "from a local peer"
    return f"on {text}"


# The Cython socket call with plain int flags, as actors/frames.py's: most of a refusal's
# cost is these calls, and send_multipart adds microseconds to each.
_SNDMORE = int(zmq.SNDMORE)
_send = zmq.backend.Socket.send


def _send_all(sock: zmq.Socket, frames: list[bytes]) -> None:
    for frame in frames[:-1]:
        _send(sock, frame, _SNDMORE)
    _send(sock, frames[-1], 0)
