"""The deployable manifests, validated offline.

- The Helm chart (deploy/k8s/candor): `helm lint`, then `helm template` through
  `kubeconform -strict` against JSON schemas generated from Kubernetes' own OpenAPI
  document (deploy/local/manifest_tools.sh builds helm and kubeconform through the Go
  module proxy and generates the schemas). KEDA's ScaledObject and the Prometheus
  operator's PodMonitor have no schema there; their fields are checked here.
- The operators' custom resources (deploy/k8s/operators): the fields Strimzi's and
  Altinity's documentation mark required, and the topics matching `candor topics create`.
- The compose file (deploy/compose.yaml): the compose-spec schema (check-jsonschema).

Needs the tools of `deploy/local/manifest_tools.sh install` (bootstrap.sh runs it); it
opens no socket.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from backends.kafka.topics import topic_specs
from candor.settings import Settings
from tests.harness import REPO

CHART = REPO / "deploy" / "k8s" / "candor"
OPERATORS = REPO / "deploy" / "k8s" / "operators"
COMPOSE = REPO / "deploy" / "compose.yaml"
KUBE_VERSION = "1.34.1"
SECRETS = [
    "--set",
    "secrets.values.masterKey=" + "0" * 64,
    "--set",
    "secrets.values.analystPassword=analyst",
]


def _tools() -> dict[str, str]:
    proc = subprocess.run(
        ["bash", str(REPO / "deploy" / "local" / "manifest_tools.sh"), "env"],
        capture_output=True,
        text=True,
        check=True,
    )
    tools = dict(line.split("=", 1) for line in proc.stdout.split())
    missing = [p for p in tools.values() if not Path(p).exists()]
    assert not missing, f"run deploy/local/manifest_tools.sh install first: {missing} missing"
    return tools


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    return _tools()


def _schemas(tools: dict[str, str]) -> str:
    """kubeconform's template for the generated schemas (its default file names)."""
    return tools["K8S_SCHEMAS"] + "/{{ .ResourceKind }}{{ .KindSuffix }}.json"


def _run(*args: str) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(args[:3])} ...:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _template(tools: dict[str, str], *values: str) -> list[dict[str, Any]]:
    out = _run(
        tools["HELM"],
        "template",
        "rel",
        str(CHART),
        "--kube-version",
        KUBE_VERSION,
        *SECRETS,
        *values,
    )
    return [d for d in yaml.safe_load_all(out) if d]


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _kinds(docs: list[dict[str, Any]], kind: str) -> Iterator[dict[str, Any]]:
    return (d for d in docs if d["kind"] == kind)


