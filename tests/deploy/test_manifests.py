"""The Kubernetes manifests: every overlay renders and validates strictly offline, and the
production overlay has what an operator relies on, asserted on the rendered YAML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from deploy.tools import gen
from sbcontracts.topics import ALL_TOPICS, BY_NAME
from tests.deploy.conftest import OVERLAYS, ROOT, validate

SERVICES = tuple(s.name for s in gen.SERVICES)
SCHEMAS = ROOT / "deploy" / "validate" / "schemas"


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def server(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "server"
    ]
    return container


# --- generated files and strict validation ---------------------------------------------------


def test_generated_manifests_are_current() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, content in gen.outputs().items()
        if not path.exists() or path.read_text() != content
    ]
    assert not stale, f"run `make manifests` and commit the result; out of date: {stale}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_strictly(
    overlay: str, sbk8s: Path, rendered_text: dict[str, str]
) -> None:
    result = validate(sbk8s, rendered_text[overlay])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "documents valid" in result.stderr


BROKEN = {
    "unknown field": (
        "spec:\n  replicas: 1\n  selector: {matchLabels: {a: b}}\n  template:\n"
        "    metadata: {labels: {a: b}}\n"
        "    spec: {containers: [{name: c, image: i, livenessprobe: {}}]}\n"
    ),
    "wrong type": (
        "spec:\n  replicas: two\n  selector: {matchLabels: {a: b}}\n  template:\n"
        "    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: i}]}\n"
    ),
    "missing image": (
        "spec:\n  selector: {matchLabels: {a: b}}\n  template:\n"
        "    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c}]}\n"
    ),
    "selector not matching the template": (
        "spec:\n  selector: {matchLabels: {a: b}}\n  template:\n"
        "    metadata: {labels: {a: c}}\n    spec: {containers: [{name: c, image: i}]}\n"
    ),
    "bad quantity": (
        "spec:\n  selector: {matchLabels: {a: b}}\n  template:\n"
        "    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: i,"
        " resources: {limits: {memory: lots}}}]}\n"
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_validator_rejects_what_the_api_server_would(case: str, sbk8s: Path) -> None:
    doc = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n" + BROKEN[case]
    result = validate(sbk8s, doc)
    assert result.returncode == 1, result.stdout + result.stderr


def test_validator_rejects_unknown_kinds(sbk8s: Path) -> None:
    result = validate(sbk8s, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    assert result.returncode == 1
    assert "unknown" in result.stdout


# --- custom resources against the fields we use ----------------------------------------------

CUSTOM_SCHEMAS = {
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): "kafkatopic.kafka.strimzi.io-v1beta2.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.keda.sh-v1alpha1.json",
}


def schema_for(doc: dict[str, Any]) -> dict[str, Any]:
    name = CUSTOM_SCHEMAS[(doc["apiVersion"], doc["kind"])]
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    return schema


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_match_their_schema(
    overlay: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    custom = [d for d in rendered[overlay] if "." in d["apiVersion"].split("/")[0]]
    for doc in custom:
        if (doc["apiVersion"], doc["kind"]) not in CUSTOM_SCHEMAS:
            continue  # a built-in group (apps, networking.k8s.io...): checked by sbk8s
        jsonschema.validate(doc, schema_for(doc), cls=jsonschema.Draft202012Validator)
    if overlay == "keda":
        assert of_kind(custom, "ScaledObject")


def test_custom_resource_schemas_reject_typos(rendered: dict[str, list[dict[str, Any]]]) -> None:
    topic = next(iter(of_kind(rendered["prod-topics"], "KafkaTopic").values()))
    typo = {**topic, "spec": {**topic["spec"], "partition": 3}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(typo, schema_for(topic))
    scaled = next(iter(of_kind(rendered["keda"], "ScaledObject").values()))
    trigger = {**scaled["spec"]["triggers"][0]}
    trigger["metadata"] = {**trigger["metadata"], "lagThreshold": 100}
    bad = {**scaled, "spec": {**scaled["spec"], "triggers": [trigger]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema_for(scaled))


# --- topics ------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", ["prod-topics", "dev"])
def test_kafka_topics_follow_the_registry(
    overlay: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    topics = {d["spec"]["topicName"]: d for d in of_kind(rendered[overlay], "KafkaTopic").values()}
    expected = {t.name: t for t in ALL_TOPICS} | {t.dlq: t for t in ALL_TOPICS}
    assert set(topics) == set(expected)
    for name, t in expected.items():
        spec = topics[name]["spec"]
        assert spec["partitions"] == t.partitions, name
        assert spec["config"]["retention.ms"] == t.retention_ms, name
        assert spec["config"]["cleanup.policy"] == ("compact" if t.compacted else "delete")
        assert spec["config"]["min.insync.replicas"] <= spec["replicas"], name
        assert spec["replicas"] == (3 if overlay == "prod-topics" else 1)


# --- KEDA ---------------------------------------------------------------------------------------


def test_keda_scales_every_consumer_group_within_partitions(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["keda"]
    scaled = of_kind(docs, "ScaledObject")
    consumers = gen.consumers()
    assert {c.service for c in consumers} == set(scaled)
    deployments = of_kind(docs, "Deployment")
    hpas = of_kind(docs, "HorizontalPodAutoscaler")
    for name, so in scaled.items():
        spec = so["spec"]
        assert spec["scaleTargetRef"]["name"] in deployments
        assert name not in hpas, "KEDA's HPA and ours would fight over the replica count"
        lag = [t for t in spec["triggers"] if t["type"] == "kafka"]
        assert {(t["metadata"]["consumerGroup"], t["metadata"]["topic"]) for t in lag} == {
            (c.group, topic) for c in consumers if c.service == name for topic in c.topics
        }
        for t in lag:
            partitions = BY_NAME[t["metadata"]["topic"].removesuffix(".dlq")].partitions
            assert spec["maxReplicaCount"] <= partitions
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert set(hpas) == set(SERVICES) - set(scaled)


def test_hpa_never_scales_a_consumer_past_its_partitions(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for overlay in ("dev", "prod"):
        hpas = of_kind(rendered[overlay], "HorizontalPodAutoscaler")
        for c in gen.consumers():
            for topic in c.topics:
                partitions = BY_NAME[topic.removesuffix(".dlq")].partitions
                assert hpas[c.service]["spec"]["maxReplicas"] <= partitions, (overlay, c.group)


# --- production overlay: what every service must have -----------------------------------------


@pytest.fixture(scope="module")
def prod(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered["prod"]


def config_value(docs: list[dict[str, Any]], container: dict[str, Any], var: str) -> str | None:
    maps = of_kind(docs, "ConfigMap")
    value = None
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref:
            value = maps[ref["name"]]["data"].get(var, value)
    for env in container.get("env", []):
        if env["name"] == var:
            value = env.get("value", value)
    return value


@pytest.mark.parametrize("svc", SERVICES)
def test_prod_deployment_has_probes_limits_and_a_locked_down_pod(
    svc: str, prod: list[dict[str, Any]]
) -> None:
    deployment = of_kind(prod, "Deployment")[svc]
    pod = deployment["spec"]["template"]["spec"]
    c = server(deployment)
    port = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert port["http"] == 8000
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in ("http", 8000)
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind]), kind
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    # consumers are ready once in their group (even without a partition), so every service
    # surges and never removes a ready pod first
    assert rolling["maxUnavailable"] == 0 and rolling["maxSurge"] not in (0, "0%")

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert "add" not in sc["capabilities"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] in of_kind(prod, "ServiceAccount")

    drain = float(config_value(prod, c, "SB_DRAIN_TIMEOUT_S") or 20)
    pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
    # uvicorn's graceful shutdown is drain + 5 s (sbkit.serve), after the preStop sleep
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain + 5


@pytest.mark.parametrize("svc", SERVICES)
def test_prod_service_has_hpa_pdb_service_and_migration_job(
    svc: str, prod: list[dict[str, Any]]
) -> None:
    deployment = of_kind(prod, "Deployment")[svc]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict[str, str]) -> bool:
        return all(pod_labels.get(k) == v for k, v in selector.items())

    hpa = of_kind(prod, "HorizontalPodAutoscaler")[svc]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": svc,
    }
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"]

    pdbs = [p for p in of_kind(prod, "PodDisruptionBudget").values()]
    (pdb,) = [p for p in pdbs if selects(p["spec"]["selector"]["matchLabels"])]
    # with at least two replicas, one may go: a node drain never takes the service down
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable") == 1

    service = of_kind(prod, "Service")[svc]
    assert selects(service["spec"]["selector"])
    assert service["spec"]["ports"][0]["targetPort"] == "http"

    job = of_kind(prod, "Job")[f"{svc}-migrate"]
    job_pod = job["spec"]["template"]["spec"]
    (migrate,) = job_pod["containers"]
    assert migrate["command"] == ["switchboard", "migrate", svc]
    assert migrate["image"] == server(deployment)["image"]
    assert migrate["securityContext"]["readOnlyRootFilesystem"] is True
    assert job_pod["securityContext"]["runAsNonRoot"] is True
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    assert not all(job_labels.get(k) == v for k, v in service["spec"]["selector"].items()), (
        "migration pods must not receive traffic"
    )


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_migration_jobs_can_be_applied_first(
    overlay: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    """`kubectl apply -k <overlay> -l switchboard.dev/apply-first=true` brings all a Job needs."""
    docs = rendered[overlay]
    first = {
        (d["kind"], d["metadata"]["name"])
        for d in docs
        if d["metadata"].get("labels", {}).get("switchboard.dev/apply-first") == "true"
    }
    present = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for job in of_kind(docs, "Job").values():
        assert ("Job", job["metadata"]["name"]) in first
        pod = job["spec"]["template"]["spec"]
        needs = {("ServiceAccount", pod["serviceAccountName"])}
        for c in pod["containers"]:
            needs |= {("ConfigMap", e["configMapRef"]["name"]) for e in c.get("envFrom", [])}
            needs |= {
                ("Secret", e["valueFrom"]["secretKeyRef"]["name"])
                for e in c.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            }
        # Secrets absent from the render are the operator's (prod), created before install
        assert {n for n in needs if n in present} <= first, job["metadata"]["name"]


def test_prod_images_are_pinned(prod: list[dict[str, Any]]) -> None:
    for d in of_kind(prod, "Deployment").values():
        image = server(d)["image"]
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image


def test_ingress_routes_each_prefix_to_its_service(prod: list[dict[str, Any]]) -> None:
    (ingress,) = of_kind(prod, "Ingress").values()
    routes = {
        p["path"]: p["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    expected = {prefix: s.name for s in gen.SERVICES for prefix in s.prefixes}
    assert routes == expected
    assert len(expected) == sum(len(s.prefixes) for s in gen.SERVICES), "prefixes collide"
    for internal in ("/metrics", "/healthz", "/readyz", "/"):
        assert internal not in routes
    assert ingress["spec"]["tls"]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_ingest_knows_its_public_url(
    overlay: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    """Provider signatures (Twilio) cover the public URL, which the pod cannot see itself."""
    docs = rendered[overlay]
    (ingress,) = of_kind(docs, "Ingress").values()
    host = ingress["spec"]["rules"][0]["host"]
    scheme = "https" if ingress["spec"].get("tls") else "http"
    c = server(of_kind(docs, "Deployment")["ingest"])
    assert config_value(docs, c, "SB_INGEST_PUBLIC_BASE_URL") == f"{scheme}://{host}"


def test_network_policies_deny_by_default(prod: list[dict[str, Any]]) -> None:
    policies = of_kind(prod, "NetworkPolicy")
    deny = policies["switchboard-default-deny"]["spec"]
    assert deny["podSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": "switchboard"}}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    # from outside, only through the ingress controller (and Prometheus for /metrics)
    sources = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for p in policies.values()
        for rule in p["spec"].get("ingress", [])
        for peer in rule["from"]
    }
    assert sources == {gen.INGRESS_NAMESPACE, gen.MONITORING_NAMESPACE}
    # the internet only for services that call providers
    open_egress = {
        p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/name")
        for p in policies.values()
        for rule in p["spec"].get("egress", [])
        for peer in rule["to"]
        if "ipBlock" in peer
    }
    assert open_egress == {s.name for s in gen.SERVICES if s.calls_providers}


def test_namespace_enforces_restricted_pod_security(prod: list[dict[str, Any]]) -> None:
    (ns,) = of_kind(prod, "Namespace").values()
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert all(d["metadata"].get("namespace") in (None, ns["metadata"]["name"]) for d in prod)


# --- images ----------------------------------------------------------------------------------


def _stages() -> dict[str, str]:
    """The root Dockerfile's stages by name (`FROM <image> AS <name>`), each with its FROM line."""
    stages: dict[str, str] = {}
    for part in (ROOT / "Dockerfile").read_text().split("\nFROM ")[1:]:
        head = part.splitlines()[0].split()
        assert len(head) == 3 and head[1] == "AS", f"every stage is named: FROM {part[:40]}"
        stages[head[2]] = part
    return stages


