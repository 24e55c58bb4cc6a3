"""The ACLs follow the topic manifest: each service reads what it consumes (in its own group), writes what
it produces and the DLQs of what it consumes, and may do nothing else; the README shows the same set."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from libs.common.kafka_acls import (
    USERS,
    AclBinding,
    BrokerAcl,
    acl_commands,
    acl_table,
    all_acls,
    missing_acls,
    service_acls,
    stale_acls,
)
from libs.common.topics import ALL_TOPICS, SERVICES

README = Path(__file__).resolve().parents[2] / "README.md"


def _ops(service: str, prefix: str = "") -> set[tuple[str, str, str]]:
    return {(r.resource_type, r.name, r.operation) for r in service_acls(service, prefix)}


def test_the_opt_out_service_writes_its_three_topics_and_reads_only_its_webhooks_in_its_group() -> None:
    assert _ops("optout") == {
        ("topic", "textpulse.consent", "Write"), ("topic", "textpulse.message-status", "Write"),
        ("topic", "textpulse.webhooks", "Write"), ("topic", "textpulse.webhooks", "Read"),
        ("group", "optout", "Read"), ("topic", "textpulse.webhooks.dlq", "Write"),
        ("topic", "textpulse.consent.dlq", "Describe"), ("topic", "textpulse.message-status.dlq", "Describe")}


def test_the_dispatcher_reads_recipients_in_its_group_and_writes_results_dead_letters_and_released_holds() -> None:
    ops = _ops("dispatcher", prefix="t1.")
    assert ("topic", "t1.textpulse.recipients", "Read") in ops
    assert ("group", "t1.dispatcher", "Read") in ops
    assert ("topic", "t1.textpulse.recipients.dlq", "Write") in ops
    assert ("topic", "t1.textpulse.send-results", "Write") in ops
    # A held recipient goes back to the recipients topic when its window opens (services/dispatcher/holds.py).
    assert ("topic", "t1.textpulse.recipients", "Write") in ops
    assert not {op for op in ops if op[2] == "Write"} - {("topic", "t1.textpulse.recipients.dlq", "Write"),
                                                         ("topic", "t1.textpulse.send-results", "Write"),
                                                         ("topic", "t1.textpulse.recipients", "Write")}


def test_every_acl_follows_from_the_manifest_and_nobody_but_the_producer_writes_a_topic() -> None:
    for spec in ALL_TOPICS:
        writers = {r.user for r in all_acls() if r.name == spec.name and r.operation == "Write"}
        readers = {r.user for r in all_acls() if r.name == spec.name and r.operation == "Read"}
        assert writers == spec.producers and readers == spec.consumers, spec.name
    groups = {(r.user, r.name) for r in all_acls() if r.resource_type == "group"}
    assert groups == {(s, s) for s in SERVICES if any(s in spec.consumers for spec in ALL_TOPICS)}
    assert set(USERS) == {"admin", *SERVICES}


def test_an_unknown_service_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown service 'mailer'"):
        service_acls("mailer")


def test_the_readme_shows_the_acl_set_the_code_applies() -> None:
    assert acl_table() in README.read_text(), "README's ACL table is stale: paste `python -m deploy.acls table`"


def test_the_kafka_acls_commands_name_every_rule() -> None:
    commands = acl_commands("", "kafka-1:9093")
    assert len(commands) == len(all_acls())
    rule = AclBinding("scheduler", "topic", "textpulse.campaign-due", "Write")
    assert ("kafka-acls.sh --bootstrap-server kafka-1:9093 --command-config admin.properties --add "
            "--allow-principal User:scheduler --operation Write --topic textpulse.campaign-due") in commands
    assert rule in all_acls()


def _held(*rules: AclBinding) -> list[BrokerAcl]:
    return [BrokerAcl.of(rule) for rule in rules]


def test_apply_removes_only_a_service_users_allows_on_its_prefixs_topics_and_groups_that_are_not_granted() -> None:
    granted = all_acls("p.")
    retired = AclBinding("dispatcher", "topic", "p.textpulse.retired", "Read")
    widened = AclBinding("optout", "topic", "p.textpulse.recipients", "Write")
    old_group = AclBinding("optout", "group", "p.usage", "Read")
    prefixed = replace(BrokerAcl.of(AclBinding("dispatcher", "topic", "p.textpulse.", "Write")), pattern_type=4)
    left_alone = [
        *_held(AclBinding("dispatcher", "topic", "q.textpulse.recipients", "Read"),  # another prefix's
               AclBinding("someone-else", "topic", "p.textpulse.recipients", "Read"),  # not Textpulse's user
               AclBinding("dispatcher", "topic", "other-app.events", "Read"),  # not a Textpulse name
               AclBinding("admin", "topic", "p.textpulse.recipients", "Write")),
        replace(BrokerAcl.of(widened), permission=2),  # a DENY
    ]
    found = [*_held(*granted, retired, widened, old_group), prefixed, *left_alone]
    assert stale_acls(found, granted, "p.") == sorted([*_held(retired, widened, old_group), prefixed])
    assert missing_acls(found, granted) == []


def test_apply_adds_what_the_broker_lacks_and_removes_nothing_from_a_cluster_holding_only_the_manifest() -> None:
    granted = all_acls("p.")
    found = _held(*granted[1:])
    assert missing_acls(found, granted) == granted[:1]
    assert stale_acls(found, granted, "p.") == []


def test_an_acl_reads_as_kafka_acls_lists_it() -> None:
    rule = BrokerAcl.of(AclBinding("optout", "topic", "textpulse.webhooks", "Read"))
    assert str(rule) == "User:optout Allow Read Topic textpulse.webhooks (literal, host *)"
