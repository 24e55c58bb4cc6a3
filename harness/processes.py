"""Real processes for tests and benchmarks: a free port, a child process with its log, waiting for a URL."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from deploy.stack import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def free_port_base() -> int:
    """A base B such that B..B+99 are all free (the stack uses B, B+1..B+12, B+80, B+81)."""
    for base in range(20000, 30000, 100):
        try:
            socks = []
            for offset in range(100):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Process:
    """A child process with its log in ``log_dir``; ``kill`` is a real SIGKILL."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.url = ""
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=self._log, stderr=self._log,
                                     stdin=subprocess.DEVNULL)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._log.close()

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM) without waiting; ``stop`` waits."""
        if self.proc.poll() is None:
            self.proc.terminate()

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


async def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(url, timeout=10)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not ready in {timeout}s")
            await asyncio.sleep(0.1)


async def wait_ready(name: str, port: int, proc: subprocess.Popen[bytes], *, timeout: float = 60.0) -> None:
    """Wait until the service ``name`` (``proc``) answers 200 on ``/readyz`` at ``port``; fail if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if (await reader.read())[9:12] == b"200":
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{name} did not become ready in {timeout:g} s")
