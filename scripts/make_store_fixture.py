"""Make the data dir that the upgrade tests serve: `tests/fixtures/data-0.1.0/`.

Run it from a checkout of the release whose data dir it records (0.1.0 is commit
9c2904f)::

    git worktree add /tmp/reelserve-0.1.0 9c2904f
    cd /tmp/reelserve-0.1.0 && python scripts/make_store_fixture.py OUT_DIR

It serves that checkout's ``reelserve serve`` (preview engine) on a free port and
uses it as a user would, over HTTP and the key commands:

- the first key (printed by serve), topped up with ``keys add-credits``; a second key
  limited to one model; a third key, revoked;
- a job run to completion, submitted with an Idempotency-Key and a webhook URL
  (whose deliveries fail: the URL does not resolve);
- a voice and the key's webhook secret;
- then serve again with no workers: two jobs submitted that stay QUEUED, and a third
  canceled (its hold released).

Finished results are kept for ``RETENTION_S`` (about a century) so that the tests
can still fetch them years later: ``expires_at`` is written when a job ends, from
the retention setting of the release that ran it.

``OUT_DIR/data`` is the data dir (the SQLite file and the output MP4s) and
``OUT_DIR/manifest.json`` what the tests expect to find in it: the keys (test-only
secrets), balances, request ids, the idempotent request, the voice and the secret.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import httpx

T2V = "kling-3-standard-text2video"
RETENTION_S = 100 * 365 * 86400.0
IDEMPOTENCY_KEY = "fixture-idempotent-1"
# One job stands for every finished result: its output is the largest file here.
IDEMPOTENT_BODY = {"prompt": "grey fog", "duration": "3", "aspect_ratio": "1:1",
                   "generate_audio": False, "webhook_url": "https://hooks.invalid/reelserve"}


def main(out_dir: Path) -> None:
    data_dir = out_dir / "data"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    data_dir.mkdir(parents=True)
    manifest: dict[str, Any] = {"release": "0.1.0", "retention_s": RETENTION_S}

    with Serve(data_dir, workers=1) as serve:
        first = serve.first_key
        second = cli(data_dir, "keys", "create", "--credits", "7.5", "--name", "second",
                     "--models", T2V)
        third = cli(data_dir, "keys", "create", "--credits", "1", "--name", "revoked")
        cli(data_dir, "keys", "add-credits", first[:11], "25")
        cli(data_dir, "keys", "revoke", third[:11])
        with serve.client(first) as client:
            completed = submit(client, IDEMPOTENT_BODY, {"Idempotency-Key": IDEMPOTENCY_KEY})
            wait_until_done(client, completed)
            secret = client.get("/v2/webhooks/secret").json()["secret"]
            voice = client.post("/v2/kling-create-voice", json={
                "voice_url": "data:audio/wav;base64," + base64.b64encode(speech()).decode(),
                "voice_name": "narrator"})
            voice.raise_for_status()
            output = _path(client.get(f"/v2/requests/{completed}").json()["output"])
            time.sleep(2)  # the first webhook try (which fails) lands in the log
    with Serve(data_dir, workers=0) as serve, serve.client(second) as client:
        queued = [submit(client, {"prompt": f"queued clip {n}", "duration": "3",
                                  "aspect_ratio": "1:1", "generate_audio": False}, {})
                  for n in (1, 2, 3)]
        canceled = queued.pop()
        client.post(f"/v2/requests/{canceled}/cancel").raise_for_status()

    manifest.update({
        "keys": {"first": first, "second": second, "revoked": third},
        "completed": {"request_id": completed, "output_path": output,
                      "idempotency_key": IDEMPOTENCY_KEY, "body": IDEMPOTENT_BODY},
        "queued": queued,
        "canceled": canceled,
        "voice": voice.json(),
        "webhook_secret": secret,
    })
    checkpoint(data_dir / "reelserve.sqlite3")
    shutil.rmtree(data_dir / "metrics", ignore_errors=True)
    balances = sqlite3.connect(data_dir / "reelserve.sqlite3").execute(
        "SELECT prefix, balance FROM keys ORDER BY id").fetchall()
    manifest["balances"] = {prefix: balance for prefix, balance in balances}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {out_dir}")


class Serve:
    """``reelserve serve`` on a free port, stopped with SIGTERM on exit."""

    def __init__(self, data_dir: Path, workers: int) -> None:
        self.data_dir = data_dir
        self.workers = workers
        self.port = _free_port()
        self.first_key = ""

    def __enter__(self) -> Serve:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reelserve", "serve", "--workers", str(self.workers),
             "--engine", "preview", "--port", str(self.port)],
            env=_env(self.data_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("rs_"):
                self.first_key = line.strip()
            if line.startswith("Serving on"):
                break
        else:
            raise RuntimeError("serve exited before it served")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("serve does not answer")

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.communicate(timeout=60)

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}",
                            headers={"x-api-key": key}, timeout=60)


def submit(client: httpx.Client, body: dict[str, Any], headers: dict[str, str]) -> str:
    answer = client.post(f"/v2/{T2V}", json=body, headers=headers)
    answer.raise_for_status()
    return str(answer.json()["request_id"])


def wait_until_done(client: httpx.Client, request_id: str) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = client.get(f"/v2/requests/{request_id}/status").json()["status"]
        if status == "COMPLETED":
            return
        if status == "FAILED":
            raise RuntimeError(f"{request_id} failed")
        time.sleep(0.2)
    raise TimeoutError(request_id)


def speech(seconds: float = 3.0, pitch_hz: float = 150.0, rate: int = 16_000) -> bytes:
    """A WAV of a voiced, syllable-like tone: enough for a voice sample."""
    frames = bytearray()
    for n in range(int(seconds * rate)):
        t = n / rate
        envelope = 0.5 + 0.5 * math.sin(2 * math.pi * 3 * t)
        value = sum(math.sin(2 * math.pi * pitch_hz * h * t) / h for h in (1, 2, 3))
        frames += struct.pack("<h", int(8000 * envelope * value))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return buffer.getvalue()


def cli(data_dir: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "reelserve", *args], env=_env(data_dir),
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def checkpoint(db_path: Path) -> None:
    """Fold the WAL into the database file, so that one file holds everything."""
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSERVE_")}
    env.update({"REELSERVE_DATA_DIR": str(data_dir), "REELSERVE_RETENTION_S": str(RETENTION_S),
                "REELSERVE_READY_WITHOUT_WORKERS": "1"})
    return env


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
