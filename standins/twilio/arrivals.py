"""The arrival log: when each outbound message reached the stand-in and when it left its sender's queue.

A benchmark reads it to see the rate the platform achieved (``accepted_at``) and whether it ever sent
faster than a sender may (segments in any sliding window), while ``left_queue_at`` shows the queue's
own pacing. Pure: the summary is computed from the rows given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from standins.twilio.messages import Message


def arrival_row(message: Message) -> dict[str, Any]:
    return {
        "seq": message.seq,
        "sid": message.sid,
        "sender": message.sender,
        "to": message.to,
        "segments": message.num_segments,
        "accepted_at": message.accepted_at,
        "left_queue_at": message.left_queue_at,
        "status": message.status,
        "error_code": message.error_code,
    }


def max_in_window(events: Sequence[tuple[float, int]], window: float) -> int:
    """The most weight (segments) whose times fall in any half-open window ``[t, t + window)``.

    ``events`` are (time, weight) pairs sorted by time.
    """
    best = total = 0
    start = 0
    for time_, weight in events:
        total += weight
        while events[start][0] <= time_ - window:
            total -= events[start][1]
            start += 1
        best = max(best, total)
    return best


def summarize(messages: Iterable[Message], window: float = 1.0) -> dict[str, dict[str, Any]]:
    """Per sender: messages, segments, span and rate of arrivals, and peak segments per ``window`` seconds
    at arrival and at queue exit."""
    by_sender: dict[str, list[Message]] = {}
    for message in messages:
        if message.sender is not None:
            by_sender.setdefault(message.sender, []).append(message)
    summary: dict[str, dict[str, Any]] = {}
    for sender, sent in sorted(by_sender.items()):
        arrived = sorted((m.accepted_at, m.num_segments) for m in sent)
        left = sorted((m.left_queue_at, m.num_segments) for m in sent if m.left_queue_at is not None)
        segments = sum(w for _, w in arrived)
        span = arrived[-1][0] - arrived[0][0] if len(arrived) > 1 else 0.0
        summary[sender] = {
            "messages": len(sent),
            "segments": segments,
            "first_accepted_at": arrived[0][0],
            "last_accepted_at": arrived[-1][0],
            "arrival_segments_per_second": round((segments - arrived[-1][1]) / span, 3) if span else None,
            "peak_segments_arrived_per_window": max_in_window(arrived, window),
            "peak_segments_left_per_window": max_in_window(left, window) if left else 0,
            "window_seconds": window,
        }
    return summary
