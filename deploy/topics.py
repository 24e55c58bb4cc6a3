"""``python -m deploy.topics``: create every topic (and its DLQ) on TEXTPULSE_KAFKA_BOOTSTRAP_SERVERS.

Idempotent; fails if an existing topic has another partition count than libs/common/topics.py says.
"""

from __future__ import annotations

import asyncio

from libs.common.kafka import ensure_topics
from libs.common.settings import load_settings
from libs.common.topics import ALL_TOPICS


async def main() -> None:
    settings = load_settings()
    found = await ensure_topics(
        settings.kafka,
        ALL_TOPICS,
        prefix=settings.topic_prefix,
        replication_factor=settings.kafka_replication_factor,
    )
    for name, partitions in sorted(found.items()):
        print(f"{name}: {partitions} partitions")


if __name__ == "__main__":
    asyncio.run(main())
