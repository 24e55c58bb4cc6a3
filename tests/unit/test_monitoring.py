"""deploy/monitoring: the alert rules and the Grafana dashboard name only metrics and labels that exist
(libs/common/metrics.py), and the rule file has the shape Prometheus loads."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.common import metrics

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_MATCHERS = re.compile(r"\{([^}]*)\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_NAME = re.compile(r"(?<![\w$])[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
                       "group_right", "inf", "nan"})
# Labels a scrape adds to every series (the Kubernetes service discovery's pod, Prometheus' job and instance).
_TARGET_LABELS = frozenset({"pod", "job", "instance", "le"})


def _labels_of_metrics() -> frozenset[str]:
    # prometheus-client keeps a metric's label names in _labelnames (no public accessor before a sample exists).
    return frozenset(label for metric in metrics.ALL_METRICS for label in metric._labelnames)


KNOWN_LABELS = _labels_of_metrics() | _TARGET_LABELS


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (functions, keywords, labels and strings left out)."""
    text = _STRING.sub('""', expr)
    text = _GROUPING.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    names = set()
    for match in _NAME.finditer(text):
        rest = text[match.end():].lstrip()
        if rest.startswith("(") or match.group() in _KEYWORDS:
            continue  # a function call, or an operator
        names.add(match.group())
    return names


def label_names(expr: str) -> set[str]:
    """The labels an expression groups by or matches on."""
    text = _STRING.sub('""', expr)
    found = {label.strip() for _, labels in _GROUPING.findall(text) for label in labels.split(",") if label.strip()}
    for matchers in _MATCHERS.findall(text):
        found |= {m.group(1) for m in re.finditer(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers)}
    return found


def test_the_name_check_sees_what_an_expression_selects() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, outcome) (rate(textpulse_twilio_call_seconds_bucket'
            '{outcome=~"accepted|fail"}[$__rate_interval]))) > 2 and on (outcome) textpulse_typo offset 5m')
    assert metric_names(expr) == {"textpulse_twilio_call_seconds_bucket", "textpulse_typo"}
    assert label_names(expr) == {"le", "outcome"}
    assert metric_names('sum(rate(textpulse_texts_total{outcome="failed"}[10m])) / 1e-9') == {"textpulse_texts_total"}


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    assert set(document) == {"groups"}
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_alert_rules_have_the_shape_prometheus_loads() -> None:
    rules = _rules()
    alerts = [r["alert"] for r in rules]
    assert len(alerts) == len(set(alerts)), "alert names repeat"
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule["alert"]
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def test_the_issue_s_alerts_are_all_there() -> None:
    watched = {name for rule in _rules() for name in metric_names(rule["expr"])}
    assert {"textpulse_dlq_records_total", "textpulse_consumer_lag", "textpulse_texts_total",
            "textpulse_outbox_oldest_seconds", "textpulse_ready"} <= watched


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["alert"])
def test_every_alert_names_existing_metrics_and_labels(rule: dict[str, Any]) -> None:
    names = metric_names(rule["expr"])
    assert names, "an alert that selects no metric"
    assert names <= metrics.METRIC_NAMES, f"unknown metrics: {names - metrics.METRIC_NAMES}"
    assert label_names(rule["expr"]) <= KNOWN_LABELS


def _panels(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in node.get("panels", []):
        yield panel
        yield from _panels(panel)  # rows hold panels of their own


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads((MONITORING / "dashboard.json").read_text())
    return dashboard


def test_every_dashboard_panel_queries_existing_metrics_and_labels() -> None:
    dashboard = _dashboard()
    panels = list(_panels(dashboard))
    assert panels
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names and names <= metrics.METRIC_NAMES, f"{panel['title']}: {names - metrics.METRIC_NAMES}"
            assert label_names(target["expr"]) <= KNOWN_LABELS, panel["title"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":  # Grafana's label_values(metric, label)
            metric, label = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["definition"]).groups()
            assert metric in metrics.METRIC_NAMES and label in KNOWN_LABELS


def test_every_metric_is_on_the_dashboard() -> None:
    shown = {name for panel in _panels(_dashboard()) for t in panel["targets"] for name in metric_names(t["expr"])}
    families = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in shown}
    ours = {next(iter(m.describe())).name for m in metrics.ALL_METRICS}
    assert ours - families == set()
