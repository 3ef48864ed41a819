"""Real processes for the tests: a `reelserve serve` on a free port, workers, a SQLite file."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelserve.jobs import JobStore
from reelserve.jobs.backends import open_store
from reelserve.jobs.redis_layout import remove_prefix
from reelserve.settings import settings_from_env

TESTS_DIR = Path(__file__).resolve().parent
FIXTURE_ENGINE = "fixture_engines:create_engine"
T2V = "kling-3-standard-text2video"
I2V = "kling-3-standard-image2video"
REDIS_URL = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_env(data_dir: Path, **settings: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSERVE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
    env["REELSERVE_DATA_DIR"] = str(data_dir)
    for name, value in settings.items():
        env[f"REELSERVE_{name.upper()}"] = str(value)
    return env


@dataclass
class Service:
    """A running `reelserve serve` and the workers a test started beside it."""

    data_dir: Path
    port: int
    settings: dict[str, Any]
    process: subprocess.Popen[str] | None = None
    api_key: str = ""
    workers: list[subprocess.Popen[str]] = field(default_factory=list)
    _drainer: threading.Thread | None = None
    output: list[str] = field(default_factory=list)  # what serve and its workers printed

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, key: str | None = None, timeout: float = 30.0) -> httpx.Client:
        headers = {"x-api-key": self.api_key if key is None else key}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def start(self, workers: int = 1) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reelserve", "serve", "--workers", str(workers)],
            env=process_env(self.data_dir, port=self.port, **self.settings),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        lines = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            lines.append(line)
            if line.startswith("rs_"):
                self.api_key = line.strip()
            if line.startswith("Serving on"):
                break
        else:
            raise RuntimeError("serve exited:\n" + "".join(lines))
        self._drain()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("serve did not answer /healthz")

    def _drain(self) -> None:
        """Keep reading the server's output so its pipe never fills up; close it at EOF."""
        process = self.process
        assert process is not None and process.stdout is not None
        stdout = process.stdout

        def drain() -> None:
            with stdout, contextlib.suppress(ValueError, OSError):
                for line in stdout:
                    self.output.append(line)

        self._drainer = threading.Thread(target=drain, daemon=True)
        self._drainer.start()

    def start_worker(self) -> subprocess.Popen[str]:
        worker = subprocess.Popen(
            [sys.executable, "-m", "reelserve", "worker"],
            env=process_env(self.data_dir, **self.settings), text=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for process in [*self.workers, self.process]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.workers, self.process]:
            if process is None:
                continue
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._drainer is not None:
            self._drainer.join(10)
        self.workers = []

    def store(self) -> JobStore:
        """The service's own store (SQLite file or Redis prefix), opened from this process."""
        settings = settings_from_env(process_env(self.data_dir, **self.settings))
        return open_store(settings.store_section)

    def cli(self, *args: str) -> str:
        """Run a `reelserve` subcommand against this service's data dir; return its stdout."""
        out = subprocess.run(
            [sys.executable, "-m", "reelserve", *args],
            env=process_env(self.data_dir, **self.settings), capture_output=True, text=True,
            check=True,
        )
        return out.stdout

    def create_key(self, *args: str) -> str:
        return self.cli("keys", "create", *args).strip().splitlines()[-1]

    def wait_for(self, request_id: str, states: tuple[str, ...] = ("COMPLETED", "FAILED"),
                 timeout: float = 60.0, key: str | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.client(key) as client:
            while time.monotonic() < deadline:
                body: dict[str, Any] = client.get(f"/v2/requests/{request_id}/status").json()
                if body.get("status") in states:
                    return body
                time.sleep(0.05)
        raise TimeoutError(f"{request_id} never reached {states}")


def make_service(tmp_path: Path, workers: int = 1, **settings: Any) -> Service:
    settings.setdefault("engine", FIXTURE_ENGINE)
    # The tests' image servers are on loopback, which the fetch policy refuses by default.
    settings.setdefault("fetch_allow_cidrs", "127.0.0.0/8,::1/128")
    service = Service(tmp_path / "data", free_port(), settings)
    service.start(workers)
    return service


BACKENDS = ["sqlite", "redis"]


@contextlib.contextmanager
def backend_settings(name: str) -> Iterator[dict[str, str]]:
    """Settings that put a service on one store backend; Redis keys are removed after."""
    if name == "sqlite":
        yield {}
        return
    import redis

    prefix = f"test-{uuid.uuid4().hex[:12]}"
    # The shared Redis runs without persistence: accepted here on purpose.
    yield {"store": REDIS_URL, "redis_prefix": prefix, "redis_ephemeral": "1"}
    client = redis.Redis.from_url(REDIS_URL)
    remove_prefix(client, prefix)
    client.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Run the test once on SQLite and once on the real Redis."""
    if request.param == "redis":
        request.getfixturevalue("redis_url")
    with backend_settings(request.param) as settings:
        yield settings


@pytest.fixture(scope="module", params=BACKENDS)
def module_backend(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "redis":
        request.getfixturevalue("redis_url")
    with backend_settings(request.param) as settings:
        yield settings


@pytest.fixture
def service(tmp_path: Path, backend: dict[str, str]) -> Iterator[Service]:
    """A service with one fixture-engine worker and short leases."""
    svc = make_service(tmp_path, lease_s=2, **backend)
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory: pytest.TempPathFactory,
                   module_backend: dict[str, str]) -> Iterator[Service]:
    """One service for a module of tests that do not disturb each other."""
    svc = make_service(tmp_path_factory.mktemp("shared"), rate_limit=0, **module_backend)
    yield svc
    svc.stop()


@dataclass
class ImageServer:
    """A loopback HTTP server with a few files the tests ask the service to fetch."""

    base_url: str
    files: dict[str, tuple[str, bytes]]

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"


def png_bytes(size: tuple[int, int] = (640, 360), seed: int = 0) -> bytes:
    """A smooth, colourful test picture (gradients and a disc) as PNG."""
    import numpy as np
    from PIL import Image

    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(seed)
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    disc = ((x - cx) ** 2 + (y - cy) ** 2) < (min(width, height) * 0.2) ** 2
    pixels = np.stack([x / width * 255, y / height * 255, 128 + 0 * x], axis=-1)
    pixels[disc] = (250, 230, 40)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def image_server() -> Iterator[ImageServer]:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    files: dict[str, tuple[str, bytes]] = {
        "start.png": ("image/png", png_bytes(seed=1)),
        "end.png": ("image/png", png_bytes(seed=2)),
        "notes.txt": ("text/plain", b"this is not a picture"),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = files.get(self.path.lstrip("/"))
            if found is None:
                self.send_error(404)
                return
            content_type, body = found
            self.send_response(200)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ImageServer(f"http://127.0.0.1:{server.server_address[1]}", files)
    server.shutdown()
    server.server_close()
    thread.join()



@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis the machine runs; `.ci/run` starts it when it is down."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as error:
        needs_outside_part(f"Redis is not running at {REDIS_URL} ({error}); start one, e.g. "
                           "`redis-server --daemonize yes`")
    finally:
        client.close()
    return REDIS_URL


def needs_outside_part(reason: str) -> None:
    """A test needs a part that pip does not install (Redis, Chromium).

    On a developer's machine without it the test is skipped with ``reason``; in CI
    (``CI`` set), where `.ci/run` provides every part, it fails instead, so a
    missing part can never pass unnoticed.
    """
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)
