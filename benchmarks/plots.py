"""PNG plots of a results file, beside it: req/s by target and scenario, and latency CDFs.

matplotlib is optional (`pip install -e '.[bench]'`, which `make bench` does); without it the
JSON is still written and `write_all` says plainly that the plots were skipped. Plots can be
redrawn from any results file: `python -m benchmarks plot benchmarks/results/<stamp>.json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COLORS = {
    "direct": "#7f7f7f",
    "routerd": "#d62728",
    "nginx": "#2ca02c",
    "haproxy": "#1f77b4",
    "gorouter": "#ff7f0e",
}
# Where the baseline (2 B GET, 64 connections, 2 workers, 1 route) sits on each axis.
BASELINE_VALUES = {
    "response size": "2 B",
    "request body": "GET",
    "connections": "64",
    "routerd workers": "2",
    "routes": "1",
}


def pyplot() -> tuple[Any, str]:
    """matplotlib's pyplot (drawing to files only), or None and why it cannot be had."""
    try:
        import matplotlib  # noqa: PLC0415 - optional dependency

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError as exc:
        return None, (
            f"plots skipped: matplotlib cannot be imported ({exc}); install the bench extra "
            "(`make bench` does, or `.venv/bin/pip install -e '.[bench]'`). The JSON is complete."
        )
    return plt, ""


def write_all(results: dict[str, Any], json_path: Path) -> list[str]:
    """Draw what the results hold; returns lines to print (what was written, or why not)."""
    if "samples" in results and "faults" in results:
        return write_soak(results, json_path)
    plt, why_not = pyplot()
    if plt is None:
        return [why_not]
    stem = json_path.with_suffix("")
    written: list[Path] = []
    for name, draw in (
        ("sweep", sweep_figure),
        ("latency", latency_figure),
        ("proxy", proxy_figure),
    ):
        if name in results:
            figure = draw(plt, results[name])
            path = Path(f"{stem}-{name}.png")
            figure.savefig(path, dpi=110)
            plt.close(figure)
            written.append(path)
    return [f"plot: {path}" for path in written]


