"""The example clusters under deploy/helm/examples (Strimzi Kafka and KafkaUsers, a CloudNativePG Cluster) are
custom resources with no schema in Kubernetes' own: these tests check their structure, and that the
example values sign in with the users and Secrets those resources make.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from libs.common.topics import ALL_TOPICS
from tests.deploy.chart import EXAMPLES, KUBE_VERSIONS, checked_topics, consumer_groups, merged_values

STRIMZI = "kafka.strimzi.io/v1beta2"
TOPICS = {t.name for t in ALL_TOPICS}
DLQS = {t.dlq_name() for t in ALL_TOPICS}


def load(name: str) -> list[dict[str, Any]]:
    return [o for o in yaml.safe_load_all((EXAMPLES / name).read_text()) if o]


STRIMZI_OBJECTS = load("strimzi-kafka.yaml")
CNPG_OBJECTS = load("cloudnativepg-cluster.yaml")
STRIMZI_VALUES = merged_values([EXAMPLES / "values-strimzi-kafka.yaml"], [])
CNPG_VALUES = merged_values([EXAMPLES / "values-cloudnativepg.yaml"], [])
(KAFKA,) = [o for o in STRIMZI_OBJECTS if o["kind"] == "Kafka"]
USERS = {o["metadata"]["name"]: o for o in STRIMZI_OBJECTS if o["kind"] == "KafkaUser"}


def acls(user: str) -> list[tuple[str, str, str, str]]:
    """(resource type, name, pattern, operation) for each operation the user is allowed."""
    found = []
    for acl in USERS[user]["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        for operation in acl["operations"]:
            found.append((resource["type"], resource.get("name", ""), resource.get("patternType", ""), operation))
    return found


def allowed(user: str, kind: str, name: str, operation: str) -> bool:
    # Kafka: Read and Write imply Describe.
    operations = {operation, "Read", "Write"} if operation == "Describe" else {operation}
    return any(t == kind and op in operations and (n == name or (p == "prefix" and name.startswith(n)))
               for t, n, p, op in acls(user))


@pytest.mark.parametrize("obj", STRIMZI_OBJECTS + CNPG_OBJECTS, ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_the_examples_are_custom_resources_the_core_schemas_skip(obj: dict[str, Any]) -> None:
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(obj, KUBE_VERSIONS[-1], strict=True)
    assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}


def test_strimzi_objects_belong_to_the_one_kafka_cluster() -> None:
    assert {o["apiVersion"] for o in STRIMZI_OBJECTS} == {STRIMZI}
    assert {o["kind"] for o in STRIMZI_OBJECTS} == {"Kafka", "KafkaNodePool", "KafkaUser"}
    for obj in STRIMZI_OBJECTS:
        if obj["kind"] != "Kafka":
            assert obj["metadata"]["labels"]["strimzi.io/cluster"] == KAFKA["metadata"]["name"]
    assert KAFKA["spec"]["kafka"]["authorization"]["type"] == "simple"
    assert KAFKA["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False


def test_the_values_reach_the_kafka_listener_with_its_ca_and_mechanism() -> None:
    kafka = STRIMZI_VALUES["kafka"]
    name = KAFKA["metadata"]["name"]
    (listener,) = KAFKA["spec"]["kafka"]["listeners"]
    assert kafka["bootstrapServers"] == f"{name}-kafka-bootstrap:{listener['port']}"
    assert listener["tls"] is True and kafka["securityProtocol"] == "SASL_SSL"
    assert listener["authentication"]["type"].upper() == kafka["sasl"]["mechanism"]
    assert kafka["tls"]["caSecret"] == {"name": f"{name}-cluster-ca-cert", "key": "ca.crt"}


def test_each_service_and_the_topics_job_sign_in_as_a_kafka_user_of_the_example() -> None:
    signed_in = {name: svc["kafkaUser"] for name, svc in STRIMZI_VALUES["services"].items()}
    signed_in["jobs"] = STRIMZI_VALUES["jobs"]["kafkaUser"]
    for who, user in signed_in.items():
        assert user["username"] in USERS, who
        assert USERS[user["username"]]["spec"]["authentication"]["type"] == "scram-sha-512"
        # Strimzi keeps a user's password in a Secret named after it, under `password`.
        assert user["passwordSecret"] == {"name": user["username"], "key": "password"}, who
    assert set(USERS) == {u["username"] for u in signed_in.values()}


def test_every_acl_names_a_real_topic_or_group() -> None:
    groups = set(consumer_groups().values())
    for user in USERS:
        for kind, name, pattern, _ in acls(user):
            if kind == "topic" and pattern == "literal":
                assert name in TOPICS | DLQS, (user, name)
            if kind == "group":
                assert name in groups, (user, name)


def test_consumers_read_their_group_and_dead_letter_what_they_read() -> None:
    for service, group in consumer_groups().items():
        user = STRIMZI_VALUES["services"][service]["kafkaUser"]["username"]
        assert allowed(user, "group", group, "Read"), service
        read = [t for t in TOPICS if allowed(user, "topic", t, "Read")]
        assert read, service
        for topic in read:
            assert allowed(user, "topic", f"{topic}.dlq", "Write"), (service, topic)


def test_every_service_may_describe_the_topics_it_checks_at_start_and_no_others() -> None:
    for service, names in checked_topics().items():
        user = STRIMZI_VALUES["services"][service]["kafkaUser"]["username"]
        wanted = set(names) | {f"{n}.dlq" for n in names}
        assert all(allowed(user, "topic", t, "Describe") for t in wanted), service
        named = {n for kind, n, _, _ in acls(user) if kind == "topic"}
        assert named <= wanted, f"{service} may touch {named - wanted}, which it never checks"
        # Idempotent producers (libs/common/kafka.py make_producer).
        assert allowed(user, "cluster", "", "IdempotentWrite"), service


def test_keda_may_read_the_dispatchers_lag() -> None:
    user = STRIMZI_VALUES["services"]["dispatcher"]["kafkaUser"]["username"]
    assert allowed(user, "group", consumer_groups()["dispatcher"], "Describe")


def test_the_topics_job_may_create_every_topic_and_dead_letter_queue() -> None:
    user = STRIMZI_VALUES["jobs"]["kafkaUser"]["username"]
    assert all(allowed(user, "topic", t, "Create") and allowed(user, "topic", t, "Describe") for t in TOPICS | DLQS)


def test_the_values_read_the_database_url_cloudnativepg_writes() -> None:
    (cluster,) = CNPG_OBJECTS
    assert (cluster["apiVersion"], cluster["kind"]) == ("postgresql.cnpg.io/v1", "Cluster")
    assert cluster["spec"]["instances"] >= 2
    assert {"database", "owner"} <= set(cluster["spec"]["bootstrap"]["initdb"])
    # The operator's <cluster>-app Secret has the application user's connection URI as `uri`.
    assert CNPG_VALUES["database"]["urlSecret"] == {"name": f"{cluster['metadata']['name']}-app", "key": "uri"}


def test_the_examples_are_all_covered() -> None:
    covered = {"strimzi-kafka.yaml", "cloudnativepg-cluster.yaml", "values-strimzi-kafka.yaml",
               "values-cloudnativepg.yaml"}
    assert {p.name for p in Path(EXAMPLES).glob("*.yaml")} == covered
