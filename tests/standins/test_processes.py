"""Both stand-ins start as processes the way the project's scripts start them."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from standins.twilio.config import TwilioConfig


@contextmanager
def running(*args: str) -> Iterator[str]:
    """Start ``python -m <args> --port 0`` and yield its URL from the "listening" line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", *args, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    with proc.stdout:
        try:
            line = proc.stdout.readline()
            match = re.fullmatch(r"\S+ listening on (http://127\.0\.0\.1:\d+)\n", line)
            assert match, line
            yield match.group(1)
        finally:
            proc.terminate()
            # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught.
            assert proc.wait(10) in (0, -signal.SIGTERM)


def test_twilio_and_imis_processes_start_and_answer_healthz() -> None:
    config = TwilioConfig()
    with running("standins.twilio", "--rate", "5") as twilio, running("standins.imis", "--dataset", "small") as imis:
        assert httpx.get(twilio + "/healthz").json()["status"] == "ok"
        assert httpx.get(imis + "/healthz").json() == {"status": "ok", "members": 16}
        created = httpx.post(
            f"{twilio}/2010-04-01/Accounts/{config.account_sid}/Messages.json",
            auth=(config.account_sid, config.auth_token),
            data={"To": "+14155550134", "From": "+18885550100", "Body": "hello from a process"},
        )
        assert created.status_code == 201
