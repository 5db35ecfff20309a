"""Small inline SVG charts for the load report: lines over time (linear or log scale),
stacked areas, and a histogram as a density on a log axis. No script, no network: the
page they go in opens anywhere, years later."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

WIDTH, HEIGHT = 860, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 46, 44
COLOURS = ("#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79")


@dataclass
class Marker:
    x: float
    label: str
    colour: str = "#888"


@dataclass
class Chart:
    title: str
    y_label: str
    x_max: float                      # the axis runs to here: the run's own length
    x_label: str = "seconds since the load began"
    log_y: bool = False
    markers: list[Marker] = field(default_factory=list)

    @property
    def plot_w(self) -> float:
        return WIDTH - LEFT - RIGHT

    @property
    def plot_h(self) -> float:
        return HEIGHT - TOP - BOTTOM

    def x(self, value: float) -> float:
        return LEFT + self.plot_w * value / self.x_max if self.x_max > 0 else LEFT

    def frame(self, y_ticks: list[tuple[float, str]], y_of) -> list[str]:  # type: ignore[no-untyped-def]
        out = [f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" class="title">{esc(self.title)}</text>']
        for value, text in y_ticks:
            y = y_of(value)
            out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" class="grid"/>')
            out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{esc(text)}</text>')
        for value in time_ticks(self.x_max):
            x = self.x(value)
            out.append(f'<line x1="{x:.1f}" y1="{TOP + self.plot_h}" x2="{x:.1f}" y2="{TOP + self.plot_h + 4}" '
                       f'class="axis"/>')
            out.append(f'<text x="{x:.1f}" y="{TOP + self.plot_h + 16}" text-anchor="middle" class="tick">'
                       f'{value:g}</text>')
        out.append(f'<line x1="{LEFT}" y1="{TOP + self.plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + self.plot_h}" '
                   f'class="axis"/>')
        out.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + self.plot_h}" class="axis"/>')
        out.append(f'<text x="{LEFT + self.plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle" class="label">'
                   f'{esc(self.x_label)}</text>')
        out.append(f'<text x="14" y="{TOP + self.plot_h / 2}" transform="rotate(-90 14 {TOP + self.plot_h / 2})" '
                   f'text-anchor="middle" class="label">{esc(self.y_label)}</text>')
        for marker in self.markers:
            x = self.x(marker.x)
            out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + self.plot_h}" stroke="{marker.colour}" '
                       f'stroke-dasharray="4 3"/>')
            out.append(f'<text x="{x + 3:.1f}" y="{TOP + 10}" class="marker" fill="{marker.colour}">'
                       f'{esc(marker.label)}</text>')
        return out

    def lines(self, series: dict[str, list[tuple[float, float | None]]]) -> str:
        values = [y for points in series.values() for _, y in points if y is not None and (y > 0 or not self.log_y)]
        if self.log_y:
            low, high = log_bounds(values)
            ticks = [(v, fmt(v)) for v in log_ticks(low, high)]

            def y_of(v: float) -> float:
                return TOP + self.plot_h * (1 - (math.log10(max(v, low)) - math.log10(low)) /
                                            (math.log10(high) - math.log10(low)))
        else:
            high, ticks = linear_ticks(max(values, default=1.0))

            def y_of(v: float) -> float:
                return TOP + self.plot_h * (1 - v / high)
        out = self.frame(ticks, y_of)
        for i, (name, points) in enumerate(series.items()):
            colour = COLOURS[i % len(COLOURS)]
            for run in runs(points, self.log_y):
                path = " ".join(f"{self.x(x):.1f},{y_of(y):.1f}" for x, y in run)
                out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        out += legend(list(series))
        return svg(out)

    def stacked(self, series: dict[str, list[tuple[float, float]]]) -> str:
        """Areas stacked bottom to top in the order given (Locust's users chart)."""
        xs = sorted({x for points in series.values() for x, _ in points})
        totals = [sum(dict(points).get(x, 0.0) for points in series.values()) for x in xs]
        high, ticks = linear_ticks(max(totals, default=1.0))

        def y_of(v: float) -> float:
            return TOP + self.plot_h * (1 - v / high)
        out = self.frame(ticks, y_of)
        base = [0.0] * len(xs)
        for i, (name, points) in enumerate(series.items()):
            values = dict(points)
            top = [b + values.get(x, 0.0) for b, x in zip(base, xs)]
            if xs and any(t > b for t, b in zip(top, base)):
                upper = " ".join(f"{self.x(x):.1f},{y_of(t):.1f}" for x, t in zip(xs, top))
                lower = " ".join(f"{self.x(x):.1f},{y_of(b):.1f}" for x, b in reversed(list(zip(xs, base))))
                out.append(f'<polygon points="{upper} {lower}" fill="{COLOURS[i % len(COLOURS)]}" '
                           f'fill-opacity="0.75" stroke="none"/>')
            base = top
        out += legend(list(series))
        return svg(out)


def density(title: str, buckets: list[tuple[float, float, int]], markers: dict[str, float]) -> str:
    """A latency histogram as a density on a log axis: each bucket [low, high) ms is a bar
    whose height is its share of the samples per decade of latency, so that buckets of
    different widths compare (no false step where the bucket width doubles)."""
    total = sum(n for _, _, n in buckets)
    if not total:
        return svg([f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">{esc(title)}: no samples</text>'])
    lo = min(low for low, _, _ in buckets)
    hi = max(high for _, high, _ in buckets)
    lo, hi = 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(v: float) -> float:
        return LEFT + plot_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    heights = [(low, high, 100.0 * n / total / (math.log10(high) - math.log10(low))) for low, high, n in buckets]
    top, ticks = linear_ticks(max(h for _, _, h in heights))
    out = [f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" class="title">{esc(title)}</text>']
    for value, text in ticks:
        y = TOP + plot_h * (1 - value / top)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{text}</text>')
    for tick in log_ticks(lo, hi):
        x = x_of(tick)
        out.append(f'<line x1="{x:.1f}" y1="{TOP + plot_h}" x2="{x:.1f}" y2="{TOP + plot_h + 4}" class="axis"/>')
        out.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" class="tick">{fmt(tick)}</text>')
    for low, high, h in heights:
        x0, x1 = x_of(low), x_of(high)
        y = TOP + plot_h * (1 - h / top)
        out.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 0.3, 0.6):.1f}" height="{TOP + plot_h - y:.1f}" '
                   f'fill="{COLOURS[0]}"><title>{fmt(low)}-{fmt(high)} ms: {h:.1f} %/decade</title></rect>')
    for i, (label, value) in enumerate(markers.items()):
        if value and lo <= value <= hi:
            x = x_of(value)
            colour = COLOURS[(i + 2) % len(COLOURS)]
            out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_h}" stroke="{colour}" '
                       f'stroke-dasharray="4 3"/>')
            right = x > LEFT + plot_w * 0.75   # near the right edge: the label goes to the line's left
            out.append(f'<text x="{x - 3 if right else x + 3:.1f}" y="{TOP + 10 + 12 * i}" class="marker" '
                       f'fill="{colour}" text-anchor="{"end" if right else "start"}">{esc(label)} {fmt(value)} ms</text>')
    out += [f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" class="axis"/>',
            f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle" class="label">'
            'milliseconds (log scale)</text>',
            f'<text x="14" y="{TOP + plot_h / 2}" transform="rotate(-90 14 {TOP + plot_h / 2})" text-anchor="middle" '
            'class="label">% of tasks per decade</text>']
    return svg(out)


