"""Every Kafka topic: its name, partition count, key, event type, and which services write and read it.
The one source of truth.

``ensure_topics`` (in ``kafka.py``) creates them all, with a ``.dlq`` twin for each, before any
service starts; services check at start that theirs exist with these partition counts. Who produces,
consumes or only checks a topic is what ``kafka_acls.py`` turns into the broker's ACLs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from libs.common import events

# Covariant: a topic of Recipient events is a topic of events, for code that handles every topic.
EventT_co = TypeVar("EventT_co", bound=events.Event, covariant=True)


@dataclass(frozen=True)
class TopicSpec(Generic[EventT_co]):
    """A topic and the one event type it carries: ``decode_event(RECIPIENTS, value)`` is a ``Recipient``."""

    name: str
    partitions: int
    event_type: type[EventT_co]
    key: str  # what the key is, for readers; producers pass it explicitly
    configs: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    # Services (SERVICES) that write it, read it in their consumer group, or only check at start that it exists.
    producers: frozenset[str] = field(default=frozenset(), hash=False, compare=False)
    consumers: frozenset[str] = field(default=frozenset(), hash=False, compare=False)
    checkers: frozenset[str] = field(default=frozenset(), hash=False, compare=False)

    def full_name(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"

    def dlq_name(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}.dlq"


# Every service that talks to Kafka, each with a Kafka user of its own when the cluster authenticates.
SERVICES = ("api", "optout", "scheduler", "audience", "dispatcher", "usage", "links", "events")


def group_id(service: str, prefix: str = "") -> str:
    """The consumer group of ``service``: one per service, so each reads every record once."""
    return f"{prefix}{service}"


_WEEK_MS = str(7 * 24 * 3600 * 1000)

CAMPAIGN_DUE = TopicSpec("textpulse.campaign-due", 6, events.CampaignDue, "campaign_id",
                         producers=frozenset({"scheduler"}), consumers=frozenset({"audience"}),
                         checkers=frozenset({"api"}))
# Recipients are partitioned by sender, so one dispatcher owns a sender's pace; 12 partitions let
# up to 12 dispatcher processes share the work.
RECIPIENTS = TopicSpec("textpulse.recipients", 12, events.Recipient, "sender", {"retention.ms": _WEEK_MS},
                       producers=frozenset({"audience", "dispatcher"}), consumers=frozenset({"dispatcher"}))
SEND_RESULTS = TopicSpec("textpulse.send-results", 6, events.SendResult, "run_id",
                         producers=frozenset({"dispatcher"}), consumers=frozenset({"usage", "events"}))
# The opt-out service's relay publishes these from the event outbox, where it and the API write them.
MESSAGE_STATUS = TopicSpec("textpulse.message-status", 6, events.MessageStatus, "message_sid",
                           producers=frozenset({"optout"}), consumers=frozenset({"usage", "events"}))
CONSENT = TopicSpec("textpulse.consent", 6, events.ConsentChanged, "phone",
                    producers=frozenset({"optout"}), consumers=frozenset({"usage", "events"}),
                    checkers=frozenset({"api", "dispatcher"}))
# Verified Twilio webhooks, appended before the 200 and written to PostgreSQL by the opt-out service.
# Keyed by organisation and member phone (inbound) or message SID (status), so one member's STOP and
# START, or one message's callbacks, stay in order on one partition.
WEBHOOKS = TopicSpec("textpulse.webhooks", 6, events.WebhookReceived, "org_id:phone or org_id:message_sid",
                     {"retention.ms": _WEEK_MS}, producers=frozenset({"optout"}),
                     consumers=frozenset({"optout", "events"}))

# Clicks on tracked short links: the links service appends each before its redirect and writes them to
# PostgreSQL from here. Keyed by run, so a run's clicks stay in order on one partition.
LINK_CLICKS = TopicSpec("textpulse.link-clicks", 6, events.LinkClicked, "run_id", {"retention.ms": _WEEK_MS},
                        producers=frozenset({"links"}), consumers=frozenset({"links", "events"}))

ALL_TOPICS: tuple[TopicSpec[events.Event], ...] = (CAMPAIGN_DUE, RECIPIENTS, SEND_RESULTS, MESSAGE_STATUS, CONSENT,
                                                   WEBHOOKS, LINK_CLICKS)
DLQ_PARTITIONS = 1
# Dead letters are kept a month: long enough for someone to look, replay and fix.
DLQ_CONFIGS = {"retention.ms": str(30 * 24 * 3600 * 1000)}
