"""The CLI's verbs, one module per verb or small family (as Circus's `circus/commands/`):
each holds its click command, its options, the request it makes and its rendering.
`launch/cli.py` is the group that registers them."""

from __future__ import annotations

import click

from . import (actor, bench, chaos, check, down, events, export, journal, keys, lifecycle, load, logs, send, stats, status, tap,
               tasks, top, trace, up, voice, web)

COMMANDS: list[click.Command] = [
    up.up, status.status, down.down, lifecycle.restart, lifecycle.stop, lifecycle.start, lifecycle.scale,
    logs.logs, events.events, stats.stats, top.top, tap.tap, trace.trace, send.send, tasks.flush, tasks.explain,
    voice.gc, voice.call, voice.preview, voice.voice_side, load.load_command, chaos.chaos, bench.bench,
    journal.reset, journal.backup, keys.keys, check.check, actor.actor, export.export, web.web_command,
]
