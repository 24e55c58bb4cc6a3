"""Delivery of signed, form-encoded webhooks: status callbacks and incoming messages.

Their bodies: docs/twilio.md#status-callbacks and docs/twilio.md#incoming-messages.

A fixed pool of worker tasks drains one queue of jobs, so the cost does not grow with the number of
messages in flight. A status callback that fails (no answer, or a non-2xx status) is retried after
``backoff``, ``2 x backoff``, ... up to ``attempts`` tries in all; every try is logged for the control
API. Jobs from before a reset are dropped. Every webhook is signed as ``signing`` says at the moment it is
sent (the auth token, or a SharedKey: ``PUT /_control/webhook-signing``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import httpx

from libs.common.logging import get_logger
from standins.twilio.signature import WebhookSigning

log = get_logger(__name__)

Schedule = Callable[[float, Callable[[], None]], None]


@dataclass(frozen=True, slots=True)
class CallbackJob:
    url: str
    params: tuple[tuple[str, str], ...]
    message_sid: str
    status: str
    generation: int
    idempotency_token: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempt: int = 1
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class CallbackAttempt:
    at: float
    url: str
    message_sid: str
    status: str
    attempt: int
    duplicate: bool
    http_status: int | None
    error: str | None
    params: tuple[tuple[str, str], ...]  # shared with the job: 100,000 messages keep no extra copies


@dataclass(frozen=True, slots=True)
class WebhookResult:
    url: str
    http_status: int | None
    error: str | None
    body: str


def signed_headers(signing: WebhookSigning, url: str, params: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return {
        **signing.headers(url, params),
        "User-Agent": "TwilioProxy/1.1",
        "Content-Type": "application/x-www-form-urlencoded",
    }


@dataclass(slots=True)
class CallbackDispatcher:
    signing: WebhookSigning
    attempts: int
    backoff: float
    timeout: float
    workers: int
    schedule: Schedule
    log: list[CallbackAttempt] = field(default_factory=list)
    generation: int = 0
    _queue: asyncio.Queue[CallbackJob] | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        # trust_env off: a proxy from the environment must not sit between the stand-in and local webhooks.
        self._client = httpx.AsyncClient(
            timeout=self.timeout, limits=httpx.Limits(max_connections=self.workers * 2), trust_env=False
        )
        self._tasks = [asyncio.create_task(self._work(), name=f"callback-worker-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def reset(self) -> None:
        """Forget the log; jobs queued or scheduled before now are dropped when their turn comes."""
        self.generation += 1
        self.log.clear()

    def submit(self, job: CallbackJob) -> None:
        assert self._queue is not None, "start() first"
        self._queue.put_nowait(job)

    @property
    def pending(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            if job.generation == self.generation:
                await self._deliver(job)

    async def _deliver(self, job: CallbackJob) -> None:
        assert self._client is not None
        http_status: int | None = None
        error: str | None = None
        headers = signed_headers(self.signing, job.url, job.params)
        headers["I-Twilio-Idempotency-Token"] = job.idempotency_token
        try:
            response = await self._client.post(job.url, content=str(httpx.QueryParams(job.params)), headers=headers)
            http_status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if job.generation != self.generation:
            return
        self.log.append(
            CallbackAttempt(
                time.time(), job.url, job.message_sid, job.status, job.attempt, job.duplicate, http_status, error,
                job.params,
            )
        )
        if http_status is not None and 200 <= http_status < 300:
            return
        if job.attempt < self.attempts:
            delay = self.backoff * 2 ** (job.attempt - 1)
            retry = replace(job, attempt=job.attempt + 1)
            self.schedule(delay, lambda: self.submit(retry))
        else:
            log.warning(
                "callback.abandoned",
                extra={"message_sid": job.message_sid, "status": job.status, "http_status": http_status},
            )

    async def post_once(self, url: str, params: tuple[tuple[str, str], ...]) -> WebhookResult:
        """POST a signed incoming-message webhook once and report what the endpoint answered."""
        assert self._client is not None
        try:
            response = await self._client.post(
                url, content=str(httpx.QueryParams(params)), headers=signed_headers(self.signing, url, params)
            )
        except httpx.HTTPError as exc:
            return WebhookResult(url, None, f"{type(exc).__name__}: {exc}", "")
        return WebhookResult(url, response.status_code, None, response.text)
