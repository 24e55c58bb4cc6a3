"""``python -m deploy.acls apply|commands|table|users``: the Kafka ACLs of libs/common/kafka_acls.py.

- ``apply``: create every service's ACLs (for ``TEXTPULSE_TOPIC_PREFIX``) on the cluster that the
  ``TEXTPULSE_KAFKA_*`` variables name, which must be its admin user's; idempotent.
- ``commands``: print them as ``kafka-acls.sh`` commands, for a cluster run by a platform team.
- ``table``: print the README's table. ``users``: the Kafka users, one a line (deploy/local/kafka_tls.sh).
"""

from __future__ import annotations

import argparse
import asyncio

from libs.common.kafka_acls import USERS, acl_commands, acl_table, all_acls, apply_acls
from libs.common.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.acls", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["apply", "commands", "table", "users"])
    args = parser.parse_args()
    if args.command == "users":
        print("\n".join(USERS))
    elif args.command == "table":
        print(acl_table())
    else:
        settings = load_settings()
        if args.command == "commands":
            print("\n".join(acl_commands(settings.topic_prefix, settings.kafka_bootstrap_servers)))
        else:
            count = asyncio.run(apply_acls(settings.kafka, all_acls(settings.topic_prefix)))
            print(f"kafka: {count} ACLs in place for prefix {settings.topic_prefix!r}")


if __name__ == "__main__":
    main()
