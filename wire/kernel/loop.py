"""The event loop of every process of ours: one thread around a zmq.Poller with a timer
heap, signals handled in the loop (zeromq-rules 10, 17), and the parent-death signal that
takes a child with its supervisor (zeromq-rules 3).
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import math
import os
import signal
import socket
import time
from typing import Any, Callable

import zmq


# A cancelled timer stays in the heap until it is due (a heap cannot lose an entry in the
# middle); once they are most of it, the heap is rebuilt without them, as asyncio's loop
# does. Without that a timer armed per task and cancelled when the task ends (Comm's time
# to live, 300 s) held the heap at rate x 300 s: 1.5 million entries at 5,000 tasks/s,
# hundreds of MB, and a Python cycle collection that walked them stopped Comm for over a
# second.
PURGE_AT_LEAST = 100  # cancelled timers below which the heap is never rebuilt


class Timer:
    __slots__ = ("when", "fn", "args", "cancelled", "loop")

    def __init__(self, when: float, fn: Callable[..., Any], args: tuple[Any, ...], loop: Loop | None = None):
        self.when = when
        self.fn = fn
        self.args = args
        self.cancelled = False
        self.loop = loop  # while in a loop's heap: told of the cancel

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            if self.loop is not None:
                self.loop.timer_cancelled()


class Loop:
    """One thread around a zmq.Poller: readers (sockets or fds) and a timer heap.

    SIGTERM and SIGINT stop it within one wake-up: the signal is written to a socketpair
    that the poller watches, so no periodic polling is needed to notice it."""

    def __init__(self) -> None:
        self.poller = zmq.Poller()
        self.readers: dict[Any, Callable[[], None]] = {}
        self.timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self.stop_reason = ""
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._signal_callbacks: dict[int, Callable[[], None]] = {}
        self.before_poll: list[Callable[[], None]] = []  # e.g. an actor's outbox flush
        # Set during a turn by whatever stops with work left that no socket shows (Comm's
        # intake of new Tasks): the next poll does not wait.
        self.behind = False
        self.wakes = 0  # polls returned so far: what a wake-up read can be told apart by
        self.cancelled_timers = 0  # in the heap, not due yet (PURGE_AT_LEAST)

    def add_reader(self, sock: Any, callback: Callable[[], None]) -> None:
        self.readers[sock] = callback
        self.poller.register(sock, zmq.POLLIN)

    def remove_reader(self, sock: Any) -> None:
        if self.readers.pop(sock, None) is not None:
            self.poller.unregister(sock)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Timer:
        return self.call_at(time.monotonic() + delay, fn, *args)

    def call_at(self, when: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Call fn(*args) once time.monotonic() reaches `when`."""
        timer = Timer(when, fn, args, self)
        heapq.heappush(self.timers, (when, next(self._seq), timer))
        return timer

    def timer_cancelled(self) -> None:
        self.cancelled_timers += 1
        if self.cancelled_timers >= PURGE_AT_LEAST and 2 * self.cancelled_timers > len(self.timers):
            # in place: the running loop holds this list
            self.timers[:] = [entry for entry in self.timers if not entry[2].cancelled]
            heapq.heapify(self.timers)
            self.cancelled_timers = 0

    def call_every(self, interval: float, fn: Callable[[], Any]) -> None:
        def tick() -> None:
            fn()
            self.call_later(interval, tick)
        self.call_later(interval, tick)

    def stop(self, reason: str = "stopped") -> None:
        self.stop_reason = self.stop_reason or reason

    def handle_signals(self, *stop_signals: int) -> None:
        """Stop on `stop_signals`; other signals may be given callbacks with `on_signal`.
        Handlers run in the loop, never inside the interrupted code."""
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        self.add_reader(self._wake_r.fileno(), self._drain_wakeups)
        for signum in stop_signals:
            self.on_signal(signum, lambda n=signum: self.stop(signal.Signals(n).name))

    def on_signal(self, signum: int, callback: Callable[[], None]) -> None:
        self._signal_callbacks[signum] = callback
        signal.signal(signum, lambda _n, _f: None)  # the wakeup fd carries it to the loop

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r is not None:
                data = self._wake_r.recv(64)
                if not data:
                    return
                for signum in set(data):
                    callback = self._signal_callbacks.get(signum)
                    if callback is not None:
                        callback()
        except BlockingIOError:
            pass

    def run(self, until: Callable[[], bool] | None = None, timeout: float | None = None,
            after_stop: bool = False) -> bool:
        """Run until `stop()` (unless `after_stop`: for winding down once stopped), or until
        `until()` holds (checked after every wake-up), or `timeout` seconds pass. Returns
        whether `until()` held."""
        try:
            return self._run(until, timeout, after_stop)
        finally:
            for hook in self.before_poll:
                hook()

    def _run(self, until: Callable[[], bool] | None, timeout: float | None, after_stop: bool) -> bool:
        deadline = time.monotonic() + timeout if timeout is not None else None
        timers = self.timers
        while after_stop or not self.stop_reason:
            if until is not None and until():
                return True
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            while timers and timers[0][0] <= now:
                timer = heapq.heappop(timers)[2]
                timer.loop = None  # out of the heap: a cancel from now on is not counted
                if timer.cancelled:
                    self.cancelled_timers -= 1
                else:
                    timer.fn(*timer.args)
                if self.stop_reason and not after_stop:
                    return False
            for hook in self.before_poll:
                hook()
            wake = min(timers[0][0] if timers else now + 1.0, deadline if deadline is not None else now + 1.0)
            # zmq_poll counts whole milliseconds and pyzmq truncates: round up, or the last
            # fraction of every wait before a timer becomes a busy loop of poll(0).
            ready = self.poller.poll(0 if self.behind else math.ceil(max(0.0, wake - time.monotonic()) * 1000))
            self.behind = False
            self.wakes += 1
            for sock, _ in ready:
                callback = self.readers.get(sock)
                if callback is not None:
                    callback()
        return until is not None and until()

    def close(self) -> None:
        if self._wake_w is not None:
            signal.set_wakeup_fd(-1)
            self._wake_w.close()
            self._wake_r.close()  # type: ignore[union-attr]
            self._wake_w = self._wake_r = None


def die_with_parent(parent_pid: int, signum: int = signal.SIGKILL) -> None:
    """Ask the kernel for `signum` when our parent dies, then make sure it has not already
    died between our fork and now (zeromq-rules 3). Actors take SIGKILL: a supervisor that
    died cannot wait for them, and a hung actor would ignore a TERM."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the supervisor's group kill still applies
        pass
    if os.getppid() != parent_pid:
        raise SystemExit(f"parent {parent_pid} is gone")
