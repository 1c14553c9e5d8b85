"""A temporary Prefect server for one `armsledger run`, started before this process imports Prefect.

Without PREFECT_API_URL, Prefect starts a temporary server itself at a flow's
first API call: it imports its whole server application into the calling
process (about 3 s) only to launch it in a subprocess, then waits for it
(5 to 15 s). Started here instead, the same server command (uvicorn on
Prefect's server app, the UI off, as Prefect runs it) comes up while this
process imports the flows and loads spaCy's model; PREFECT_API_URL then
points this process at it, and the server is stopped when the run ends.
"""
from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

# Prefect's own variables for the server it starts itself: no UI, and the
# server treats itself as a temporary one.
_SERVER_ENVIRONMENT = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
STOP_TIMEOUT_SECONDS = 10.0
DRAIN_TIMEOUT_SECONDS = 10.0


class ServerStartError(RuntimeError):
    """The temporary server did not answer its health check in time."""


class TemporaryServer:
    """`with TemporaryServer() as server:` a Prefect API at `server.api_url` while the block runs.

    `start()` returns at once; `wait_ready()` blocks until the API answers.
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self.process: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    def start(self) -> None:
        """Launches the server process (environment: this one's, with Prefect's server variables)."""
        if self.process is not None:
            return
        self._ready.clear()
        spec = importlib.util.find_spec("prefect")  # found, not imported
        if spec is None or not spec.submodule_search_locations:
            raise ServerStartError("Prefect is not installed")
        app_dir = str(Path(list(spec.submodule_search_locations)[0]).parent)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory", "prefect.server.api.server:create_app",
             "--host", self.host, "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
            env={**os.environ, **_SERVER_ENVIRONMENT},
            stdin=subprocess.DEVNULL,
        )
        threading.Thread(target=self._watch, args=(self.process,), name="prefect-server-watch", daemon=True).start()

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        # The server's first API call (the health check aside) takes 0.4 s while it sets itself up. Made as
        # soon as the health check answers, it is done while the caller still imports, not in its first flow.
        while process.poll() is None:
            if _answers(f"{self.api_url}/health"):
                _answers(f"{self.api_url}/admin/version")
                self._ready.set()
                return
            time.sleep(0.1)

    def __enter__(self) -> TemporaryServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def wait_ready(self, timeout: float) -> None:
        """Returns once GET /api/health answers 200 (and the first API call is made); ServerStartError when the
        process ends or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready.wait(0.1):
                return
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise ServerStartError(f"the temporary Prefect server on port {self.port} exited (code {code})")
        raise ServerStartError(f"the temporary Prefect server on port {self.port} did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        """Sends what Prefect still holds for the API (logs, events), then ends the server process."""
        if self.process is None:
            return
        _drain_prefect_workers()
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def _drain_prefect_workers() -> None:
    # Prefect sends logs and events to the API from background workers; stopped after the server, they
    # retry against a closed port for over a minute before the process can exit.
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=DRAIN_TIMEOUT_SECONDS)


def _answers(url: str) -> bool:
    """True when GET `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
