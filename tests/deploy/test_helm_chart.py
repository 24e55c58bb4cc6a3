"""The Helm chart, checked without a cluster: `helm lint`, `helm template` for the defaults and every example,
the rendered objects against Kubernetes' own schemas (kubernetes-validate ships them), and what the
objects must say for Textpulse to run as designed.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from libs.common.settings import Settings
from libs.common.topics import RECIPIENTS
from tests.deploy.chart import (
    BUILD_TIMEOUT_S,
    KUBE_VERSIONS,
    RELEASE,
    REPO,
    Helm,
    Rendered,
    consumer_groups,
    example_values,
)

# A first helm build happens in the first test's setup when setup did not build it already.
pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S + 300)

SERVICES = sorted(p.parent.name for p in (REPO / "services").glob("*/__main__.py"))
PREFIX = f"{RELEASE}-textpulse"
# Custom resources the core schemas do not have: checked by the structural tests below instead.
CUSTOM_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}
# Being added to libs/common/settings.py beside this chart; the chart sets them already.
KAFKA_SECURITY_SETTINGS = {
    "TEXTPULSE_KAFKA_SECURITY_PROTOCOL", "TEXTPULSE_KAFKA_SASL_MECHANISM", "TEXTPULSE_KAFKA_SASL_USERNAME",
    "TEXTPULSE_KAFKA_SASL_PASSWORD", "TEXTPULSE_KAFKA_SSL_CAFILE", "TEXTPULSE_KAFKA_SSL_CERTFILE",
    "TEXTPULSE_KAFKA_SSL_KEYFILE",
}
SETTINGS = {f"TEXTPULSE_{name.upper()}" for name in Settings.model_fields} | KAFKA_SECURITY_SETTINGS

EXAMPLES = example_values()
VARIANTS = {"defaults": [], **{p.stem: [p] for p in EXAMPLES}, "all-examples": EXAMPLES}


@pytest.fixture(scope="module", params=list(VARIANTS), ids=list(VARIANTS))
def rendered(request: pytest.FixtureRequest, helm: Helm) -> Rendered:
    return helm.template(VARIANTS[request.param])


def deployments(rendered: Rendered) -> dict[str, dict[str, Any]]:
    """Service name -> its Deployment."""
    return {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in rendered.of_kind("Deployment")}


def service_of(component: str) -> str:
    """The service a Deployment runs: the opt-out workers are the opt-out service in its other role."""
    return component.removesuffix("-workers")


def values_of(rendered: Rendered, component: str) -> dict[str, Any]:
    values: dict[str, Any] = rendered.values["services"][service_of(component)]
    return values["workers"] if component.endswith("-workers") else values


def role_of(deployment: dict[str, Any]) -> str | None:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container.get("env", [])}.get("TEXTPULSE_OPTOUT_ROLE")


def pod_specs(rendered: Rendered) -> list[dict[str, Any]]:
    return [o["spec"]["template"]["spec"] for o in rendered.of_kind("Deployment") + rendered.of_kind("Job")]


def module_exists(module: str) -> bool:
    path = REPO / module.replace(".", "/")
    return (path / "__main__.py").exists() or path.with_suffix(".py").exists()


def test_there_are_examples_for_kafka_and_postgresql() -> None:
    assert {p.stem for p in EXAMPLES} >= {"values-strimzi-kafka", "values-cloudnativepg"}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_helm_lint_passes(helm: Helm, variant: str) -> None:
    args = ["lint", "--strict", str(REPO / "deploy/helm/textpulse")]
    for path in VARIANTS[variant]:
        args += ["-f", str(path)]
    done = helm.run(*args)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_object_is_valid_against_the_kubernetes_schema(helm: Helm, variant: str, kube_version: str) -> None:
    rendered = helm.template(VARIANTS[variant], kube_version=kube_version)
    checked = set()
    for obj in rendered.objects:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue
        # strict: a field the schema does not know (a typo, a misplaced key) is an error too.
        kubernetes_validate.validate(obj, kube_version, strict=True)
        checked.add(obj["kind"])
    assert checked >= {"Deployment", "Service", "ConfigMap", "Secret", "Job", "PodDisruptionBudget",
                       "HorizontalPodAutoscaler", "Ingress"}


def test_there_is_a_deployment_per_service_running_its_module(rendered: Rendered) -> None:
    found = deployments(rendered)
    assert sorted(found) == sorted([*SERVICES, "optout-workers"])
    for name, deployment in found.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", f"services.{service_of(name)}"]


def test_the_optout_edge_and_its_workers_run_as_their_own_deployments(rendered: Rendered, helm: Helm) -> None:
    found = deployments(rendered)
    assert role_of(found["optout"]) == "edge" and role_of(found["optout-workers"]) == "workers"
    assert found["optout-workers"]["spec"]["replicas"] == rendered.values["services"]["optout"]["workers"]["replicas"]
    assert {role_of(d) for name, d in found.items() if service_of(name) != "optout"} == {None}
    assert "TEXTPULSE_OPTOUT_ROLE" in SETTINGS
    together = deployments(helm.template(sets=["services.optout.workers.enabled=false"]))
    assert "optout-workers" not in together and role_of(together["optout"]) == "all"


def test_every_deployment_container_has_probes_on_health_and_readiness(rendered: Rendered) -> None:
    config = rendered.named("ConfigMap", f"{PREFIX}-config")["data"]
    assert config["TEXTPULSE_HTTP_HOST"] == "0.0.0.0"
    for name, deployment in deployments(rendered).items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert container["readinessProbe"]["httpGet"]["port"] in ports, name
            assert ports["http"] == int(config["TEXTPULSE_HTTP_PORT"]), name


def test_every_container_has_resources_and_a_locked_down_security_context(rendered: Rendered) -> None:
    for spec in pod_specs(rendered):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in spec["containers"]:
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) >= {"cpu", "memory"}, container["name"]
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, container["name"]
            assert context["runAsNonRoot"] is True, container["name"]
            assert context["allowPrivilegeEscalation"] is False, container["name"]
            assert context["capabilities"]["drop"] == ["ALL"], container["name"]
            # A read-only root: /tmp (where uploads spool) is an emptyDir.
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1 and "emptyDir" in volumes[tmp[0]["name"]], container["name"]


def test_the_grace_period_outlasts_each_services_drain(rendered: Rendered) -> None:
    for name, deployment in deployments(rendered).items():
        drain = values_of(rendered, name)["drainSeconds"]
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > drain, name


def test_a_longer_dispatcher_drain_gets_a_longer_grace_period(helm: Helm) -> None:
    rendered = helm.template(sets=["services.dispatcher.drainSeconds=120"])
    grace = deployments(rendered)["dispatcher"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace == 120 + rendered.values["shutdownMarginSeconds"]


def test_keda_scales_the_dispatchers_on_their_groups_lag_up_to_the_partition_count(rendered: Rendered) -> None:
    (scaled,) = rendered.of_kind("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployments(rendered)["dispatcher"]["metadata"]["name"]
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"] <= RECIPIENTS.partitions
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert all(isinstance(v, str) for v in metadata.values()), "KEDA's trigger metadata is a map of strings"
    prefix = rendered.values["kafka"]["topicPrefix"]
    assert metadata["topic"] == RECIPIENTS.full_name(prefix)
    assert metadata["consumerGroup"] == f"{prefix}{consumer_groups()['dispatcher']}"
    assert metadata["limitToPartitionsWithLag"] == "true"
    assert metadata["bootstrapServers"] == rendered.values["kafka"]["bootstrapServers"]
    # With KEDA in charge, the Deployment leaves the replica count to it.
    assert "replicas" not in deployments(rendered)["dispatcher"]["spec"]


def test_keda_signs_in_to_a_secured_kafka_with_secrets_that_exist(helm: Helm) -> None:
    rendered = helm.template([p for p in EXAMPLES if p.stem == "values-strimzi-kafka"])
    (scaled,) = rendered.of_kind("ScaledObject")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["metadata"]["sasl"] == "scram_sha512"
    assert trigger["metadata"]["tls"] == "enable"
    auth = rendered.named("TriggerAuthentication", trigger["authenticationRef"]["name"])
    refs = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
    assert set(refs) == {"username", "password", "ca"}
    dispatcher_user = rendered.values["services"]["dispatcher"]["kafkaUser"]
    username_secret = rendered.named("Secret", refs["username"]["name"])
    assert username_secret["stringData"][refs["username"]["key"]] == dispatcher_user["username"]
    assert refs["password"]["name"] == dispatcher_user["passwordSecret"]["name"]
    assert refs["ca"]["name"] == rendered.values["kafka"]["tls"]["caSecret"]["name"]


def test_mutual_tls_mounts_the_client_certificate_for_the_services_and_keda(helm: Helm) -> None:
    rendered = helm.template(sets=["kafka.securityProtocol=SSL", "kafka.tls.caSecret.name=kafka-ca",
                                   "kafka.tls.clientSecret.name=kafka-client"])
    for obj in rendered.objects:
        if (obj["apiVersion"], obj["kind"]) not in CUSTOM_KINDS:
            kubernetes_validate.validate(obj, KUBE_VERSIONS[-1], strict=True)
    config = rendered.named("ConfigMap", f"{PREFIX}-config")["data"]
    assert "TEXTPULSE_KAFKA_SASL_USERNAME" not in config
    files = [config[f"TEXTPULSE_KAFKA_SSL_{n}FILE"] for n in ("CA", "CERT", "KEY")]
    for spec in pod_specs(rendered):
        volumes = {v["name"]: v for v in spec["volumes"]}
        container = spec["containers"][0]
        sasl = [e["name"] for e in container.get("env", []) if e["name"].startswith("TEXTPULSE_KAFKA_SASL_")]
        assert sasl == [], "no SASL variables over plain TLS"
        for path in files:
            (mount,) = [m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
            items = volumes[mount["name"]]["secret"]["items"]
            assert Path(path).name in {i["path"] for i in items}
    (scaled,) = rendered.of_kind("ScaledObject")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["metadata"]["tls"] == "enable" and "sasl" not in trigger["metadata"]
    auth = rendered.named("TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert {r["parameter"] for r in auth["spec"]["secretTargetRef"]} == {"ca", "cert", "key"}


def test_the_api_optout_and_links_scale_on_cpu(rendered: Rendered) -> None:
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in rendered.of_kind("HorizontalPodAutoscaler")}
    found = deployments(rendered)
    assert set(hpas) == {found[name]["metadata"]["name"] for name in ("api", "optout", "links")}
    for name in ("api", "optout", "links"):
        hpa = hpas[found[name]["metadata"]["name"]]
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
        assert "replicas" not in found[name]["spec"]


def test_the_other_services_have_their_replica_settings(helm: Helm) -> None:
    rendered = helm.template(sets=["services.dispatcher.autoscaling.enabled=false", "services.dispatcher.replicas=5"])
    assert deployments(rendered)["dispatcher"]["spec"]["replicas"] == 5
    assert rendered.of_kind("ScaledObject") == []
    for name in ("scheduler", "audience", "usage"):
        assert deployments(rendered)[name]["spec"]["replicas"] == rendered.values["services"][name]["replicas"]


def test_each_service_has_a_disruption_budget_and_a_service_that_select_its_pods(rendered: Rendered) -> None:
    budgets = rendered.of_kind("PodDisruptionBudget")
    services = rendered.of_kind("Service")
    for name, deployment in deployments(rendered).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        matching = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, name
        assert [s for s in services if s["spec"]["selector"].items() <= labels.items()], name


def test_the_ingress_sends_twilio_webhooks_to_optout_and_the_rest_to_the_api(rendered: Rendered) -> None:
    (ingress,) = rendered.of_kind("Ingress")
    routes = {(rule["host"], p["path"]): p["backend"]["service"]
              for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    host = rendered.values["ingress"]["host"]
    assert routes[(host, "/")]["name"] == f"{PREFIX}-api"
    assert routes[(rendered.values["ingress"]["webhooksHost"] or host, "/twilio/")]["name"] == f"{PREFIX}-optout"
    assert routes[(rendered.values["ingress"]["linksHost"], "/")]["name"] == f"{PREFIX}-links"
    assert rendered.values["shortLinkBaseUrl"] == f"https://{rendered.values['ingress']['linksHost']}"
    services = {s["metadata"]["name"]: s for s in rendered.of_kind("Service")}
    for backend in routes.values():
        assert backend["port"]["name"] in {p["name"] for p in services[backend["name"]]["spec"]["ports"]}


def test_webhooks_may_have_their_own_host(helm: Helm) -> None:
    rendered = helm.template(sets=["ingress.webhooksHost=sms.example.org", "ingress.tlsSecretName=tls"])
    (ingress,) = rendered.of_kind("Ingress")
    hosts = {rule["host"]: [p["path"] for p in rule["http"]["paths"]] for rule in ingress["spec"]["rules"]}
    links = "go.textpulse.example.org"
    assert hosts == {"textpulse.example.org": ["/"], "sms.example.org": ["/twilio/"], links: ["/"]}
    assert ingress["spec"]["tls"][0]["hosts"] == ["textpulse.example.org", "sms.example.org", links]


def test_short_links_may_have_no_ingress_rule(helm: Helm) -> None:
    rendered = helm.template(sets=["ingress.linksHost="])
    (ingress,) = rendered.of_kind("Ingress")
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == ["textpulse.example.org"]


def test_migrations_and_topics_run_as_hook_jobs_after_their_settings_exist(rendered: Rendered) -> None:
    jobs = {j["metadata"]["labels"]["app.kubernetes.io/component"]: j for j in rendered.of_kind("Job")}
    assert set(jobs) == {"migrate", "topics"}
    for name, job in jobs.items():
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["command"][:2] == ["python", "-m"] and module_exists(container["command"][2]), name
        assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert jobs["migrate"]["spec"]["template"]["spec"]["containers"][0]["command"][2] == "deploy.migrate"
    assert jobs["topics"]["spec"]["template"]["spec"]["containers"][0]["command"][2] == "deploy.topics"
    # A pre-install Job runs before the release's ordinary objects exist: what it reads is a hook of lower weight.
    job_weight = min(int(j["metadata"]["annotations"]["helm.sh/hook-weight"]) for j in jobs.values())
    for spec in pod_specs(rendered):
        for source in spec["containers"][0]["envFrom"]:
            kind = "ConfigMap" if "configMapRef" in source else "Secret"
            ref = source["configMapRef"] if kind == "ConfigMap" else source["secretRef"]
            if kind == "Secret" and rendered.values["secrets"]["existingSecret"]:
                continue
            annotations = rendered.named(kind, ref["name"])["metadata"]["annotations"]
            assert "pre-install" in annotations["helm.sh/hook"].split(",")
            assert int(annotations["helm.sh/hook-weight"]) < job_weight


def test_every_variable_the_chart_sets_is_a_setting(rendered: Rendered) -> None:
    names = set(rendered.named("ConfigMap", f"{PREFIX}-config")["data"])
    secret = rendered.named("Secret", f"{PREFIX}-secrets")
    names |= set(secret.get("data", {}))
    for spec in pod_specs(rendered):
        names |= {e["name"] for c in spec["containers"] for e in c.get("env", [])}
    assert names - SETTINGS == set()
    assert {"TEXTPULSE_DATABASE_URL", "TEXTPULSE_SECRET_KEY", "TEXTPULSE_KAFKA_BOOTSTRAP_SERVERS"} <= names


def test_the_database_url_comes_from_the_named_secret(helm: Helm) -> None:
    rendered = helm.template([p for p in EXAMPLES if p.stem == "values-cloudnativepg"])
    assert "TEXTPULSE_DATABASE_URL" not in rendered.named("Secret", f"{PREFIX}-secrets")["data"]
    for spec in pod_specs(rendered):
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        assert env["TEXTPULSE_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "textpulse-pg-app", "key": "uri"}


def test_each_service_signs_in_to_kafka_as_its_own_user(helm: Helm) -> None:
    rendered = helm.template([p for p in EXAMPLES if p.stem == "values-strimzi-kafka"])
    config = rendered.named("ConfigMap", f"{PREFIX}-config")["data"]
    assert config["TEXTPULSE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["TEXTPULSE_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    for name, deployment in deployments(rendered).items():
        spec = deployment["spec"]["template"]["spec"]
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        user = f"textpulse-{service_of(name)}"  # the opt-out workers are the opt-out service's Kafka user
        assert env["TEXTPULSE_KAFKA_SASL_USERNAME"]["value"] == user
        assert env["TEXTPULSE_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == user
        # The CA file the setting names is where the Secret is mounted.
        mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert str(Path(config["TEXTPULSE_KAFKA_SSL_CAFILE"]).parent) in mounts
    topics_job = rendered.named("Job", f"{PREFIX}-topics")["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in topics_job["env"]}["TEXTPULSE_KAFKA_SASL_USERNAME"] == "textpulse-admin"


def test_a_generated_secret_key_is_long_enough_for_production(helm: Helm) -> None:
    secret = helm.template().named("Secret", f"{PREFIX}-secrets")
    assert len(base64.b64decode(secret["data"]["TEXTPULSE_SECRET_KEY"])) >= 32


def test_an_existing_secret_replaces_the_charts(helm: Helm) -> None:
    rendered = helm.template(sets=["secrets.existingSecret=textpulse-prod"])
    assert [s["metadata"]["name"] for s in rendered.of_kind("Secret")] == []
    for spec in pod_specs(rendered):
        assert {"secretRef": {"name": "textpulse-prod"}} in spec["containers"][0]["envFrom"]


@pytest.mark.parametrize(("sets", "message"), [
    (["extraConfig.LOG_LEVEL=DEBUG"], "extraConfig.LOG_LEVEL: every setting is a TEXTPULSE_* variable"),
    (["kafka.securityProtocol=TLS"], "kafka.securityProtocol=TLS: use one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
    (["kafka.securityProtocol=SASL_SSL"], 'kafka.sasl.mechanism="": SASL_SSL needs one of SCRAM-SHA-512, PLAIN'),
    (["kafka.securityProtocol=SASL_SSL", "kafka.sasl.mechanism=SCRAM-SHA-256"],
     'kafka.sasl.mechanism="SCRAM-SHA-256": SASL_SSL needs one of SCRAM-SHA-512, PLAIN'),
    (["kafka.securityProtocol=SASL_SSL", "kafka.sasl.mechanism=PLAIN"],
     "kafka.sasl.username is empty and jobs.kafkaUser.username too"),
    (["kafka.securityProtocol=SASL_SSL", "kafka.sasl.mechanism=PLAIN", "kafka.sasl.username=tp"],
     "jobs has no Kafka password: set jobs.kafkaUser.passwordSecret, kafka.sasl.passwordSecret"),
    (["secrets.kafkaSaslPassword=pw"], "secrets.kafkaSaslPassword is set but kafka.securityProtocol=PLAINTEXT"),
    (["kafka.tls.caSecret.name=ca"], "kafka.tls secrets are given but kafka.securityProtocol=PLAINTEXT"),
    (["secrets.secretKey=short"], "secrets.secretKey must be at least 32 characters"),
    (["services.mailer.replicas=1"], "services.mailer: no such service"),
    (["services.dispatcher.drainSeconds=0"], "services.dispatcher.drainSeconds must be a whole number"),
    (["services.optout.workers.replicas=0"], "services.optout.workers.replicas must be at least 1"),
    (["services.optout.workers.drainSeconds=0"], "services.optout.workers.drainSeconds must be a whole number"),
    (["secrets.databaseUrl="], "no database: set secrets.databaseUrl"),
    (["services.dispatcher.autoscaling.minReplicas=13"], "minReplicas must not exceed maxReplicas"),
])
def test_bad_values_stop_the_render_with_a_message_naming_them(helm: Helm, sets: list[str], message: str) -> None:
    assert message in helm.template_error(sets=sets)



def container_env(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container.get("env", [])}


def test_each_service_drains_for_its_drain_seconds_and_static_membership_is_off(rendered: Rendered) -> None:
    for name, deployment in deployments(rendered).items():
        env = container_env(deployment)
        assert env["TEXTPULSE_DRAIN_SECONDS"]["value"] == str(values_of(rendered, name)["drainSeconds"]), name
        assert "TEXTPULSE_KAFKA_GROUP_INSTANCE_ID" not in env, name


def test_static_membership_names_each_dispatcher_by_its_pod(helm: Helm) -> None:
    rendered = helm.template(sets=["services.dispatcher.staticMembership=true"])
    env = container_env(deployments(rendered)["dispatcher"])
    instance = env["TEXTPULSE_KAFKA_GROUP_INSTANCE_ID"]
    assert instance["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "TEXTPULSE_KAFKA_GROUP_INSTANCE_ID" not in container_env(deployments(rendered)["usage"])
