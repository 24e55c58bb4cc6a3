"""How long to wait before trying a failed call or an outbox row again. Pure: the jitter is passed in."""

from __future__ import annotations


def retry_delay(attempts: int, *, base_s: float, cap_s: float, jitter: float) -> float:
    """Seconds before attempt ``attempts + 1``: base * 2^(attempts-1), capped, spread by ±20 % (jitter in [0, 1)).

    The spread keeps workers that failed together (iMIS or the SMTP server was down) from all coming
    back in the same second.

    >>> [retry_delay(n, base_s=5, cap_s=3600, jitter=0.5) for n in (1, 2, 3, 20)]
    [5.0, 10.0, 20.0, 3600.0]
    """
    delay = min(cap_s, base_s * 2.0 ** max(attempts - 1, 0))
    return delay * (0.8 + 0.4 * jitter)
