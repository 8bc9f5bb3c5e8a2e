"""The output of bench/e2e.py: medians over runs, the printed table, the JSON
and the latency-against-rate plot."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

TARGET_RATE = 20_000.0
TARGET_RATIO = 0.3
TARGET_P99_S = 2.0
TARGET_P99_AT = 5_000


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over runs: per rate phase (p50, p99, peak RSS, CPU) and of the
    max-throughput and bare-path figures."""
    rates: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        for phase in run["phases"]:
            rates.setdefault(phase["name"], []).append(phase)
    phases = {}
    for name, items in rates.items():
        procs = sorted({p for i in items for p in i["rss_max_mb"]})
        phases[name] = {
            "target_rate": items[0]["target_rate"],
            "publish_rate": _med([i["publish_rate"] for i in items]),
            "p50_s": _med([i["p50_s"] for i in items]),
            "p99_s": _med([i["p99_s"] for i in items]),
            "worker_p50_s": _med([i["worker_p50_s"] for i in items]),
            "worker_p99_s": _med([i["worker_p99_s"] for i in items]),
            "landed_all": all(i["landed"] >= i["sent"] for i in items),
            "saturated": sum(1 for i in items if i["saturated"]),
            "runs": len(items),
            "rss_max_mb": {p: _med([i["rss_max_mb"].get(p, 0.0) for i in items]) for p in procs},
            "cpu_cores": {p: _med([i["cpu_cores"].get(p, 0.0) for i in items]) for p in procs},
            "e2e_rate": _med([i["e2e_rate"] for i in items if i.get("e2e_rate")]),
        }
    e2e = _med([r["max"]["e2e_rate"] for r in runs])
    bare = _med([r["bare"]["rate"] for r in runs])
    return {
        "phases": phases,
        "e2e_rate": e2e,
        "bare_rate": bare,
        "ratio": _med([r["max"]["e2e_rate"] / r["bare"]["rate"] for r in runs]),
    }


def table(summary: dict[str, Any], runs: int) -> str:
    """The printed table (medians over `runs`) and the verdict on each target."""
    lines = [
        f"medians of {runs} run(s)",
        f"{'phase':<10} {'target/s':>9} {'sent/s':>9} {'e2e ev/s':>9} {'p50 s':>7} "
        f"{'p99 s':>7} {'wkr p50':>7} {'wkr p99':>7} {'worker MB':>10} {'sink MB':>8} "
        f"{'bench MB':>9} {'worker cpu':>10} {'sink cpu':>9}",
    ]
    for name, ph in summary["phases"].items():
        rss, cpu = ph["rss_max_mb"], ph["cpu_cores"]
        target = f"{ph['target_rate']:,.0f}" if ph["target_rate"] else "max"
        e2e = f"{ph['e2e_rate']:,.0f}" if ph["e2e_rate"] == ph["e2e_rate"] else ""
        lines.append(
            f"{name:<10} {target:>9} {ph['publish_rate']:>9,.0f} {e2e:>9} {ph['p50_s']:>7.2f} "
            f"{ph['p99_s']:>7.2f} {ph['worker_p50_s']:>7.2f} {ph['worker_p99_s']:>7.2f} "
            f"{rss.get('worker', 0):>10.0f} {rss.get('sink', 0):>8.0f} "
            f"{rss.get('bench', 0):>9.0f} {cpu.get('worker', 0):>10.2f} "
            f"{cpu.get('sink', 0):>9.2f}"
            + ("" if ph["landed_all"] else "  NOT ALL LANDED")
            + (f"  SATURATED in {ph['saturated']} of {ph['runs']}" if ph["saturated"] else "")
        )
    e2e, bare, ratio = summary["e2e_rate"], summary["bare_rate"], summary["ratio"]
    lines.append(
        "p50/p99: ts -> queryable in ClickHouse; wkr: ts -> in capture.clean "
        "(worker done); MB: peak RSS; cpu: cores used during the phase"
    )
    lines.append(
        f"end to end (max phase): {e2e:,.0f} events/s; bare path (consume + decode + "
        f"insert): {bare:,.0f} events/s; ratio {ratio:.2f}"
    )
    at = summary["phases"].get(f"{TARGET_P99_AT:g}/s")
    p99 = at["p99_s"] if at else float("nan")
    lines.append(
        "targets: "
        f">= {TARGET_RATE:,.0f} ev/s: {'MET' if e2e >= TARGET_RATE else 'NOT MET'}; "
        f">= {TARGET_RATIO} of bare: {'MET' if ratio >= TARGET_RATIO else 'NOT MET'}; "
        f"p99 <= {TARGET_P99_S} s at {TARGET_P99_AT:,}/s: "
        + (
            "not measured (not in --rates, or skipped past saturation)"
            if at is None
            else f"{'MET' if p99 <= TARGET_P99_S else 'NOT MET'} ({p99:.2f} s)"
        )
    )
    return "\n".join(lines)


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def plot(path: Path, runs: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Latency p50/p99 against publish rate: each run's points, median lines,
    the p99 target, and the median max end-to-end throughput as a vertical line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fixed = [(n, p) for n, p in summary["phases"].items() if p["target_rate"]]
    fixed.sort(key=lambda item: item[1]["target_rate"])
    fig, ax = plt.subplots(figsize=(8, 5))
    for key, colour, label in (("p50_s", "tab:blue", "p50"), ("p99_s", "tab:red", "p99")):
        xs = [p["target_rate"] for _, p in fixed]
        ax.plot(
            xs,
            [p[key] for _, p in fixed],
            "o-",
            color=colour,
            label=f"{label} (median of {len(runs)})",
        )
        for run in runs:
            pts = [(ph["target_rate"], ph[key]) for ph in run["phases"] if ph["target_rate"]]
            ax.scatter([x for x, _ in pts], [y for _, y in pts], color=colour, alpha=0.3, s=14)
    ax.axhline(TARGET_P99_S, color="tab:red", linestyle=":", label=f"p99 target {TARGET_P99_S} s")
    e2e = summary["e2e_rate"]
    ax.axvline(e2e, color="grey", linestyle="--", label=f"max end to end {e2e:,.0f} ev/s")
    ax.set_xscale("log")
    ax.set_xticks([p["target_rate"] for _, p in fixed])
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.get_xaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("capture events/s published (simulator -> Kafka)")
    ax.set_ylabel("capture-to-queryable latency (s)")
    ax.set_title("Candor end to end: events.landed_at - ts")
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
