"""`mroute bench`: figures (never pass/fail): the raw ZeroMQ ceiling, the system's
throughput and routing latency, the cost of one routing decision, and what a storm of
wrong CURVE keys costs Comm and the honest clients."""

from __future__ import annotations

import time

import click
import orjson

from ..supervisor import StartError
from ..topology import TopologyError
from .common import load_or_exit, topology_option


@click.group(invoke_without_command=True)
@topology_option()
@click.option("--json", "as_json", is_flag=True, help="the last line is one JSON object with every figure")
@click.option("--step", type=float, default=3.0, show_default=True, help="seconds per offered rate")
@click.option("--chat-servers", "servers", type=click.IntRange(1), default=2, show_default=True,
              help="simulated Chat Servers offering the load (250 agents each)")
@click.option("--memory-agents", type=click.IntRange(0), default=100_000, show_default=True,
              help="logged-in agents at which to measure Comm's and the MRE's bytes per agent (0: skip)")
@click.option("--hold", type=click.FloatRange(0), default=0.0, show_default=True, metavar="SECONDS",
              help="then offer twice the peak this long, every second measured (0: skip)")
@click.pass_context
def bench(ctx: click.Context, file: str, as_json: bool, step: float, servers: int, memory_agents: int,
          hold: float) -> None:
    """Benchmarks: print figures (never pass/fail). Without a subcommand: the raw ZeroMQ
    ceiling and the system's throughput and routing latency, measured in the same run."""
    if ctx.invoked_subcommand is not None:
        return
    from pathlib import Path

    from ..bench.floor import lifecycle_floor, route_floor
    from ..bench.run import (batch_check_cost, bytes_per_live_task, comm_bytes_per_agent, raw_ceiling, routing_cost,
                             system_figures)
    load_or_exit(file)
    started = time.monotonic()
    try:
        figures = {**raw_ceiling(), **lifecycle_floor(), **route_floor(),
                   **system_figures(Path(file), servers=servers, step_s=step, hold_s=hold)}
    except (StartError, TopologyError, RuntimeError) as exc:
        raise click.ClickException(str(exc))
    if memory_agents:
        figures.update(memory_agents=memory_agents, comm_bytes_per_agent=comm_bytes_per_agent(memory_agents),
                       mre_bytes_per_agent=routing_cost(memory_agents, decisions=1000)["mre_bytes_per_agent"],
                       **bytes_per_live_task())
    figures.update(batch_check_cost())
    figures["duration_s"] = round(time.monotonic() - started, 1)
    figures["route_p50_vs_raw_rtt"] = round(figures["route_p50_us"] / figures["raw_rtt_p50_us"], 2)
    if not as_json:
        click.echo(f"raw ZeroMQ: {figures['raw_msgs_per_s']:,} msgs/s one way; round trip through three "
                   f"processes p50 {figures['raw_rtt_p50_us']} us")
        echo_floor(figures)
        for step_row in figures["steps"]:
            click.echo(f"offered {step_row['offered_per_s']:>8,.0f} tasks/s -> completed "
                       f"{step_row['completed_per_s']:>8,} lifecycles/s")
        click.echo(f"system: {figures['tasks_per_s']:,} full lifecycles/s (Task -> routed -> accepted -> closed), "
                   f"{figures['agents']} agents on {figures['chat_servers']} Chat Servers")
        click.echo(f"routing latency at {figures['latency_rate_per_s']:.0f} tasks/s: p50 {figures['route_p50_us']} us "
                   f"({figures['route_p50_vs_raw_rtt']}x the raw round trip), p99 {figures['route_p99_us']} us")
        click.echo(f"batches only for who asks: the check costs Comm {figures['batch_check_ns']} ns per message "
                   f"published ({figures['batch_checked_batches_ns']} ns with it, {figures['batch_unchecked_ns']} ns "
                   f"without, to cut a turn of {figures['batch_messages_per_turn']}; a raw ZeroMQ message: "
                   f"{1e9 / figures['raw_msgs_per_s']:,.0f} ns)")
        busiest = figures["steps"][-1]["cpu_percent"]
        click.echo("CPU % per process at the last step: " + ", ".join(f"{n} {p}" for n, p in busiest.items()))
        click.echo("CPU us per lifecycle at the peak: " + ", ".join(
            f"{n} {us}" for n, us in figures["cpu_us_per_lifecycle"].items())
            + f" (the floor: {figures['floor_cpu_us_per_lifecycle']['total']})")
        held = figures.get("overload_hold")
        if held:
            click.echo(f"overload held {held['seconds']} s at {held['offered_per_s']:,}/s offered (twice the peak): "
                       f"{held['completed_per_s']:,} lifecycles/s completed ({held['vs_peak']:.0%} of the peak), "
                       f"worst second {held['worst_second_per_s']:,} ({held['worst_second_vs_peak']:.0%}); "
                       f"at most {held['waiting_max']:,} tasks waiting, {held['live_max']:,} live; "
                       f"{held['refused_per_s']:,} Tasks refused a second, {held['throttled_per_s']:,} of them by the "
                       f"Chat Servers' throttle, unsent")
        if memory_agents:
            click.echo(f"state per logged-in agent at {memory_agents:,} agents: "
                       f"Comm {figures['comm_bytes_per_agent']:,} "
                       f"bytes, MRE {figures['mre_bytes_per_agent']:,} bytes")
            click.echo(f"state per live task (eight typical params) at {figures['live_tasks']:,} tasks: "
                       f"Comm {figures['comm_bytes_per_task']:,} bytes, MRE {figures['mre_bytes_per_task']:,} bytes")
    click.echo(orjson.dumps(figures).decode())


