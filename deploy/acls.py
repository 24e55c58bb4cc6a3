"""``python -m deploy.acls apply|commands|table|users``: the Kafka ACLs of libs/common/kafka_acls.py.

- ``apply``: create every service's ACLs (for ``TEXTPULSE_TOPIC_PREFIX``) on the cluster that the
  ``TEXTPULSE_KAFKA_*`` variables name, which must be its admin user's, and remove the ACLs of Textpulse's
  service users on that prefix's topics and groups that the manifest no longer grants; idempotent.
  ``apply --dry-run`` lists what it would add (+) and remove (-), and changes nothing.
- ``commands``: print them as ``kafka-acls.sh`` commands, for a cluster run by a platform team.
- ``table``: print the README's table. ``users``: the Kafka users, one a line (deploy/local/kafka_tls.sh).
"""

from __future__ import annotations

import argparse
import asyncio

from libs.common.kafka_acls import (
    USERS,
    BrokerAcl,
    acl_commands,
    acl_table,
    all_acls,
    apply_acls,
    broker_acls,
    missing_acls,
    prune_acls,
    stale_acls,
)
from libs.common.kafka_security import KafkaAccess
from libs.common.settings import load_settings


async def apply(kafka: KafkaAccess, prefix: str, *, dry_run: bool) -> list[str]:
    """What ``apply`` did (or, with ``dry_run``, would do), one line each: + added, - removed."""
    rules = all_acls(prefix)
    if dry_run:
        found = await broker_acls(kafka)
        return ([f"+ {BrokerAcl.of(rule)}" for rule in missing_acls(found, rules)] +
                [f"- {acl}" for acl in stale_acls(found, rules, prefix)])
    count = await apply_acls(kafka, rules)
    removed = await prune_acls(kafka, rules, prefix)
    return [f"- {acl}" for acl in removed] + [f"kafka: {count} ACLs in place for prefix {prefix!r}, "
                                              f"{len(removed)} no longer granted removed"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.acls", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["apply", "commands", "table", "users"])
    parser.add_argument("--dry-run", action="store_true", help="apply: list the changes, make none")
    args = parser.parse_args()
    if args.dry_run and args.command != "apply":
        parser.error("--dry-run goes with apply")
    if args.command == "users":
        print("\n".join(USERS))
    elif args.command == "table":
        print(acl_table())
    else:
        settings = load_settings()
        if args.command == "commands":
            print("\n".join(acl_commands(settings.topic_prefix, settings.kafka_bootstrap_servers)))
        else:
            lines = asyncio.run(apply(settings.kafka, settings.topic_prefix, dry_run=args.dry_run))
            print("\n".join(lines) if lines else "kafka: nothing to change")


if __name__ == "__main__":
    main()
