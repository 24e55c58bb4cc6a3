"""Read 200,000 synthetic member replies with the revocation reader, in one thread, and print the cost.

    python -m bench.revocations [--replies 200000] [--seed 7]

The opt-out service reads every reply Twilio's filter lets through (services/optout/revocation.py) inside
the webhook processor's batch, which keeps up with Twilio at hundreds of requests a second; this says what a
reply costs there. The replies look like what members send: mostly ordinary answers ("Thanks!", "See you at
7", "stop by the booth at 3"), some revocations in English, Spanish and French, with punctuation, case and
emoji, and a few long ones near the 1,600-character cap. CPU-seconds per reply are load-independent; the
wall-clock rate and the load average are printed beside them.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections import Counter

from bench.report import result
from services.optout.revocation import read_reply

ORDINARY = ["Thanks!", "See you at 7", "Stop by the booth at 3", "Who is speaking at the AGM?", "yes please",
            "Can I bring a guest?", "Where do I park?", "Great news, thank you 🎉", "What time does it end?",
            "I'll stop in on Friday", "Is the Québec chapter meeting still on?", "Merci beaucoup", "¡Gracias!"]
REVOKING = ["STOP!!!", "please stop texting me", "Remove me from this list", "no more texts", "don't text me",
            "No más", "Basta ya", "Arrêtez de m'envoyer des messages", "unsubscribe me", "Opt out please"]
DOUBTFUL = ["Can you stop?", "wrong number", "not interested", "this is spam"]


def synthetic_replies(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    replies = []
    for _ in range(count):
        roll = rng.random()
        pool = ORDINARY if roll < 0.85 else REVOKING if roll < 0.96 else DOUBTFUL
        text = rng.choice(pool)
        if rng.random() < 0.01:
            text = (text + " ") * (1500 // (len(text) + 1))  # near the body cap
        replies.append(text.upper() if rng.random() < 0.1 else text)
    return replies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--replies", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    replies = synthetic_replies(args.replies, args.seed)
    load_before = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    kinds = Counter(read_reply(body).revocation.value for body in replies)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    figure = f"Revocation reader, {args.replies:,} replies"
    result(f"{figure}: CPU per reply", "-", f"{cpu / args.replies * 1e6:,.1f} us")
    result(f"{figure}: wall-clock rate", "-", f"{args.replies / wall:,.0f} replies/s")
    result(f"{figure}: read as", "-", ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())))
    result(f"{figure}: load average (1 min) before, after", "-", f"{load_before:.2f}, {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