def test_chart_lints_and_renders_valid_kubernetes_objects(
    tools: dict[str, str], tmp_path: Path
) -> None:
    _run(tools["HELM"], "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, *SECRETS)
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(
        _run(tools["HELM"], "template", "rel", str(CHART), "--kube-version", KUBE_VERSION, *SECRETS)
    )
    out = _run(
        tools["KUBECONFORM"],
        "-strict",
        "-summary",
        "-output",
        "text",
        "-schema-location",
        _schemas(tools),
        "-skip",
        "ScaledObject,PodMonitor",
        str(rendered),
    )
    assert "Invalid: 0, Errors: 0" in out, out


def test_kubeconform_catches_a_misspelled_field(tools: dict[str, str], tmp_path: Path) -> None:
    """The schemas are strict: a field Kubernetes does not know fails the check."""
    rendered = _run(
        tools["HELM"], "template", "rel", str(CHART), "--kube-version", KUBE_VERSION, *SECRETS
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(rendered.replace("minAvailable:", "minAvailible:", 1))
    proc = subprocess.run(
        [
            tools["KUBECONFORM"],
            "-strict",
            "-schema-location",
            _schemas(tools),
            "-skip",
            "ScaledObject,PodMonitor",
            str(bad),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and "minAvailible" in proc.stdout


def test_chart_objects_do_what_the_values_say(tools: dict[str, str]) -> None:
    docs = _template(tools)
    deployments = {d["metadata"]["name"]: d for d in _kinds(docs, "Deployment")}
    assert set(deployments) == {f"rel-candor-{c}" for c in ("gateway", "worker", "sink", "portal")}
    pdbs = {d["metadata"]["name"] for d in _kinds(docs, "PodDisruptionBudget")}
    assert pdbs == set(deployments)
    hpa = next(_kinds(docs, "HorizontalPodAutoscaler"))
    assert hpa["spec"]["scaleTargetRef"]["name"] == "rel-candor-gateway"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    for d in deployments.values():
        container = d["spec"]["template"]["spec"]["containers"][0]
        assert container.get("readinessProbe") and container.get("livenessProbe")
        env = {e["name"]: e for e in container["env"]}
        assert env["CANDOR_PRIVACY__MASTER_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "master-key"
        assert env["CANDOR_CLICKHOUSE__CLUSTER"]["value"] == "candor"
        assert env["CANDOR_KAFKA__MIN_INSYNC_REPLICAS"]["value"] == "2"
        # /metrics binds the pod's address, where the PodMonitor and the probes reach it
        assert env["CANDOR_METRICS_HOST"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    for name in ("rel-candor-worker", "rel-candor-sink"):
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}, name

    # workers and sinks scale on their consumer group's lag, never beyond the partitions
    scaled = {d["metadata"]["name"]: d for d in _kinds(docs, "ScaledObject")}
    assert set(scaled) == {"rel-candor-worker", "rel-candor-sink"}
    for name, obj in scaled.items():
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        assert obj["spec"]["scaleTargetRef"]["name"] == name
        assert obj["spec"]["maxReplicaCount"] <= 12
        trigger = obj["spec"]["triggers"][0]
        assert trigger["type"] == "kafka"
        assert {"bootstrapServers", "consumerGroup", "topic", "lagThreshold"} <= set(
            trigger["metadata"]
        )
    assert (
        scaled["rel-candor-worker"]["spec"]["triggers"][0]["metadata"]["consumerGroup"]
        == "candor-streams"
    )

    monitor = next(_kinds(docs, "PodMonitor"))
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "candor"
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} == {"http", "metrics"}

    # only the gateway and the portal take traffic from outside the monitoring namespace
    policies = list(_kinds(docs, "NetworkPolicy"))
    open_to_all = {
        p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
        for p in policies
        if any("from" not in rule for rule in p["spec"].get("ingress", []))
    }
    assert open_to_all == {"gateway", "portal"}
    assert any(
        p["spec"].get("ingress") is None and p["spec"]["policyTypes"] == ["Ingress"]
        for p in policies
    ), "no default deny"

    secret = next(_kinds(docs, "Secret"))
    assert {"master-key", "analyst-password"} <= set(secret["stringData"])


def test_chart_refuses_to_render_without_a_master_key(tools: dict[str, str]) -> None:
    proc = subprocess.run(
        [tools["HELM"], "template", "rel", str(CHART), "--kube-version", KUBE_VERSION],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and "masterKey" in proc.stderr


def test_an_existing_secret_replaces_the_charts_own(tools: dict[str, str]) -> None:
    docs = _template(tools, "--set", "secrets.existingSecret=prod-candor")
    assert not list(_kinds(docs, "Secret"))
    gateway = next(
        d for d in _kinds(docs, "Deployment") if d["metadata"]["name"].endswith("gateway")
    )
    env = {e["name"]: e for e in gateway["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CANDOR_PRIVACY__MASTER_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "prod-candor"


def test_strimzi_kafka_is_kraft_with_three_nodes_and_production_durability() -> None:
    docs = _docs(OPERATORS / "kafka.yaml")
    kafka = next(_kinds(docs, "Kafka"))
    pool = next(_kinds(docs, "KafkaNodePool"))
    for d in (kafka, pool):
        assert d["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert kafka["metadata"]["annotations"] == {
        "strimzi.io/node-pools": "enabled",
        "strimzi.io/kraft": "enabled",
    }
    spec = kafka["spec"]["kafka"]
    assert "zookeeper" not in kafka["spec"]
    assert spec["listeners"] and all(
        {"name", "port", "type", "tls"} <= set(listener) for listener in spec["listeners"]
    )
    assert spec["version"].startswith("3.9")
    assert spec["config"]["min.insync.replicas"] == 2
    assert spec["config"]["default.replication.factor"] == 3
    assert "topicOperator" in kafka["spec"]["entityOperator"]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert pool["spec"]["replicas"] == 3
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert pool["spec"]["storage"]["type"] in {"jbod", "persistent-claim", "ephemeral"}


def test_a_kafka_topic_for_every_candor_topic_as_topics_create_makes_it() -> None:
    docs = _docs(OPERATORS / "topics.yaml")
    topics = {d["spec"]["topicName"]: d for d in _kinds(docs, "KafkaTopic")}
    production = Settings(local_stack=False)  # replication 3, min.insync.replicas 2
    specs = {s.name: s for s in topic_specs(production)}
    assert set(topics) == set(specs)
    for name, topic in topics.items():
        assert topic["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "candor"
        assert topic["spec"]["partitions"] == 12
        assert topic["spec"]["replicas"] == production.kafka.replicas() == 3
        want = specs[name].config(production.kafka.min_insync())
        got = {k: str(v) for k, v in topic["spec"]["config"].items()}
        assert {k: got.get(k) for k in want} == want, name


def test_altinity_clickhouse_has_two_shards_of_two_replicas_and_a_keeper() -> None:
    docs = _docs(OPERATORS / "clickhouse.yaml")
    chi = next(_kinds(docs, "ClickHouseInstallation"))
    chk = next(_kinds(docs, "ClickHouseKeeperInstallation"))
    assert chi["apiVersion"] == "clickhouse.altinity.com/v1"
    assert chk["apiVersion"] == "clickhouse-keeper.altinity.com/v1"
    cluster = chi["spec"]["configuration"]["clusters"][0]
    assert cluster["name"] == "candor"  # the chart's clickhouse.cluster
    assert cluster["layout"] == {"shardsCount": 2, "replicasCount": 2}
    assert chi["spec"]["configuration"]["zookeeper"]["nodes"]
    assert chi["spec"]["configuration"]["profiles"]["default/distributed_foreground_insert"] == 1
    assert chk["spec"]["configuration"]["clusters"][0]["layout"]["replicasCount"] == 3
    for installation in (chi, chk):
        templates = installation["spec"]["templates"]
        assert all(t["name"] and t["spec"]["containers"] for t in templates["podTemplates"])


def test_compose_file_matches_the_compose_specification() -> None:
    check = REPO / ".venv" / "bin" / "check-jsonschema"
    _run(str(check), "--builtin-schema", "vendor.compose-spec", str(COMPOSE))
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {
        "kafka-1",
        "kafka-2",
        "kafka-3",
        "clickhouse",
        "gateway",
        "worker-1",
        "worker-2",
        "sink-1",
        "sink-2",
        "prometheus",
        "grafana",
    } <= set(services)
    assert all(services[f"kafka-{i}"]["image"].startswith("apache/kafka:3.9") for i in (1, 2, 3))
    for mount in (
        v.split(":")[0]
        for s in services.values()
        for v in s.get("volumes", [])
        if v.startswith("./")
    ):
        assert (COMPOSE.parent / mount).exists(), mount
