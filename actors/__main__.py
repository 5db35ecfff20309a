"""Entry point of every actor process: `python -m actors ROLE --name N --run-dir D`.

Sets the parent-death signal, connects the control DEALER to the supervisor, starts the
role, reports READY (or FAILED with the traceback), runs the loop until SIGTERM or a
`stop` request, and closes every socket and the context on the way out.

A failure whose exception says `explained = True` (Comm's damaged journal) is one an
operator acts on from its message alone: it is logged and reported as that message, with
no traceback to read through (issue 24: 15 lines ending `database disk image is malformed`
named neither the file nor a way out).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import orjson
import zmq

from wire.kernel.roles import ROLES
from wire.kernel.rundir import TOPOLOGY
from wire.kernel.settings import from_json
from wire.kernel.loop import Loop, die_with_parent
from actors.runtime import Actor, ActorConfig, log
from wire.jsonlog import JsonLines
from wire import control
from wire.codec import WireError


def load_role(role: str) -> type[Actor]:
    module, _, cls = ROLES[role].partition(":")
    return getattr(importlib.import_module(module), cls)


def serve_control(actor: Actor, sock: zmq.Socket, loop: Loop) -> None:
    while True:
        try:
            raw = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        try:
            request_id, verb, body = control.parse(raw)
        except ValueError as exc:
            log.warning("%s: bad control message: %s", actor.name, exc)
            continue
        verbs: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "ping": lambda _: {"pid": os.getpid(), "degraded": actor.degraded()}, "stats": lambda _: actor.stats(),
            "stop": lambda _: loop.stop("stop requested") or {},
            "trace": lambda body: {"events": actor.traced(str(body.get("task", "")))}, **actor.control_verbs()}
        handler = verbs.get(verb)
        try:
            if handler is None:
                raise WireError("BAD_MESSAGE", f"{actor.role} has no control verb {verb!r}")
            reply = handler(body)
        except WireError as err:
            sock.send_multipart(control.frames(request_id, control.ERROR, {"reason": err.reason, "code": err.code}))
            continue
        sock.send_multipart(control.frames(request_id, control.OK, reply))


# The actors' tools the launcher runs in a process of their own (it never imports them):
# `python -m actors bench ...` (micro-benchmarks), `python -m actors journal summary PATH`.
TOOLS = {"bench": "actors.bench", "journal": "actors.comm.journal_cli"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in TOOLS:
        return int(importlib.import_module(TOOLS[argv[0]]).main(argv[1:]))
    parser = argparse.ArgumentParser(prog="python -m actors")
    parser.add_argument("role", choices=sorted(ROLES))
    parser.add_argument("--name", required=True, help="instance name, e.g. chat.1")
    parser.add_argument("--run-dir", required=True, help="the topology's run directory")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("MROUTE_LOG_LEVEL", "INFO"),
                        format="%(asctime)s.%(msecs)03d %(levelname)s %(message)s", datefmt="%H:%M:%S")
    if os.environ.get("MROUTE_LOG_FORMAT") == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonLines(args.name))
    parent = os.environ.get("MROUTE_PARENT_PID")
    if parent:
        die_with_parent(int(parent))
    # Until the loop owns them, TERM and INT end us at once.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    run_dir = Path(args.run_dir)
    resolved = orjson.loads((run_dir / TOPOLOGY).read_bytes())
    base, _, number = args.name.rpartition(".")
    settings = from_json(args.role, resolved["actors"].get(base or args.name, {}))
    ctx = zmq.Context(io_threads=settings.io_threads)
    ctl = None
    actor: Actor | None = None
    loop = Loop()
    started = False
    try:
        if os.environ.get("MROUTE_CONTROL"):
            ctl = ctx.socket(zmq.DEALER)
            ctl.linger = 0
            ctl.identity = args.name.encode()
            ctl.connect(os.environ["MROUTE_CONTROL"])
        config = ActorConfig(name=args.name, role=args.role, index=int(number) if number.isdigit() else 1,
                             run_dir=str(run_dir), endpoints=resolved["endpoints"], topology=resolved,
                             settings=settings)
        actor = load_role(args.role)(ctx, config, loop)
        actor.control = ctl
        loop.handle_signals(signal.SIGTERM, signal.SIGINT)
        actor.open_tap()
        actor.start()
        if ctl is not None:
            loop.add_reader(ctl, lambda: serve_control(actor, ctl, loop))  # type: ignore[arg-type]
        started = True
        # What start() built (the directory, indexes) lives as long as we do: keep it out of
        # every collection, and collect the young generation less often. Under load, gen-0
        # collections every 700 allocations were a visible share of routing latency.
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        if actor.ready():
            actor.announce_ready()
        loop.run()
        log.info("%s stopping (%s)", args.name, loop.stop_reason or "loop ended")
        actor.stop()
        return 0
    except (KeyboardInterrupt, SystemExit):
        return 0
    except BaseException as exc:
        if getattr(exc, "explained", False):
            tb = str(exc)
            log.error("%s %s: %s", args.name, "stopped" if started else "cannot start", tb)
        else:
            tb = traceback.format_exc()
            log.error("%s failed:\n%s", args.name, tb)
        if ctl is not None and not started:
            ctl.send_multipart(control.frames("", control.FAILED, {"pid": os.getpid(), "traceback": tb}))
        return 1
    finally:
        if actor is not None:
            actor.close()
        if ctl is not None:
            ctl.close(linger=200)
        loop.close()
        ctx.term()


if __name__ == "__main__":
    sys.exit(main())
