"""The broker's ACLs, derived from the topic manifest (``topics.py``): each service may do only its part.

A service's Kafka user may read the topics it consumes, in its own consumer group, write the DLQs of
those topics (dead letters), write the topics it produces, and describe the topics it checks at start
(a topic and its DLQ). Nothing else: an ``admin`` user, a super user of the cluster, creates the topics
and these ACLs. ``python -m deploy.acls`` applies them, prints them as ``kafka-acls`` commands, or as the
README's table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest

from libs.common.errors import ConfigurationError
from libs.common.kafka_security import KafkaAccess, client_kwargs
from libs.common.topics import ALL_TOPICS, SERVICES, group_id

ADMIN_USER = "admin"  # the cluster's super user: creates topics and ACLs, never runs a service
USERS = (ADMIN_USER, *SERVICES)

Operation = Literal["Read", "Write", "Describe"]
ResourceType = Literal["topic", "group"]

# Kafka's protocol codes (org.apache.kafka.common.acl.AclOperation, resource.ResourceType, PatternType).
_RESOURCE_CODES = {"topic": 2, "group": 3}
_OPERATION_CODES = {"Read": 3, "Write": 4, "Describe": 8}
_PATTERN_LITERAL, _PERMISSION_ALLOW = 3, 3


@dataclass(frozen=True, order=True)
class AclBinding:
    """One ALLOW rule: ``User:<user>`` may ``operation`` the literal resource ``name``, from any host."""

    user: str
    resource_type: ResourceType
    name: str
    operation: Operation

    @property
    def principal(self) -> str:
        return f"User:{self.user}"


def service_acls(service: str, prefix: str = "") -> list[AclBinding]:
    """Everything ``service`` may do on a cluster whose topics carry ``prefix``."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    rules: set[AclBinding] = set()
    for spec in ALL_TOPICS:
        topic, dlq = spec.full_name(prefix), spec.dlq_name(prefix)
        if service in spec.consumers:
            rules |= {AclBinding(service, "topic", topic, "Read"), AclBinding(service, "topic", dlq, "Write"),
                      AclBinding(service, "group", group_id(service, prefix), "Read")}
        if service in spec.producers:
            rules |= {AclBinding(service, "topic", topic, "Write"), AclBinding(service, "topic", dlq, "Describe")}
        if service in spec.checkers:
            rules |= {AclBinding(service, "topic", topic, "Describe"), AclBinding(service, "topic", dlq, "Describe")}
    # Kafka's Read and Write imply Describe: a topic read or written needs no Describe of its own.
    used = {(r.resource_type, r.name) for r in rules if r.operation in ("Read", "Write")}
    return sorted(r for r in rules if r.operation != "Describe" or (r.resource_type, r.name) not in used)


def all_acls(prefix: str = "") -> list[AclBinding]:
    return [rule for service in SERVICES for rule in service_acls(service, prefix)]


async def apply_acls(admin_access: KafkaAccess, rules: Iterable[AclBinding]) -> int:
    """Create ``rules`` on the cluster as its admin user; idempotent (an existing ACL is left as it is).

    Only adds: an ACL that the manifest no longer names must be removed by hand (``kafka-acls --remove``).
    Raises ConfigurationError with the broker's message when one is refused.
    """
    rules = list(rules)
    admin = AIOKafkaAdminClient(**client_kwargs(admin_access), request_timeout_ms=15_000)
    await admin.start()
    try:
        for rule in rules:
            request = CreateAclsRequest(_RESOURCE_CODES[rule.resource_type], rule.name, _PATTERN_LITERAL,
                                        rule.principal, "*", _OPERATION_CODES[rule.operation], _PERMISSION_ALLOW)
            # aiokafka speaks CreateAcls but has no public method for it yet.
            response = await admin._client.send(admin._client.get_random_node(), request)
            for code, message in response.creation_responses:
                if code != 0:
                    raise ConfigurationError("acl_create_failed", f"{rule}: error {code} {message or ''}".strip())
    finally:
        await admin.close()
    return len(rules)


def acl_table() -> str:
    """The README's table of what each service's Kafka user may do (topic prefix left out)."""
    lines = ["| Kafka user | Reads (consumer group) | Writes | Describes only |", "|---|---|---|---|"]
    for service in SERVICES:
        rules = service_acls(service)
        groups = sorted({r.name for r in rules if r.resource_type == "group"})
        reads = [r.name for r in rules if r.resource_type == "topic" and r.operation == "Read"]
        writes = [r.name for r in rules if r.operation == "Write"]
        describes = [r.name for r in rules if r.operation == "Describe"]
        read_cell = ", ".join(f"`{n}`" for n in reads) + (f" (group `{groups[0]}`)" if groups else "")
        lines.append(f"| `{service}` | {read_cell or '-'} | {_names(writes)} | {_names(describes)} |")
    return "\n".join(lines)


def _names(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names) or "-"


def acl_commands(prefix: str = "", bootstrap: str = "<broker:9093>", config: str = "admin.properties") -> list[str]:
    """The same ACLs as ``kafka-acls.sh`` commands, for a platform team that applies them itself."""
    option = {"topic": "--topic", "group": "--group"}
    return [f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config {config} --add "
            f"--allow-principal {r.principal} --operation {r.operation} {option[r.resource_type]} {r.name}"
            for r in all_acls(prefix)]