def echo_floor(figures: dict) -> None:
    cpu = figures["floor_cpu_us_per_lifecycle"]
    click.echo(f"the floor (a lifecycle's {figures['floor_messages_per_lifecycle']} messages relayed through Chat "
               f"Server, Comm and MRE processes, decoded and encoded, no logic): "
               f"{figures['floor_lifecycles_per_s']:,} lifecycles/s, CPU us per lifecycle "
               + ", ".join(f"{n} {us}" for n, us in cpu.items()))
    click.echo(f"the floor's routing latency at 1000 customers/s (Task sent -> TaskAgentSelected heard): "
               f"p50 {figures['floor_route_p50_us']} us, p99 {figures['floor_route_p99_us']} us")


@bench.command("raw")
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
def bench_raw(as_json: bool) -> None:
    """The raw ZeroMQ ceiling on this machine: messages/s and the three-process round trip;
    and the floor under a lifecycle (bench/floor.py)."""
    from ..bench.floor import lifecycle_floor, route_floor
    from ..bench.run import raw_ceiling
    try:
        figures = {**raw_ceiling(), **lifecycle_floor(), **route_floor()}
    except RuntimeError as exc:
        raise click.ClickException(str(exc))
    if as_json:
        click.echo(orjson.dumps(figures).decode())
        return
    click.echo(f"raw PUSH/PULL, ipc, two processes: {figures['raw_msgs_per_s']:,} messages/s "
               f"({figures['raw_codec_msgs_per_s']:,}/s with orjson encode + decode per message)")
    click.echo(f"raw round trip chat -> comm -> mre -> comm -> chat, three processes: "
               f"p50 {figures['raw_rtt_p50_us']} us, p99 {figures['raw_rtt_p99_us']} us")
    echo_floor(figures)


@bench.command("profile")
@topology_option()
@click.option("--rate", type=click.FloatRange(min=1), default=3000.0, show_default=True,
              help="lifecycles/s offered by two simulated Chat Servers")
