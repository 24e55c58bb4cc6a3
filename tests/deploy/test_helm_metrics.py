"""The chart's Prometheus wiring: scrape annotations on every pod by default, or a ServiceMonitor over every
service's Service (Prometheus Operator), both on the port and path the services serve /metrics at; and the
alert rules as a PrometheusRule."""

from __future__ import annotations

import pytest
import yaml

from tests.deploy.chart import BUILD_TIMEOUT_S, CHART, RELEASE, REPO, Helm

pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S + 300)

PREFIX = f"{RELEASE}-textpulse"


def test_every_pod_carries_the_scrape_annotations_for_its_http_port(helm: Helm) -> None:
    rendered = helm.template()
    config = rendered.named("ConfigMap", f"{PREFIX}-config")["data"]
    deployments = rendered.of_kind("Deployment")
    assert deployments
    for deployment in deployments:
        template = deployment["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        (container,) = template["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert int(annotations["prometheus.io/port"]) == ports["http"] == int(config["TEXTPULSE_HTTP_PORT"])
    assert rendered.of_kind("ServiceMonitor") == []


def test_a_service_monitor_scrapes_every_service_instead_when_asked(helm: Helm) -> None:
    rendered = helm.template(sets=["metrics.scrapeAnnotations=false", "metrics.serviceMonitor.enabled=true",
                                   "metrics.serviceMonitor.labels.release=kube-prometheus-stack"])
    for deployment in rendered.of_kind("Deployment"):
        assert "prometheus.io/scrape" not in deployment["spec"]["template"]["metadata"]["annotations"]
    (monitor,) = rendered.of_kind("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["interval"] == "30s"
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = rendered.of_kind("Service")
    selected = [s for s in services if selector.items() <= s["metadata"]["labels"].items()]
    assert {s["metadata"]["name"] for s in selected} == {d["metadata"]["name"] for d in rendered.of_kind("Deployment")}
    for service in selected:
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_the_alert_rules_render_as_a_prometheus_rule_when_asked(helm: Helm) -> None:
    assert helm.template().of_kind("PrometheusRule") == []
    rendered = helm.template(sets=["monitoring.prometheusRule.enabled=true",
                                   "monitoring.prometheusRule.labels.release=kube-prometheus-stack"])
    (rule,) = rendered.of_kind("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # The same rules as the rule file Prometheus reads without the operator: one file, read by the chart.
    assert (REPO / "deploy/monitoring/alerts.yml").resolve() == CHART / "files/alerts.yml"
    assert rule["spec"] == yaml.safe_load((REPO / "deploy/monitoring/alerts.yml").read_text())
    assert "{{ $labels.topic }}" in rule["spec"]["groups"][0]["rules"][0]["annotations"]["summary"]
