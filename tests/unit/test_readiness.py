"""``/readyz`` under each readiness policy: every check must pass by default; ``any_of`` (the opt-out
service: a webhook is durable in Kafka or in PostgreSQL) is ready, degraded, while one of them passes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from libs.common.runtime import Check, ReadyPolicy, all_pass, any_of, health_router


async def _ok() -> None:
    return None


async def _down() -> None:
    raise ConnectionRefusedError(111, "Connect call failed")


def _checks(failing: set[str]) -> dict[str, Check]:
    return {name: _down if name in failing else _ok for name in ("postgres", "kafka")}


async def _readyz(checks: dict[str, Check], policy: ReadyPolicy) -> tuple[int, dict[str, Any]]:
    app = FastAPI()
    app.include_router(health_router("svc", checks, ready_when=policy))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc.test") as client:
        response = await client.get("/readyz")
    return response.status_code, response.json()


FALLBACK = any_of("kafka", "postgres")


@pytest.mark.parametrize(("policy", "failing", "status", "state"), [
    (all_pass, set(), 200, "ready"),
    (all_pass, {"postgres"}, 503, "not_ready"),
    (all_pass, {"kafka"}, 503, "not_ready"),
    (FALLBACK, set(), 200, "ready"),
    (FALLBACK, {"postgres"}, 200, "degraded"),
    (FALLBACK, {"kafka"}, 200, "degraded"),
    (FALLBACK, {"postgres", "kafka"}, 503, "not_ready"),
])
async def test_readyz_answers_by_policy_and_names_what_fails(
    policy: ReadyPolicy, failing: set[str], status: int, state: str
) -> None:
    code, body = await _readyz(_checks(failing), policy)
    assert (code, body["status"]) == (status, state)
    assert body["failing"] == sorted(failing)
    assert body["checks"] == {name: "failed: ConnectionRefusedError" if name in failing else "ok"
                              for name in ("postgres", "kafka")}


async def test_a_check_outside_the_fallback_pair_still_counts_only_through_the_policy() -> None:
    checks = {**_checks({"kafka"}), "smtp": _down}
    code, body = await _readyz(checks, FALLBACK)
    assert (code, body["status"], body["failing"]) == (200, "degraded", ["kafka", "smtp"])
    code, body = await _readyz({**checks, "postgres": _down}, FALLBACK)
    assert (code, body["status"]) == (503, "not_ready")