@click.option("--seconds", type=click.FloatRange(min=1), default=10.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
def bench_profile(file: str, rate: float, seconds: float, as_json: bool) -> None:
    """Where each process's CPU goes per lifecycle at a fixed rate: /proc's total, split by
    py-spy's samples into journal, poll, handle, send, decode, recv, encode and other."""
    from pathlib import Path

    from ..bench.profile import PARTS, profile, profiles_dir
    load_or_exit(file)
    try:
        figures = profile(Path(file), rate, seconds, profiles_dir(Path.cwd()))
    except (StartError, TopologyError, RuntimeError) as exc:
        raise click.ClickException(str(exc))
    if as_json:
        click.echo(orjson.dumps(figures).decode())
        return
    from rich.console import Console
    from rich.table import Table
    parts = [part for part, _ in PARTS] + ["other"]
    table = Table(title=f"CPU us per lifecycle at {figures['completed_per_s']:,} lifecycles/s "
                        f"({figures['rate_per_s']:,.0f} offered, {seconds:g} s)", box=None, padding=(0, 1),
                  pad_edge=False)
    for column in ("process", "total", *parts):
        table.add_column(column, justify="right", no_wrap=True)
    for name, row in figures["cpu_us_per_lifecycle"].items():
        table.add_row(name, str(row["total"]), *(str(row.get(part, "-")) for part in parts))
    Console().print(table)
    legs = Table(title=f"a route's legs at that rate (route p50 {figures['route_p50_us']} us, Task sent -> "
                       f"offer read)", box=None, padding=(0, 1), pad_edge=False)
    for column in ("leg", "tasks", "p50 us", "p99 us"):
        legs.add_column(column, justify="right", no_wrap=True)
    for leg, row in figures["route_legs"].items():
        legs.add_row(leg, str(row["tasks"]), str(row["p50_us"]), str(row["p99_us"]))
    Console().print(legs)
    click.echo(f"py-spy's folded stacks: {figures['profiles']}")


@bench.command("routing")
@click.option("--agents", "sizes", default="100,1000,10000,100000", show_default=True,
              help="comma-separated numbers of logged-in agents")
@click.option("--decisions", type=int, default=20_000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line, the last a summary")
def bench_routing(sizes: str, decisions: int, as_json: bool) -> None:
    """Cost of one routing decision as the logged-in agents grow, next to raw ZeroMQ."""
    from ..bench.run import raw_push_pull_us, routing_cost
    raw = raw_push_pull_us()
    rows = [routing_cost(int(n), decisions) for n in sizes.split(",")]
    if as_json:
        for row in rows:
            click.echo(orjson.dumps(row).decode())
        click.echo(orjson.dumps({"raw_push_pull_us": round(raw, 2), "rows": rows}).decode())
        return
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"routing decision cost (3-step queue, {decisions} decisions each)")
    for column in ("agents", "p50 us", "p99 us", "mean us", "x raw msg", "MRE bytes/agent"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(f"{row['agents']:,}", f"{row['route_p50_us']:.1f}", f"{row['route_p99_us']:.1f}",
                      f"{row['mean_us']:.1f}", f"{row['route_p50_us'] / raw:.1f}", f"{row['mre_bytes_per_agent']:,}")
    Console().print(table)
    click.echo(f"raw ZeroMQ, same run: {raw:.2f} us per orjson message through PUSH/PULL (ipc, one process)")


@bench.command("curve")
@topology_option()
@click.option("--sockets", type=click.IntRange(1), default=1500, show_default=True,
              help="sockets that present a wrong key")
@click.option("--seconds", type=float, default=3.0, show_default=True, help="how long each phase (rest, storm) is measured")
@click.option("--kind", type=click.Choice(["client", "server"]), default="client", show_default=True,
              help="client: an unknown client key (refused by the ZAP handler); server: the wrong server key "
                   "(refused by libzmq at HELLO)")
@click.option("--period", type=click.IntRange(1), default=100, show_default=True, metavar="MS",
              help="each wrong-key socket knocks again after this long")
@click.option("--storm-nice", "nice", type=click.IntRange(0, 19), default=19, show_default=True,
              help="the storm process's niceness: a real storm's CPU is on other machines")
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
def bench_curve(file: str, sockets: int, seconds: float, kind: str, period: int, nice: int, as_json: bool) -> None:
    """An honest client's GetAgentState round trip at rest and during a storm of sockets
    with a wrong CURVE key, Comm's CPU during the storm and the refusals it counted; and
    what knowing the sender of each message costs under CURVE."""
    from pathlib import Path

    from ..bench.curve import curve_storm
    load_or_exit(file)
    from ..bench.run import in_actors
    try:
        f = curve_storm(Path(file), sockets=sockets, seconds=seconds, period_ms=period, kind=kind, nice=nice)
        f["identity"] = in_actors("identity", "50000")   # what knowing each message's sender costs
    except (StartError, TopologyError, RuntimeError) as exc:
        raise click.ClickException(str(exc))
    if as_json:
        click.echo(orjson.dumps(f).decode())
        return
    rest, storm, by = f["rest_ms"], f["storm_ms"], f["comm_cpu_by_thread_s"]
    how = (f"each replaced every {period} ms, {f['sockets_opened']:,} opened" if kind == "client"
           else f"libzmq retrying each every {period} ms")
    click.echo(f"storm: {sockets:,} sockets with a wrong {kind} key ({how}) for {f['storm_s']} s")
    click.echo("honest GetAgentState round trip     p50 ms    p99 ms   answers")
    click.echo(f"  at rest                         {rest['p50']:>8}  {rest['p99']:>8}   {rest['n']:>7,}")
    click.echo(f"  during the storm                {storm['p50']:>8}  {storm['p99']:>8}   {storm['n']:>7,}"
               f"   ({f['storm_unanswered']} unanswered)")
    joined = f"{f['join_ms']} ms" if f["join_ms"] is not None else "none within 5 s"
    click.echo(f"a new honest client's first answer during the storm: {joined}")
    refused = f["auth_failures"] if f["auth_failures"] is not None else "(not counted by this Comm)"
    click.echo(f"Comm during the storm: {f['comm_cpu_s']} CPU-s (ZeroMQ I/O thread {by['zmq']}, loop {by['main']}, "
               f"ZAP and other threads {by['other']}); handshakes refused: {refused}")
    click.echo(f"the storm's own process: {f['storm_cpu_s']} CPU-s at niceness {nice} (it shares this machine's cores)")
    who = f["identity"]
    click.echo(f"knowing each message's sender (its key's name, the destinations it names checked): "
               f"{who['identity_us']} us a message ({who['with_sender_us']} us taken so, {who['plain_us']} us not; "
               f"medians of {who['rounds']} x {who['messages']:,} through one CURVE socket)")
