"""How every service process runs: logging, /healthz, /readyz and /metrics, background workers, clean exit.

``run_service`` is what each ``services/<name>/__main__.py`` calls. Bad settings stop the process
with exit code 2 and a message naming the variable; a worker that dies takes the process down with
exit code 1 (a supervisor restarts it) instead of leaving a half-alive service that says it is healthy.

SIGTERM (or SIGINT) drains the process: ``/readyz`` answers 503 ``draining`` at once, each ``Drainable``
worker is asked to finish the work in hand (its batch, its sends in flight), commit and return, and any
other worker is cancelled (its passes are safe to interrupt). A worker still running after
``TEXTPULSE_DRAIN_SECONDS`` is cancelled too (``service.drain_overran``), then the HTTP server stops and
the service's connections close (a consumer leaves its group there).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

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


class Draining:
    """Whether this process has begun its drain (SIGTERM): one per process, set once by ``serve``, read by
    ``/readyz`` whatever ASGI app answers it."""

    started = False


PROCESS_DRAIN = Draining()


def health_router(service: str, checks: Mapping[str, Check], *, ready_when: ReadyPolicy = all_pass) -> APIRouter:
    """``/healthz``: the process answers. ``/readyz``: each dependency check runs (3 s at most each); 200 while
    ``ready_when`` accepts the failing ones (``ready``, or ``degraded`` when some fail), else 503 (``not_ready``).
    The body names the failing checks. ``/metrics``: Prometheus' scrape of this process (``libs/common/metrics.py``)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        if PROCESS_DRAIN.started:
            return JSONResponse({"status": "draining", "service": service, "checks": {}}, status_code=503)
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

    @router.get("/metrics", include_in_schema=False)  # Prometheus' text format, for the cluster only
    async def scrape(request: Request) -> Response:
        # Prometheus scrapes pods directly; a request through a proxy (the ingress adds these headers) is
        # from outside the cluster, and the figures are not for it.
        if any(header in request.headers for header in FORWARDED_HEADERS):
            return Response(status_code=404)
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE_LATEST)

    return router


FORWARDED_HEADERS = frozenset({"x-forwarded-for", "forwarded", "x-real-ip"})


@runtime_checkable
class Drainable(Protocol):
    """A worker that, once asked to stop, finishes the work in hand, commits it, and returns from ``run``."""

    async def run(self) -> None: ...

    def request_stop(self) -> None: ...


Worker = Callable[[], Awaitable[None]] | Drainable


def run_worker(worker: Worker) -> Awaitable[None]:
    """What a worker runs, drainable or not (``asyncio.create_task(run_worker(w))``)."""
    return worker.run() if isinstance(worker, Drainable) else worker()


@dataclass
class Service:
    """What a service's ``main.build`` returns: its web app (any ASGI app) and the long-running workers beside it."""

    app: ASGIApp
    workers: list[Worker] = field(default_factory=list)


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
        # What start-up loaded lives as long as the process: frozen, full collections no longer walk through
        # it. Without, each one took tens of milliseconds of a busy loop (the links bench's p99, bench/RESULTS.md).
        gc.freeze()
        config = uvicorn.Config(
            service.app, host=settings.http_host, port=settings.http_port, log_config=None, lifespan="off",
            limit_concurrency=settings.http_limit_concurrency,
        )
        server = _Server(config)
        stop = asyncio.Event()  # SIGTERM / SIGINT, or a worker failed
        failed = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        async def guard(worker: Worker) -> None:
            try:
                await run_worker(worker)
            except asyncio.CancelledError:
                raise
            except BaseException:
                log.exception("worker.crashed", extra={"service": name})
                failed.set()
                stop.set()

        running = [(w, asyncio.create_task(guard(w))) for w in service.workers]
        serving = asyncio.create_task(server.serve())
        log.info("service.started", extra={"service": name, "port": settings.http_port})
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([serving, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        PROCESS_DRAIN.started = True
        await drain(name, running, settings.drain_seconds)
        server.should_exit = True
        await serving
    log.info("service.stopped", extra={"service": name, "failed": failed.is_set()})
    return 1 if failed.is_set() else 0


async def drain(name: str, running: Sequence[tuple[Worker, asyncio.Task[None]]], drain_s: float) -> bool:
    """Ask each drainable worker to stop and cancel the others; cancel what still runs after ``drain_s``.

    Returns whether every worker finished within ``drain_s``.
    """
    started = asyncio.get_running_loop().time()
    log.info("service.draining", extra={"service": name, "drain_s": drain_s})
    for worker, task in running:
        if isinstance(worker, Drainable):
            worker.request_stop()
        else:
            task.cancel()
    tasks = [task for _, task in running]
    late: set[asyncio.Task[None]] = set()
    if tasks:
        _, late = await asyncio.wait(tasks, timeout=drain_s)
    for task in late:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    took = round(asyncio.get_running_loop().time() - started, 3)
    if late:
        log.warning("service.drain_overran", extra={"service": name, "drain_s": drain_s, "cancelled": len(late)})
    else:
        log.info("service.drained", extra={"service": name, "seconds": took})
    return not late


class _Server(uvicorn.Server):
    """uvicorn re-raises a captured SIGTERM after serving, which would kill the process before its
    workers, pool and producer are closed; signals are handled in ``_serve`` instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
