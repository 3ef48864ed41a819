"""A cost test per public route that takes a body or a file: work grows at most linearly.

Each row of ``ROUTES`` names a route and the adversarial shapes of its input
(a huge single field, deep nesting, many tiny packets, many tiny media packets);
each shape is sent at size ``n`` and ``4 n``. The work counted is the CPU time of
the real API server process and of the children it waited for (the sandboxed
decoders), read from /proc, never wall time. Linear work may grow 4 times (less,
with fixed per-request costs); the bound allows 10 for a noisy shared machine,
while quadratic work grows 16 times and more. A new route joins by adding a row.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from test_voices import data_url, tiny_packet_sample

from conftest import I2V, T2V, Service, make_service

GROWTH = 4
BOUND = 10.0
REPEATS = 3


@dataclass(frozen=True)
class Shape:
    name: str
    path: str
    body: Callable[[int], bytes]  # size -> the raw request body
    size: int
    chunk: int = 0  # >0: send the body in chunks of this many bytes (many tiny packets)


def padded(size: int) -> bytes:
    return json.dumps({"prompt": "x", "duration": "3", "pad": "a" * size}).encode()


def nested(depth: int) -> bytes:
    return b'{"prompt": "x", "pad": ' + b"[" * depth + b"]" * depth + b"}"


def inline_image(size: int) -> bytes:
    image = "data:image/png;base64," + base64.b64encode(os.urandom(size)).decode()
    return json.dumps({"prompt": "x", "duration": "3", "start_image_url": image}).encode()


def voice_body(packets: int) -> bytes:
    return json.dumps({"voice_url": data_url(tiny_packet_sample(packets), "video/x-matroska"),
                       "voice_name": "cost"}).encode()


ROUTES: list[Shape] = [
    Shape("submit: huge single field", f"/v2/{T2V}", padded, 1_000_000),
    Shape("submit: deep nesting", f"/v2/{T2V}", nested, 50_000),
    Shape("submit: many tiny packets", f"/v2/{T2V}", padded, 40_000, chunk=16),
    Shape("image submit: huge inline image", f"/v2/{I2V}", inline_image, 1_000_000),
    Shape("sync submit: huge single field", f"/v1/{T2V}", padded, 1_000_000),
    Shape("voice: huge single field", "/v2/kling-create-voice",
          lambda n: json.dumps({"voice_url": "data:audio/wav;base64,"
                                + "A" * n}).encode(), 1_000_000),
    Shape("voice: many tiny media packets", "/v2/kling-create-voice", voice_body, 4_000),
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = make_service(tmp_path_factory.mktemp("cost"), workers=0, rate_limit=0,
                           max_body_bytes=64 * 2**20, sync_timeout_s=0.01,
                           ready_without_workers=True)
    yield service
    service.stop()


def server_cpu_s(service: Service) -> float:
    """CPU seconds of the API process and its waited-for children (utime..cstime)."""
    assert service.process is not None
    with open(f"/proc/{service.process.pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def send(service: Service, shape: Shape, body: bytes) -> int:
    """POST ``body`` over a raw socket (chunked when the shape says so); the status."""
    head = (f"POST {shape.path} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            f"x-api-key: {service.api_key}\r\ncontent-type: application/json\r\n"
            "connection: close\r\n")
    with socket.create_connection(("127.0.0.1", service.port), timeout=120) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if shape.chunk:
            sock.sendall((head + "transfer-encoding: chunked\r\n\r\n").encode())
            for start in range(0, len(body), shape.chunk):
                piece = body[start:start + shape.chunk]
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        else:
            sock.sendall((head + f"content-length: {len(body)}\r\n\r\n").encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def cost_of(service: Service, shape: Shape, size: int) -> float:
    body = shape.body(size)
    send(service, shape, body)  # warm: first-call costs are not the input's
    before = server_cpu_s(service)
    for _ in range(REPEATS):
        status = send(service, shape, body)
        assert status < 500 or status == 504, (shape.name, status)  # 504: /v1 deadline
    return server_cpu_s(service) - before


@pytest.mark.parametrize("shape", ROUTES, ids=[shape.name for shape in ROUTES])
def test_work_grows_at_most_linearly_with_the_input(api: Service, shape: Shape) -> None:
    small = cost_of(api, shape, shape.size)
    large = cost_of(api, shape, shape.size * GROWTH)
    floor = 2 / os.sysconf("SC_CLK_TCK")  # /proc counts in clock ticks
    assert large <= BOUND * max(small, floor), (shape.name, small, large)
