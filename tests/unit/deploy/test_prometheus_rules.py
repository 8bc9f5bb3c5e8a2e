"""deploy/prometheus: the scrape config and the alert rules are valid for the
Prometheus we ship (promtool), and the alerts fire in the situations they are
written for (promtool test rules over deploy/prometheus/alerts_test.yml)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PROM = REPO / "deploy" / "prometheus"

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian package prometheus) is not installed"
)


def promtool(*args: str, cwd: Path = PROM) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),
    ],
)
def test_promtool_accepts(args: tuple[str, ...]) -> None:
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_scrape_config_covers_every_component_port() -> None:
    text = (PROM / "prometheus.yml").read_text()
    for job, ports in {
        "candor-gateway": [8088],
        "candor-worker": [9401, 9402, 9403],
        "candor-sink": [9411, 9412, 9413],
        "candor-producer": [9421, 9422],
        "candor-canary": [9431],
    }.items():
        block = text.split(f"job_name: {job}\n", 1)[1].split("job_name:", 1)[0]
        assert sorted(int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", block)) == ports, job


@pytest.mark.parametrize(
    ("alert", "original", "broken"),
    [
        (
            "CandorCanaryStale",
            "max(candor_canary_age_seconds) > 60",
            "max(candor_canary_age_seconds) > 600",
        ),
        (
            "CandorConsumerLagGrowing",
            'consumer_lag_records"})) > 1000',
            'consumer_lag_records"})) > 100000',
        ),
        (
            "CandorSpoolGrowing",
            "deriv(candor_producer_spool_depth_records[10m]) > 0",
            "deriv(candor_producer_spool_depth_records[10m]) < 0",
        ),
    ],
)
def test_rule_tests_catch_a_broken_rule(
    tmp_path: Path, alert: str, original: str, broken: str
) -> None:
    """The rule tests can fail: a rule with a wrong threshold no longer passes them."""
    rules = (PROM / "alerts.yml").read_text()
    assert original in rules
    (tmp_path / "alerts.yml").write_text(rules.replace(original, broken))
    shutil.copy(PROM / "alerts_test.yml", tmp_path / "alerts_test.yml")
    result = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert f"alertname: {alert}" in result.stdout + result.stderr
