"""The Grafana dashboard and the alert rules speak of series the code exports,
and every series the code exports is on the dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
DASHBOARD = REPO / "deploy" / "grafana" / "candor-pipeline.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
PACKAGES = ("candor", "streams", "sinks", "producers", "backends")
NAME = re.compile(r"candor_[a-z0-9_]+")
COLLECTOR = re.compile(r'\b(?:Counter|Gauge|Histogram|Summary|Info|Enum)\(\s*"(candor_[a-z0-9_]+)"')


def defined_metrics() -> set[str]:
    """Names given to a prometheus-client collector in the packages' source
    (``Counter("candor_...", ...)`` and the like)."""
    names: set[str] = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            names |= set(COLLECTOR.findall(path.read_text()))
    return names


def base_name(series: str, defined: set[str]) -> str:
    """The collector behind a sample name (histograms add _bucket/_sum/_count)."""
    for suffix in ("_bucket", "_sum", "_count"):
        if series.endswith(suffix) and series.removesuffix(suffix) in defined:
            return series.removesuffix(suffix)
    return series


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def referenced(text: str, defined: set[str]) -> set[str]:
    names = {base_name(n, defined) for n in NAME.findall(text)}
    # the lag alert selects both lag gauges with one regex on __name__
    if "candor_(worker|sink)_consumer_lag_records" in text:
        names |= {"candor_worker_consumer_lag_records", "candor_sink_consumer_lag_records"}
    return {n for n in names if not n.startswith("candor_(")}


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_referenced_series_is_exported(source: str) -> None:
    defined = defined_metrics()
    text = "\n".join(dashboard_exprs()) if source == "dashboard" else ALERTS.read_text()
    unknown = referenced(text, defined) - defined
    assert not unknown, f"{source} uses series no component exports: {sorted(unknown)}"


def test_every_exported_series_is_on_the_dashboard() -> None:
    defined = defined_metrics()
    missing = defined - referenced("\n".join(dashboard_exprs()), defined)
    assert not missing, f"not on the dashboard: {sorted(missing)}"


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    dash: dict[str, Any] = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert g["x"] + g["w"] <= 24, p["title"]
        assert not cells & mine, f"panel {p['title']!r} overlaps another"
        cells |= mine


def test_metric_names_follow_the_naming_rule() -> None:
    pattern = re.compile(
        r"candor_(worker|sink|producer|gateway|canary)_[a-z0-9_]+"
        r"_(total|seconds|records|bytes|rows|events|subjects|sessions)$"
    )
    bad = sorted(n for n in defined_metrics() if not pattern.match(n))
    assert not bad, bad
