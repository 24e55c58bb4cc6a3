"""How every service process runs: logging, /healthz, /readyz and /metrics, background workers, clean exit.

``run_service`` is what each ``services/<name>/__main__.py`` calls. Bad settings stop the process
with exit code 2 and a message naming the variable; a worker that dies takes the process down with
exit code 1 (a supervisor restarts it) instead of leaving a half-alive service that says it is healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import uvicorn
import uvloop
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp

from libs.common import metrics
from libs.common.errors import ConfigurationError
from libs.common.logging import configure_logging, get_logger
from libs.common.settings import Settings, load_settings

log = get_logger(__name__)

Check = Callable[[], Awaitable[None]]
# Whether a service is ready, given the names of its failing checks.
ReadyPolicy = Callable[[frozenset[str]], bool]


def all_pass(failing: frozenset[str]) -> bool:
    """The default: ready only while every check passes."""
    return not failing


def any_of(*names: str) -> ReadyPolicy:
    """Ready while at least one of ``names`` passes: for a service that can fall back from one to another."""
    wanted = frozenset(names)

    def policy(failing: frozenset[str]) -> bool:
        return not wanted <= failing

    return policy


def health_router(service: str, checks: Mapping[str, Check], *, ready_when: ReadyPolicy = all_pass) -> APIRouter:
    """``/healthz``: the process answers. ``/readyz``: each dependency check runs (3 s at most each); 200 while
    ``ready_when`` accepts the failing ones (``ready``, or ``degraded`` when some fail), else 503 (``not_ready``).
    The body names the failing checks. ``/metrics``: Prometheus' scrape of this process (``libs/common/metrics.py``)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), timeout=3)
                results[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported below
                # The answer names the check and the kind of failure; the text (hosts, users) goes to the log.
                results[name] = f"failed: {type(exc).__name__}"
                metrics.READINESS_FAILURES.labels(name).inc()
                log.warning("readiness.failed", extra={"check": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
        failing = frozenset(name for name, result in results.items() if result != "ok")
        ready = ready_when(failing)
        metrics.READY.labels(service).set(1 if ready else 0)
        status = "not_ready" if not ready else "degraded" if failing else "ready"
        body = {"status": status, "service": service, "failing": sorted(failing), "checks": results}
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get("/metrics")
    async def scrape(request: Request) -> Response:
        # Prometheus scrapes pods directly; a request through a proxy (the ingress adds these headers) is
        # from outside the cluster, and the figures are not for it.
        if any(header in request.headers for header in FORWARDED_HEADERS):
            return Response(status_code=404)
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE_LATEST)

    return router


FORWARDED_HEADERS = frozenset({"x-forwarded-for", "forwarded", "x-real-ip"})


@dataclass
class Service:
    """What a service's ``main.build`` returns: its web app (any ASGI app) and the long-running workers beside it."""

    app: ASGIApp
    workers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


Builder = Callable[[Settings], AbstractAsyncContextManager[Service]]


def run_service(name: str, build: Builder) -> None:
    """Entry point of ``python -m services.<name>``; never returns."""
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"{name}: {exc}", file=sys.stderr)  # noqa: T201 - logging is not configured yet
        sys.exit(2)
    configure_logging(name, level=settings.log_level, fmt=settings.log_format)
    try:
        code = uvloop.run(_serve(name, build, settings))
    except ConfigurationError as exc:
        log.error("service.misconfigured", extra={"code": exc.code, "error": str(exc)})
        print(f"{name}: {exc}", file=sys.stderr)  # noqa: T201
        code = 2
    sys.exit(code)


async def _serve(name: str, build: Builder, settings: Settings) -> int:
    async with build(settings) as service:
        config = uvicorn.Config(
            service.app, host=settings.http_host, port=settings.http_port, log_config=None, lifespan="off",
            limit_concurrency=settings.http_limit_concurrency,
        )
        server = _Server(config)
        failed = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, setattr, server, "should_exit", True)

        async def guard(worker: Callable[[], Awaitable[None]]) -> None:
            try:
                await worker()
            except asyncio.CancelledError:
                raise
            except BaseException:
                log.exception("worker.crashed", extra={"service": name})
                failed.set()
                server.should_exit = True

        tasks = [asyncio.create_task(guard(w)) for w in service.workers]
        log.info("service.started", extra={"service": name, "port": settings.http_port})
        await server.serve()  # returns on SIGTERM / SIGINT, or when a worker failed
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    log.info("service.stopped", extra={"service": name, "failed": failed.is_set()})
    return 1 if failed.is_set() else 0


class _Server(uvicorn.Server):
    """uvicorn re-raises a captured SIGTERM after serving, which would kill the process before its
    workers, pool and producer are closed; signals are handled in ``_serve`` instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
