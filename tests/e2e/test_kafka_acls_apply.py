"""``python -m deploy.acls apply`` against a real SASL_SSL broker (the session's private one): it adds the
manifest's ACLs and removes a service user's ACLs on the prefix's topics that the manifest no longer grants;
``--dry-run`` lists both and changes nothing; another prefix's and another user's ACLs stay."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import pytest

from deploy.stack import REPO
from libs.common.kafka_acls import AclBinding, BrokerAcl, all_acls, apply_acls, broker_acls
from libs.common.kafka_security import KafkaAccess
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

pytestmark = pytest.mark.timeout(600)  # the first test of a session waits for the private broker to start


async def _apply(access: KafkaAccess, prefix: str, *args: str) -> list[str]:
    """``python -m deploy.acls apply`` as the admin user, for ``prefix``: its output lines."""
    env = {k: v for k, v in os.environ.items() if "KAFKA_" not in k} | access.env() | {"TEXTPULSE_TOPIC_PREFIX": prefix}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "deploy.acls", "apply", *args], cwd=REPO,
                                   env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


async def _holds(access: KafkaAccess, rules: list[AclBinding], *, held: bool = True) -> bool:
    """Whether the broker's authorizer shows every one of ``rules`` (or, with ``held=False``, none)."""
    found = set(await broker_acls(access))
    return all((BrokerAcl.of(rule) in found) == held for rule in rules)


async def test_apply_adds_what_is_missing_and_removes_what_the_manifest_no_longer_grants(
    sasl_kafka: KafkaCluster,
) -> None:
    admin, prefix = sasl_kafka.admin, f"t{uuid.uuid4().hex[:10]}."
    granted = all_acls(prefix)
    stale = sorted([AclBinding("optout", "topic", f"{prefix}textpulse.recipients", "Write"),
                    AclBinding("dispatcher", "topic", f"{prefix}textpulse.retired", "Read")])
    kept = [AclBinding("dispatcher", "topic", f"x{prefix}textpulse.recipients", "Read"),  # another prefix's
            AclBinding("someone-else", "topic", f"{prefix}textpulse.recipients", "Read")]  # not Textpulse's user
    await apply_acls(admin, [*granted[1:], *stale, *kept])  # the first granted ACL is missing
    await eventually(lambda: _holds(admin, [*granted[1:], *stale, *kept]), timeout=60, interval=0.5)
    before = await broker_acls(admin)

    planned = await _apply(admin, prefix, "--dry-run")
    assert planned == [f"+ {BrokerAcl.of(granted[0])}", *(f"- {BrokerAcl.of(rule)}" for rule in stale)]
    assert await broker_acls(admin) == before  # a dry run changes nothing

    applied = await _apply(admin, prefix)
    assert applied == [*(f"- {BrokerAcl.of(rule)}" for rule in stale),
                       f"kafka: {len(granted)} ACLs in place for prefix {prefix!r}, 2 no longer granted removed"]
    await eventually(lambda: _holds(admin, stale, held=False), timeout=60, interval=0.5)
    assert await _holds(admin, [*granted, *kept])
    assert await _apply(admin, prefix, "--dry-run") == ["kafka: nothing to change"]
