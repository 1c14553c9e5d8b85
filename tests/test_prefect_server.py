"""The temporary Prefect server that `armsledger run` starts before it imports Prefect."""
from __future__ import annotations

import socket
import urllib.request

import pytest

from armsledger.prefect_server import ServerStartError, TemporaryServer


@pytest.mark.slow
def test_the_server_answers_until_it_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    with TemporaryServer() as server:
        server.wait_ready(timeout=120)
        with urllib.request.urlopen(f"{server.api_url}/health", timeout=5) as response:
            assert response.status == 200
        process = server.process
    assert server.process is None and process.poll() is not None  # the process has ended


@pytest.mark.slow
def test_a_server_that_cannot_start_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    with socket.socket() as taken:  # the port is in use: uvicorn exits
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = TemporaryServer(port=taken.getsockname()[1])
        server.start()
        try:
            with pytest.raises(ServerStartError, match="exited"):
                server.wait_ready(timeout=120)
        finally:
            server.stop()