def test_dockerfile_runtime_is_small_and_unprivileged() -> None:
    stages = _stages()
    assert {"build", "runtime"} <= set(stages), "multi-stage build"
    runtime = stages["runtime"]
    assert runtime.startswith("${PYTHON_IMAGE}") or runtime.startswith("python:3.11-slim")
    assert "python:3.11-slim" in (ROOT / "Dockerfile").read_text()
    assert "apt-get install" not in runtime and "build-essential" not in runtime
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    user = [line.split()[1] for line in runtime.splitlines() if line.startswith("USER ")]
    assert user and not user[-1].startswith(("0", "root")), "runs as a non-root user"
    assert "EXPOSE 8000" in runtime
    assert not list((ROOT / "services").glob("*/Dockerfile")), "one Dockerfile, a target each"


@pytest.mark.parametrize("svc", SERVICES)
def test_dockerfile_target(svc: str) -> None:
    """Each service is a target on the shared runtime stage that adds nothing but what it runs,
    and the build stage imports its app (a broken import fails the build, not the pod)."""
    stages = _stages()
    assert stages[svc].splitlines()[0] == f"runtime AS {svc}"
    assert stages[svc].split("\n", 1)[1].strip() == f'ENTRYPOINT ["python", "-m", "{svc}"]'
    assert f"{svc}.app" in stages["build"]


def test_dockerignore_keeps_the_context_small() -> None:
    lines = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".data", "tests"} <= lines


def test_rendered_yaml_is_plain(rendered_text: dict[str, str]) -> None:
    for text in rendered_text.values():
        for doc in yaml.safe_load_all(text):
            assert doc is None or isinstance(doc, dict)