def runs(points: list[tuple[float, float | None]], log_y: bool) -> list[list[tuple[float, float]]]:
    """The unbroken stretches of a series (a missing value, or 0 on a log scale, breaks it)."""
    out: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None or (log_y and y <= 0):
            if out[-1]:
                out.append([])
        else:
            out[-1].append((x, y))
    return [run for run in out if run]


def legend(names: list[str]) -> list[str]:
    out, x = [], LEFT + 8
    for i, name in enumerate(names):
        colour = COLOURS[i % len(COLOURS)]
        out.append(f'<rect x="{x}" y="{TOP - 20}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 14}" y="{TOP - 11}" class="legend">{esc(name)}</text>')
        x += 22 + 7 * len(name)
    return out


def time_ticks(x_max: float) -> list[float]:
    step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600) if x_max / s <= 10), 7200)
    return [i * step for i in range(int(x_max // step) + 1)]


def log_bounds(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.1, 10.0
    low = 10 ** math.floor(math.log10(min(values)))
    high = 10 ** math.ceil(math.log10(max(values)))
    return low, high if high > low else low * 10


def log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks between two powers of ten."""
    ticks, decade = [], low
    while decade <= high * 1.0001:
        ticks += [decade * m for m in (1, 2, 5) if decade * m <= high * 1.0001]
        decade *= 10
    return ticks


def linear_ticks(value: float) -> tuple[float, list[tuple[float, str]]]:
    """The axis top and round ticks (a 1-2-5 step, at most 6 of them) for values up to `value`."""
    value = max(value, 1e-9)
    raw = value / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if raw <= m * magnitude)
    count = math.ceil(value / step - 1e-9)
    return step * count, [(step * i, fmt(step * i)) for i in range(count + 1)]


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def esc(text: str) -> str:
    return html.escape(str(text))


def svg(parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" role="img">{"".join(parts)}</svg>')
