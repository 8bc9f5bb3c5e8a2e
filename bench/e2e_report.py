"""The output of bench/e2e.py: medians over runs, the printed table, the JSON
and the latency-against-rate plot."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from math import nan
from pathlib import Path
from typing import Any

TARGET_RATIO = 0.5  # flat out, of the bare path on today's per-event records
TARGET_P99_S = {5_000: 2.0, 10_000: 3.0}  # p99 capture->queryable at these rates
TARGET_UNSATURATED = 10_000  # events/s the pipeline must keep up with


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
            "sent_p50_s": _med([i.get("sent_p50_s", float("nan")) for i in items]),
            "sent_p99_s": _med([i.get("sent_p99_s", float("nan")) for i in items]),
            "inserts_per_s": _med([i.get("inserts_per_s", float("nan")) for i in items]),
            "insert_ms": _med([i.get("insert_ms", float("nan")) for i in items]),
            "landed_all": all(i["landed"] >= i["sent"] for i in items),
            "saturated": sum(1 for i in items if i["saturated"]),
            "runs": len(items),
            "rss_max_mb": {p: _med([i["rss_max_mb"].get(p, 0.0) for i in items]) for p in procs},
            "cpu_cores": {
                p: _med([i["cpu_cores"].get(p, nan) for i in items])
                for p in sorted({p for i in items for p in i["cpu_cores"]})
            },
            "e2e_rate": _med([i["e2e_rate"] for i in items if i.get("e2e_rate")]),
            "events_per_record": _med([i["events_per_record"] for i in items]),
            "device_rate": items[0]["device_rate"],
            "people": items[0]["people"],
            "batch_sizes": items[0]["batch_sizes"],
        }
    e2e = _med([r["max"]["e2e_rate"] for r in runs])
    bare = _med([r["bare"]["rate"] for r in runs])

    def bare_per_cpu(run: dict[str, Any]) -> float:
        return float(run["bare"]["events"] / max(1e-6, run["bare"]["cpu_s"]))

    return {
        "phases": phases,
        "e2e_rate": e2e,
        "bare_rate": bare,
        "ratio": _med([r["max"]["e2e_rate"] / r["bare"]["rate"] for r in runs]),
        "e2e_per_cpu_s": _med([r["max"]["events_per_cpu_s"] for r in runs]),
        "bare_per_cpu_s": _med([bare_per_cpu(r) for r in runs]),
        "cpu_ratio": _med([r["max"]["events_per_cpu_s"] / bare_per_cpu(r) for r in runs]),
    }


def table(summary: dict[str, Any], runs: int) -> str:
    """The printed table (medians over `runs`), the batch sizes and the verdict
    on each target."""
    lines = [
        f"medians of {runs} run(s)",
        f"{'phase':<10} {'target/s':>9} {'sent/s':>9} {'e2e ev/s':>9} {'ev/rec':>6} "
        f"{'p50 s':>7} {'p99 s':>7} {'sdk p50':>7} {'sdk p99':>7} {'wkr p50':>7} "
        f"{'wkr p99':>7} {'ins/s':>6} {'ins ms':>6} {'worker MB':>10} "
        f"{'sink MB':>8} {'bench MB':>9} {'worker cpu':>10} {'sink cpu':>9} "
        f"{'ch cpu':>6} {'kafka cpu':>9} {'machine':>7}",
    ]
    for name, ph in summary["phases"].items():
        rss, cpu = ph["rss_max_mb"], ph["cpu_cores"]
        target = f"{ph['target_rate']:,.0f}" if ph["target_rate"] else "max"
        e2e = f"{ph['e2e_rate']:,.0f}" if ph["e2e_rate"] == ph["e2e_rate"] else ""
        lines.append(
            f"{name:<10} {target:>9} {ph['publish_rate']:>9,.0f} {e2e:>9} "
            f"{ph['events_per_record']:>6.1f} {ph['p50_s']:>7.2f} "
            f"{ph['p99_s']:>7.2f} {ph['sent_p50_s']:>7.2f} {ph['sent_p99_s']:>7.2f} "
            f"{ph['worker_p50_s']:>7.2f} {ph['worker_p99_s']:>7.2f} "
            f"{ph['inserts_per_s']:>6.1f} {ph['insert_ms']:>6.1f} "
            f"{rss.get('worker', 0):>10.0f} {rss.get('sink', 0):>8.0f} "
            f"{rss.get('bench', 0):>9.0f} {cpu.get('worker', 0):>10.2f} "
            f"{cpu.get('sink', 0):>9.2f} {cpu.get('clickhouse', nan):>6.2f} "
            f"{cpu.get('kafka', nan):>9.2f} {cpu.get('machine', nan):>7.2f}"
            + ("" if ph["landed_all"] else "  NOT ALL LANDED")
            + (f"  SATURATED in {ph['saturated']} of {ph['runs']}" if ph["saturated"] else "")
        )
    e2e, bare, ratio = summary["e2e_rate"], summary["bare_rate"], summary["ratio"]
    lines.append(
        "p50/p99: capture (ts) -> queryable in ClickHouse, the SDK's linger included; "
        "sdk: ts -> in capture.events (linger); wkr: ts -> in capture.clean (worker done); "
        "ins/s, ins ms: the sink's inserts into events and their mean wall time; "
        "ev/rec: events per DeviceBatch record; MB: peak RSS; cpu: cores used during the phase "
        "(ch, kafka: the local stack's servers, when their pidfiles are found; machine: "
        "every process, out of os.cpu_count())"
    )
    lines.append("batch sizes (events per record) of each phase's load:")
    for name, ph in summary["phases"].items():
        lines.append(
            f"  {name}: {ph['people']} devices at {ph['device_rate']:.1f} events/s per "
            f"active device; {ph['batch_sizes']}"
        )
    lines.append(
        f"end to end (max phase, device batches): {e2e:,.0f} events/s; bare path on "
        f"today's per-event records (consume + decode + insert): {bare:,.0f} events/s; "
        f"ratio {ratio:.2f}"
    )
    lines.append(
        "per CPU-second (less sensitive to other load): end to end "
        f"{summary['e2e_per_cpu_s']:,.0f} events per worker + sink CPU-s, bare path "
        f"{summary['bare_per_cpu_s']:,.0f} per CPU-s "
        f"of its process; ratio {summary['cpu_ratio']:.2f} (ClickHouse's own CPU in neither)"
    )
    verdicts = [f">= {TARGET_RATIO} of bare: {'MET' if ratio >= TARGET_RATIO else 'NOT MET'}"]
    for at, limit in TARGET_P99_S.items():
        ph = summary["phases"].get(f"{at:g}/s")
        if ph is None:
            verdicts.append(
                f"p99 <= {limit:g} s at {at:,}/s: not measured "
                "(not in --rates, or skipped past saturation)"
            )
        else:
            ok = ph["p99_s"] <= limit and ph["landed_all"]
            verdicts.append(
                f"p99 <= {limit:g} s at {at:,}/s: {'MET' if ok else 'NOT MET'} "
                f"({ph['p99_s']:.2f} s)"
            )
    ph = summary["phases"].get(f"{TARGET_UNSATURATED:g}/s")
    verdicts.append(
        f"{TARGET_UNSATURATED:,}/s not saturated: "
        + (
            "not measured"
            if ph is None
            else ("NOT MET" if ph["saturated"] * 2 > ph["runs"] else "MET")
        )
    )
    lines.append("targets: " + "; ".join(verdicts))
    return "\n".join(lines)


def top_costs(raw: Path, n: int = 15) -> str:
    """The top costs in py-spy's raw output (collapsed stacks: ``frame;frame count``):
    by own samples (the innermost frame) and by samples that include a function
    (leaving out the frames nearly every sample includes: the event loop, the CLI)."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        frames = stack.split(";")
        total += k
        own[frames[-1]] += k
        for frame in set(frames):
            incl[frame] += k
    if not total:
        return "  (no samples)"
    out = [f"  {total:,} samples; own time (innermost frame):"]
    out += [f"  {v / total:6.1%}  {f}" for f, v in own.most_common(n)]
    out.append("  including callees:")
    common = [(f, v) for f, v in incl.most_common() if v < 0.9 * total]
    out += [f"  {v / total:6.1%}  {f}" for f, v in common[:n]]
    return "\n".join(out)


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
    ax.scatter(
        list(TARGET_P99_S),
        list(TARGET_P99_S.values()),
        marker="_",
        s=400,
        color="tab:red",
        label="p99 targets ("
        + ", ".join(f"{v:g} s at {k:,}/s" for k, v in TARGET_P99_S.items())
        + ")",
    )
    e2e = summary["e2e_rate"]
    ax.axvline(e2e, color="grey", linestyle="--", label=f"max end to end {e2e:,.0f} ev/s")
    ax.set_xscale("log")
    ax.set_xticks([p["target_rate"] for _, p in fixed])
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.get_xaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("capture events/s (simulator -> capture SDK batches -> Kafka)")
    ax.set_ylabel("capture-to-queryable latency (s)")
    ax.set_title("Candor end to end on device batches (SDK linger included): landed_at - ts")
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