def axes_of(sweep: dict[str, Any]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Scenarios grouped by the axis they vary, each axis starting from the baseline."""
    scenarios = sweep["scenarios"]
    baseline = scenarios.get("baseline")
    axes: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for scenario in scenarios.values():
        axis = scenario["scenario"]["axis"]
        if axis == "baseline":
            continue
        if axis not in axes:
            axes[axis] = [(BASELINE_VALUES[axis], baseline)] if baseline else []
        axes[axis].append((scenario["scenario"]["value"], scenario))
    if not axes and baseline:
        axes["baseline"] = [("baseline", baseline)]
    return axes


def sweep_figure(plt: Any, sweep: dict[str, Any]) -> Any:
    axes = axes_of(sweep)
    targets = sweep["targets"]
    figure, panels = plt.subplots(1, len(axes), figsize=(4 * len(axes) + 1, 4.5), squeeze=False)
    width = 0.8 / len(targets)
    for panel, (axis, points) in zip(panels[0], axes.items(), strict=True):
        for index, target in enumerate(targets):
            xs = [
                position + (index - (len(targets) - 1) / 2) * width
                for position in range(len(points))
            ]
            values = [scenario["median"][target]["rps"] for _, scenario in points]
            panel.bar(xs, values, width, label=target, color=COLORS.get(target))
            if target == "routerd":
                for x, (_, scenario), value in zip(xs, points, values, strict=True):
                    ratio = scenario["ratios"]["routerd"]["to_nginx"]
                    panel.annotate(f"{ratio:.2f}", (x, value), ha="center", va="bottom", fontsize=7)
        panel.set_xticks(range(len(points)), [value for value, _ in points])
        panel.set_title(axis)
        panel.set_ylabel("req/s (median round)")
        panel.ticklabel_format(axis="y", style="plain")
    panels[0][0].legend(fontsize=8)
    figure.suptitle("req/s by target and scenario (numbers over routerd: ratio to nginx)")
    figure.tight_layout()
    return figure


def latency_figure(plt: Any, latency: dict[str, Any]) -> Any:
    fractions = latency["fractions"]
    figure, panels = plt.subplots(
        1, len(fractions), figsize=(6 * len(fractions), 4.5), squeeze=False
    )
    for panel, (fraction, runs) in zip(panels[0], fractions.items(), strict=True):
        for target, report in runs.items():
            points = [(q, us / 1000) for q, us in report["cdf_us"] if 0 < q < 1]
            label = f"{target} ({report['target_rps']:,.0f}/s)"
            panel.plot(
                [ms for _, ms in points],
                [q for q, _ in points],
                label=label,
                color=COLORS.get(target),
            )
        panel.set_xscale("log")
        panel.set_yscale("logit")
        panel.set_ylim(0.05, 0.9999)
        panel.set_yticks([0.5, 0.9, 0.99, 0.999], ["p50", "p90", "p99", "p99.9"])
        panel.set_xlabel("latency from scheduled send, ms (log)")
        panel.set_title(f"open loop at {float(fraction):.0%} of each target's peak")
        panel.grid(True, which="both", alpha=0.3)
        panel.legend(fontsize=8)
    figure.tight_layout()
    return figure


def proxy_figure(plt: Any, proxy: dict[str, Any]) -> Any:
    figure, panel = plt.subplots(figsize=(10, 4.5))
    names = list(proxy["best"])
    values = [proxy["best"][name]["rps"] for name in names]
    bars = panel.bar(
        [proxy["labels"][name] for name in names],
        values,
        color=[COLORS.get(n.removesuffix("-log"), "#9467bd") for n in names],
    )
    # A target's access-log row: its colour, hatched.
    for bar, name in zip(bars, names, strict=True):
        if name.endswith("-log"):
            bar.set_hatch("//")
    panel.set_ylabel("req/s (best round)")
    panel.set_title("proxy benchmark: 12 B GET, 64 connections")
    for label in panel.get_xticklabels():
        label.set(rotation=30, horizontalalignment="right", fontsize=7)
    figure.tight_layout()
    return figure


def redraw(json_path: Path) -> list[str]:
    return write_all(json.loads(json_path.read_text()), json_path)


def write_soak(results: dict[str, Any], json_path: Path) -> list[str]:
    """The soak's plot, `<results>.png` beside its JSON."""
    plt, why_not = pyplot()
    if plt is None:
        return [why_not]
    figure = soak_figure(plt, results)
    path = json_path.with_suffix(".png")
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return [f"plot: {path}"]


def soak_figure(plt: Any, results: dict[str, Any]) -> Any:
    """Failures, routes and RSS over time, with each fault's turn shaded and named."""
    samples = results["samples"]
    times = [sample["t"] for sample in samples]
    figure, (failures, routes, memory) = plt.subplots(3, 1, figsize=(12, 9), sharex=True)
    for key, label, color in (
        ("traffic_failed", "traffic", "#d62728"),
        ("probe_failures", "probes", "#ff7f0e"),
        ("keepalive_failures", "keep-alive rounds", "#9467bd"),
    ):
        failures.plot(times, [s.get(key, 0) for s in samples], color=color, label=label)
    failures.set_ylabel("requests without a 2xx, excused ones too (cumulative)")
    verdict = results["verdict"]
    failures.set_title(
        f"soak: {verdict['failures']:,} failures, {verdict['excused']:,} excused "
        f"({'passed' if verdict['passed'] else 'FAILED'}); shaded: fault turns"
    )
    failures.legend(fontsize=8, loc="center left")
    routes.plot(times, [s["urls"] for s in samples], color="#d62728", label="/varz urls")
    routes.plot(
        times, [s["expected_routes"] for s in samples], "--", color="#7f7f7f", label="expected"
    )
    routes.set_ylabel("routes")
    # Room above the count: a steady line would otherwise sit on the frame and not show.
    highest = max([s["expected_routes"] for s in samples] + [s["urls"] for s in samples] + [1])
    routes.set_ylim(0, highest * 1.15)
    routes.legend(fontsize=8, loc="lower left")
    memory.plot(times, [s["supervisor_rss_kib"] / 1024 for s in samples], label="supervisor")
    for index in range(max((len(s["worker_rss_kib"]) for s in samples), default=0)):
        memory.plot(
            times,
            [
                s["worker_rss_kib"][index] / 1024 if index < len(s["worker_rss_kib"]) else None
                for s in samples
            ],
            label=f"worker {index}",
        )
    memory.set_ylabel("RSS, MiB")
    memory.set_xlabel("seconds")
    memory.legend(fontsize=8, loc="lower right")
    for number, window in enumerate(results["windows"]):
        end = window["end"] if window["end"] is not None else (times[-1] if times else 0)
        for panel in (failures, routes, memory):
            panel.axvspan(window["start"], end, alpha=0.12 if number % 2 else 0.06, color="k")
        failures.annotate(
            window["name"],
            (window["start"], 1),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            fontsize=7,
        )
    figure.tight_layout()
    return figure
