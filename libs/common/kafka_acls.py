"""The broker's ACLs, derived from the topic manifest (``topics.py``): each service may do only its part.

A service's Kafka user may read the topics it consumes, in its own consumer group, write the DLQs of
those topics (dead letters), write the topics it produces, and describe the topics it checks at start
(a topic and its DLQ). Nothing else: an ``admin`` user, a super user of the cluster, creates the topics
and these ACLs. ``python -m deploy.acls`` applies them (and removes what the manifest no longer grants),
prints them as ``kafka-acls`` commands, or as the README's table.

What ``prune_acls`` may remove is a service user's ALLOW on a resource of the prefix's own: a topic named
``<prefix>textpulse.*`` or a service's group ``<prefix><service>``. DENYs, ACLs of other users, of other
prefixes (another environment or test on the same cluster) and on any other name are never touched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest

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
_ANY = 1  # the filter code that matches every resource type, pattern type, operation and permission
_NAMES = {"resource": {1: "Any", 2: "Topic", 3: "Group", 4: "Cluster", 5: "TransactionalId",
                       6: "DelegationToken", 7: "User"},
          "pattern": {3: "literal", 4: "prefixed"},
          "operation": {2: "All", 3: "Read", 4: "Write", 5: "Create", 6: "Delete", 7: "Alter", 8: "Describe",
                        9: "ClusterAction", 10: "DescribeConfigs", 11: "AlterConfigs", 12: "IdempotentWrite",
                        13: "CreateTokens", 14: "DescribeTokens"},
          "permission": {2: "Deny", 3: "Allow"}}


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


@dataclass(frozen=True, order=True)
class BrokerAcl:
    """An ACL as the broker holds it, in Kafka's protocol codes: any kind, not only the ones we grant."""

    principal: str
    resource_type: int
    name: str
    pattern_type: int
    host: str
    operation: int
    permission: int

    @classmethod
    def of(cls, rule: AclBinding) -> BrokerAcl:
        return cls(rule.principal, _RESOURCE_CODES[rule.resource_type], rule.name, _PATTERN_LITERAL, "*",
                   _OPERATION_CODES[rule.operation], _PERMISSION_ALLOW)

    def __str__(self) -> str:
        def name(kind: str, code: int) -> str:
            return _NAMES[kind].get(code, str(code))
        return (f"{self.principal} {name('permission', self.permission)} {name('operation', self.operation)} "
                f"{name('resource', self.resource_type)} {self.name} ({name('pattern', self.pattern_type)}, "
                f"host {self.host})")


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

    Only adds: ``prune_acls`` removes what the manifest no longer grants.
    Raises ConfigurationError with the broker's message when one is refused.
    """
    rules = list(rules)
    async with _admin(admin_access) as admin:
        for rule in rules:
            request = CreateAclsRequest(_RESOURCE_CODES[rule.resource_type], rule.name, _PATTERN_LITERAL,
                                        rule.principal, "*", _OPERATION_CODES[rule.operation], _PERMISSION_ALLOW)
            response = await admin._client.send(admin._client.get_random_node(), request)
            for code, message in response.creation_responses:
                if code != 0:
                    raise ConfigurationError("acl_create_failed", f"{rule}: error {code} {message or ''}".strip())
    return len(rules)


def stale_acls(found: Iterable[BrokerAcl], keep: Iterable[AclBinding], prefix: str = "") -> list[BrokerAcl]:
    """The ACLs in ``found`` that a service user holds on a resource of ``prefix``'s own and ``keep`` does
    not grant: what ``prune_acls`` removes."""
    granted = {BrokerAcl.of(rule) for rule in keep}
    principals = {f"User:{service}" for service in SERVICES}
    topics, groups = f"{prefix}textpulse.", {group_id(service, prefix) for service in SERVICES}

    def owned(acl: BrokerAcl) -> bool:
        if acl.resource_type == _RESOURCE_CODES["topic"]:
            return acl.name.startswith(topics)
        return acl.resource_type == _RESOURCE_CODES["group"] and acl.name in groups

    # A DENY only ever narrows access, so it is never "no longer granted": an operator's DENY stays.
    return sorted(a for a in found if a.permission == _PERMISSION_ALLOW and a.principal in principals and owned(a)
                  and a not in granted)


async def broker_acls(admin_access: KafkaAccess) -> list[BrokerAcl]:
    """Every ACL on the cluster (asked as its admin user)."""
    async with _admin(admin_access) as admin:
        request = DescribeAclsRequest(_ANY, None, _ANY, None, None, _ANY, _ANY)  # None: any name, principal, host
        response = await admin._client.send(admin._client.get_random_node(), request)
    if response.error_code != 0:
        raise ConfigurationError("acl_describe_failed", f"error {response.error_code} {response.error_message or ''}")
    found = []
    for resource in response.resources:
        resource_type, name, *pattern, acls = resource
        for principal, host, operation, permission in acls:
            found.append(BrokerAcl(principal, resource_type, name, pattern[0] if pattern else _PATTERN_LITERAL, host,
                                   operation, permission))
    return sorted(found)


async def prune_acls(admin_access: KafkaAccess, keep: Iterable[AclBinding], prefix: str = "", *,
                     dry_run: bool = False) -> list[BrokerAcl]:
    """Remove the ACLs ``stale_acls`` names (with ``dry_run``, only list them); returns them."""
    stale = stale_acls(await broker_acls(admin_access), keep, prefix)
    if dry_run or not stale:
        return stale
    async with _admin(admin_access) as admin:
        for acl in stale:
            request = DeleteAclsRequest(acl.resource_type, acl.name, acl.pattern_type, acl.principal, acl.host,
                                        acl.operation, acl.permission)
            response = await admin._client.send(admin._client.get_random_node(), request)
            for code, message, *_ in response.filter_responses:
                if code != 0:
                    raise ConfigurationError("acl_delete_failed", f"{acl}: error {code} {message or ''}".strip())
    return stale


def missing_acls(found: Iterable[BrokerAcl], rules: Iterable[AclBinding]) -> list[AclBinding]:
    """The ``rules`` the broker does not hold yet."""
    held = set(found)
    return [rule for rule in rules if BrokerAcl.of(rule) not in held]


@asynccontextmanager
async def _admin(admin_access: KafkaAccess) -> AsyncIterator[AIOKafkaAdminClient]:
    # aiokafka speaks the ACL requests but has no public methods for them yet: they go through its client.
    admin = AIOKafkaAdminClient(**client_kwargs(admin_access), request_timeout_ms=15_000)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


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
