"""Run a stand-in's ASGI app under uvicorn, as a process (``serve_forever``) or in a thread (``ServerThread``).

Both bind the socket themselves before uvicorn starts, so port 0 works and the URL is known up front.
The process form writes one line to stdout once the socket is listening::

    twilio-standin listening on http://127.0.0.1:8080

Scripts wait for that line (and read the port from it when they asked for port 0).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from libs.common.logging import get_logger

log = get_logger(__name__)


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` (0 picks a free port); the caller owns the socket."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _uvicorn_config(app: ASGIApp, *, in_thread: bool) -> uvicorn.Config:
    # httptools + uvloop and no access log: the Twilio stand-in must sustain 2,000 creates/s on 2 cores.
    # A short graceful-shutdown timeout, because the "timeout" fault plan holds requests open on purpose.
    return uvicorn.Config(
        app,
        http="httptools",
        loop="asyncio" if in_thread else "uvloop",
        lifespan="on",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=1,
        timeout_keep_alive=30,
        proxy_headers=False,
        server_header=False,
        backlog=2048,
    )


def serve_forever(app: ASGIApp, *, name: str, host: str, port: int) -> None:
    """Serve ``app`` in this process until SIGINT/SIGTERM; announce the URL on stdout first."""
    sock = bind_socket(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{bound_host}:{bound_port}"
    log.info("standin.listening", extra={"standin": name, "url": url})
    sys.stdout.write(f"{name} listening on {url}\n")
    sys.stdout.flush()
    uvicorn.Server(_uvicorn_config(app, in_thread=False)).run(sockets=[sock])


class ServerThread:
    """A stand-in served on 127.0.0.1 from a background thread, for tests and benchmarks.

    Usage::

        with ServerThread(create_app(config)) as server:
            httpx.get(server.url + "/healthz")

    ``__enter__`` returns once the app's start-up has run and the port accepts connections.
    """

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = bind_socket(host, port)
        bound_host, bound_port = self._sock.getsockname()[:2]
        self.url = f"http://{bound_host}:{bound_port}"
        self._server = uvicorn.Server(_uvicorn_config(app, in_thread=True))
        self._thread = threading.Thread(target=self._run, name=f"standin-{bound_port}", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # kept so start() can chain it into its own error
            self._error = exc

    def start(self) -> ServerThread:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"stand-in at {self.url} failed to start") from self._error
            self._thread.join(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        if self._thread.is_alive():
            raise RuntimeError(f"stand-in at {self.url} did not stop within 10 s")

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
