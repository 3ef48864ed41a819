"""The SSRF matrix: which addresses a fetch may reach, redirects, deadline and byte cap.

Every test here runs the policy with ``TestNetwork``: its resolver answers from a
table (never real DNS) and its connector records each address it is asked for,
opens real connections to loopback only and refuses everything else. So a policy
bug could at worst reach a loopback server of the test, never another address.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from reelserve.errors import FetchError, InvalidSetting
from reelserve.media.fetch_policy import Deadline, FetchPolicy, IPAddress, open_tcp
from reelserve.settings import parse_networks
from reelserve.settings_sections import Network

PUBLIC = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"
Handler = Callable[[BaseHTTPRequestHandler], None]


def parse_allowlist(text: str) -> tuple[Network, ...]:
    """The allowlist as settings parse it from REELSERVE_FETCH_ALLOW_CIDRS."""
    return parse_networks("fetch_allow_cidrs", text)


@dataclass
class TestNetwork:
    """The resolver and connector seam: answers from ``names``, connects to loopback only."""

    __test__ = False
    names: dict[str, Callable[[], list[str]]] = field(default_factory=dict)
    resolved: list[str] = field(default_factory=list)
    connects: list[tuple[str, int]] = field(default_factory=list)

    def resolve(self, host: str, port: int) -> list[str]:
        self.resolved.append(host)
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, f"test network: no such name {host}")
        return self.names[host]()

    def connect(self, address: IPAddress, port: int, timeout: float) -> socket.socket:
        self.connects.append((str(address), port))
        if not address.is_loopback:
            raise ConnectionRefusedError(f"test network: refused to connect to {address}")
        return open_tcp(address, port, timeout)

    def policy(self, allow: str = "", **options: Any) -> FetchPolicy:
        return FetchPolicy(parse_allowlist(allow), resolver=self.resolve,
                           connector=self.connect, **options)


@dataclass
class RouteServer:
    """A loopback HTTP server whose paths run the given handlers; counts requests."""

    host: str
    port: int
    hits: list[str]

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"


@contextlib.contextmanager
def serve_routes(host: str, routes: dict[str, Handler]) -> Iterator[RouteServer]:
    hits: list[str] = []

    class Routes(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            routes.get(self.path, lambda h: h.send_error(404))(self)

        do_POST = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Routes)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RouteServer(host, int(server.server_address[1]), hits)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def send(status: int, body: bytes = b"", **headers: str) -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for name, value in headers.items():
            h.send_header(name.replace("_", "-"), value)
        h.send_header("content-length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    return handle


def redirect(location: str) -> Handler:
    return send(302, location=location)


@pytest.fixture
def net() -> TestNetwork:
    return TestNetwork()


@pytest.fixture
def secret_server() -> Iterator[RouteServer]:
    """What an attacker wants to reach: a server on 127.0.0.1 that must never be asked."""
    with serve_routes("127.0.0.1", {"/secret": send(200, b"secret")}) as server:
        yield server


def fetch(policy: FetchPolicy, url: str, *, max_bytes: int = 10_000,
          timeout_s: float = 5.0) -> bytes:
    return policy.get_bytes(url, max_bytes=max_bytes, timeout_s=timeout_s)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://127.1.2.3:8080/", "http://[::1]/",
    "http://10.0.0.5/", "http://172.16.0.1/", "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/",
    "http://0.0.0.0/", "http://[::]/", "http://[fe80::1]/", "http://[fd00::1]/",
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:169.254.169.254]/",
    "http://[2002:7f00:1::]/",           # 6to4 wrapping 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",      # NAT64 wrapping 169.254.169.254
    "http://224.0.0.1/", "http://255.255.255.255/", "http://192.0.2.1/",
    "http://2130706433/", "http://0177.0.0.1/", "http://0x7f.0.0.1/", "http://0x7f000001/",
    "http://127.1/", "http://017700000001/", "http://127.0.0.1./",
    "https://127.0.0.1/", "http://user:pw@127.0.0.1/",
])
def test_non_public_hosts_are_refused_without_connecting(net: TestNetwork, url: str) -> None:
    with pytest.raises(FetchError, match=r"refused") as caught:
        fetch(net.policy(), url)
    assert net.connects == []
    assert caught.value.url == url


# IPv6 forms that carry an IPv4 address: each one aimed at the metadata service
# (169.254.169.254 = a9fe:a9fe) or loopback. Python calls most of them global.
EMBEDDED_PRIVATE = [
    "::ffff:a9fe:a9fe",                  # IPv4-mapped (::ffff:0:0/96)
    "::a9fe:a9fe", "::127.0.0.1",        # IPv4-compatible (::/96)
    "::ffff:0:a9fe:a9fe",                # IPv4-translated (::ffff:0:0:0/96)
    "64:ff9b::a9fe:a9fe",                # well-known NAT64 (64:ff9b::/96)
    "64:ff9b:1::a9fe:a9fe",              # local-use NAT64, /96 layout
    "64:ff9b:1:0:a9:fea9:fe00:0",        # local-use NAT64, /64 layout
    "64:ff9b:1:a9:fe:a9fe::",            # local-use NAT64, /56 layout
    "64:ff9b:1:a9fe:a9:fe00::",          # local-use NAT64, /48 layout
    "2002:a9fe:a9fe::1",                 # 6to4 (2002::/16)
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo (2001::/32), client 192.0.2.45
    "2001:0:5ef5:79fd:0:0:f53f:5efe",    # Teredo, client 10.192.161.1
]


@pytest.mark.parametrize("address", EMBEDDED_PRIVATE)
def test_ipv6_forms_embedding_a_non_public_ipv4_are_refused(net: TestNetwork,
                                                            address: str) -> None:
    with pytest.raises(FetchError, match=r"refused: .* carries .*not a public address"):
        fetch(net.policy(), f"http://[{address}]/")
    net.names["images.example"] = lambda: [address]
    with pytest.raises(FetchError, match=r"images.example resolves to .* carries"):
        fetch(net.policy(), "http://images.example/cat.png")
    assert net.connects == []


@pytest.mark.parametrize("address", EMBEDDED_PRIVATE)
def test_allowlisting_an_ipv6_prefix_does_not_open_the_ipv4_it_embeds(net: TestNetwork,
                                                                       address: str) -> None:
    with pytest.raises(FetchError, match=r"carries"):
        fetch(net.policy("::/0"), f"http://[{address}]/")
    assert net.connects == []


@pytest.mark.parametrize("address", [
    "::ffff:5db8:d822", "::5db8:d822", "::ffff:0:5db8:d822", "64:ff9b::5db8:d822",
])
def test_ipv6_forms_embedding_a_public_ipv4_are_connected_to(net: TestNetwork,
                                                             address: str) -> None:
    with pytest.raises(FetchError, match=r"could not be fetched"):
        fetch(net.policy(), f"http://[{address}]/cat.png")
    expected = PUBLIC if address.startswith("::ffff:5db8") else address
    assert net.connects == [(expected, 80)]


def test_an_embedded_ipv4_in_the_allowlist_is_allowed(net: TestNetwork) -> None:
    with pytest.raises(FetchError, match=r"could not be fetched"):
        fetch(net.policy("169.254.0.0/16"), "http://[64:ff9b::a9fe:a9fe]/")
    assert net.connects == [("64:ff9b::a9fe:a9fe", 80)]


@pytest.mark.parametrize("answer", [
    ["127.0.0.1"], ["169.254.169.254"], ["10.1.2.3"], ["fd12::1"], ["::ffff:10.0.0.1"],
    [PUBLIC, "10.0.0.1"],                 # one bad address in the answer is enough
])
def test_names_resolving_to_non_public_addresses_are_refused(net: TestNetwork,
                                                            answer: list[str]) -> None:
    net.names["images.example"] = lambda: answer
    with pytest.raises(FetchError, match=r"images.example resolves to .* not a public address"):
        fetch(net.policy(), "http://images.example/cat.png")
    assert net.connects == []


@pytest.mark.parametrize(("url", "address", "port"), [
    ("http://images.example/cat.png", PUBLIC, 80),
    ("https://images.example:8443/cat.png", PUBLIC, 8443),
    (f"http://{PUBLIC}/cat.png", PUBLIC, 80),
    (f"http://[{PUBLIC_V6}]/cat.png", PUBLIC_V6, 80),
])
def test_a_public_address_is_the_address_connected_to(net: TestNetwork, url: str,
                                                      address: str, port: int) -> None:
    net.names["images.example"] = lambda: [PUBLIC]
    with pytest.raises(FetchError, match=r"could not be fetched"):
        fetch(net.policy(), url)
    assert net.connects == [(address, port)]


def test_dns_rebinding_second_answer_is_never_used(net: TestNetwork) -> None:
    answers = iter([[PUBLIC], ["127.0.0.1"], ["127.0.0.1"]])
    net.names["rebind.example"] = lambda: next(answers)
    with pytest.raises(FetchError, match=r"could not be fetched"):
        fetch(net.policy(), "http://rebind.example/cat.png")
    assert net.resolved == ["rebind.example"]
    assert net.connects == [(PUBLIC, 80)]


def test_allowlisted_network_is_fetched(net: TestNetwork) -> None:
    with serve_routes("127.0.0.1", {"/cat.png": send(200, b"meow")}) as server:
        assert fetch(net.policy("127.0.0.0/8"), server.url("/cat.png")) == b"meow"
        net.names["cats.internal"] = lambda: ["127.0.0.1"]
        named = f"http://cats.internal:{server.port}/cat.png"
        assert fetch(net.policy("127.0.0.1/32"), named) == b"meow"
    assert net.connects == [("127.0.0.1", server.port)] * 2


def test_allowlist_does_not_open_other_private_networks(net: TestNetwork) -> None:
    with pytest.raises(FetchError, match=r"refused"):
        fetch(net.policy("127.0.0.2/32"), "http://127.0.0.1/")
    with pytest.raises(FetchError, match=r"refused"):
        fetch(net.policy("10.0.0.0/8"), "http://192.168.0.1/")


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{port}/secret", "http://localhost:{port}/secret",
    "http://2130706433:{port}/secret", "http://[::ffff:127.0.0.1]:{port}/secret",
    "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd",
])
def test_redirect_to_a_non_public_address_is_refused(
    net: TestNetwork, secret_server: RouteServer, target: str,
) -> None:
    net.names["localhost"] = lambda: ["127.0.0.1"]
    location = target.format(port=secret_server.port)
    # The first hop is a loopback server the allowlist opens on its own (127.0.0.2).
    with serve_routes("127.0.0.2", {"/start.png": redirect(location)}) as hop:
        with pytest.raises(FetchError, match=r"redirected to") as caught:
            fetch(net.policy("127.0.0.2/32"), hop.url("/start.png"))
        assert hop.hits == ["/start.png"]
    assert secret_server.hits == []
    assert net.connects == [("127.0.0.2", hop.port)]
    assert "refused" in caught.value.reason or "only http and https" in caught.value.reason


def test_redirect_to_a_public_name_is_checked_and_pinned(net: TestNetwork) -> None:
    net.names["cdn.example"] = lambda: [PUBLIC]
    with serve_routes("127.0.0.2", {"/a": redirect("http://cdn.example/b")}) as hop, \
            pytest.raises(FetchError, match=r"redirected to http://cdn\.example/b"):
        fetch(net.policy("127.0.0.2/32"), hop.url("/a"))
    assert net.connects == [("127.0.0.2", hop.port), (PUBLIC, 80)]


def test_five_redirects_are_followed_and_a_sixth_is_not(net: TestNetwork) -> None:
    routes = {f"/r{i}": redirect(f"/r{i + 1}") for i in range(6)}
    routes["/r5"] = send(200, b"done")
    routes["/s5"] = redirect("/s6")
    routes.update({f"/s{i}": redirect(f"/s{i + 1}") for i in range(5)})
    routes["/s6"] = send(200, b"too far")
    with serve_routes("127.0.0.1", routes) as server:
        assert fetch(net.policy("127.0.0.1/32"), server.url("/r0")) == b"done"
        with pytest.raises(FetchError, match=r"more than 5 redirects"):
            fetch(net.policy("127.0.0.1/32"), server.url("/s0"))
        assert "/s6" not in server.hits


def test_error_status_is_reported(net: TestNetwork) -> None:
    with serve_routes("127.0.0.1", {}) as server, \
            pytest.raises(FetchError, match=r"the server answered HTTP 404"):
        fetch(net.policy("127.0.0.1/32"), server.url("/missing.png"))


def trickle(delay_s: float, *, headers_first: bool) -> Handler:
    """Send a byte every ``delay_s``: after the headers, or inside them."""
    def handle(h: BaseHTTPRequestHandler) -> None:
        with contextlib.suppress(OSError):
            if headers_first:
                h.send_response(200)
                h.send_header("content-length", "1000")
                h.end_headers()
                h.wfile.flush()
            else:
                h.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(1000):
                h.wfile.write(b"x" if headers_first else b"X-Slow: y\r\n")
                h.wfile.flush()
                time.sleep(delay_s)
    return handle


@pytest.mark.parametrize("headers_first", [True, False], ids=["slow-body", "slow-headers"])
def test_one_deadline_covers_the_whole_fetch(net: TestNetwork, headers_first: bool) -> None:
    routes = {"/slow": trickle(0.05, headers_first=headers_first)}
    with serve_routes("127.0.0.1", routes) as server:
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"took longer than 0.6 s"):
            fetch(net.policy("127.0.0.1/32"), server.url("/slow"), timeout_s=0.6)
        assert time.monotonic() - started < 3.0


def test_deadline_covers_a_slow_resolver(net: TestNetwork) -> None:
    def slow() -> list[str]:
        time.sleep(2.0)
        return [PUBLIC]

    net.names["slow.example"] = slow
    with pytest.raises(FetchError, match=r"took longer than 0.3 s"):
        fetch(net.policy(), "http://slow.example/", timeout_s=0.3)
    assert net.connects == []


def stream_without_length(total: int) -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("connection", "close")
        h.end_headers()
        with contextlib.suppress(OSError):
            for _ in range(total // 4096):
                h.wfile.write(b"\0" * 4096)
    return handle


def test_streamed_bytes_are_capped_whatever_the_headers_say(net: TestNetwork) -> None:
    routes = {"/endless": stream_without_length(10_000_000),
              "/declared": send(200, b"x" * 20_000)}
    with serve_routes("127.0.0.1", routes) as server:
        with pytest.raises(FetchError, match=r"larger than 100000 bytes"):
            fetch(net.policy("127.0.0.1/32"), server.url("/endless"), max_bytes=100_000)
        with pytest.raises(FetchError, match=r"larger than 10000 bytes"):
            fetch(net.policy("127.0.0.1/32"), server.url("/declared"), max_bytes=10_000)


@pytest.mark.parametrize("url", [
    "http://", "http://host:99999/", "http://exa mple.com/", "gopher://127.0.0.1/",
    "http://[::1/", "http://[fe80::1%25eth0]/",
])
def test_malformed_urls_are_refused(net: TestNetwork, url: str) -> None:
    with pytest.raises(FetchError):
        fetch(net.policy(), url)
    assert net.connects == []


def test_request_is_one_checked_hop_for_webhook_senders(net: TestNetwork) -> None:
    got: list[bytes] = []

    def hook(h: BaseHTTPRequestHandler) -> None:
        got.append(h.rfile.read(int(h.headers["content-length"])))
        redirect("http://169.254.169.254/")(h)

    with serve_routes("127.0.0.1", {"/hook": hook}) as server:
        policy = net.policy("127.0.0.1/32")
        with policy.request("POST", server.url("/hook"), deadline=Deadline.after(5),
                            body=b'{"ok": true}') as response:
            assert response.status == 302
        with pytest.raises(FetchError, match=r"refused"), \
                policy.request("POST", "http://10.0.0.1/hook", deadline=Deadline.after(5)):
            pass
    assert got == [b'{"ok": true}']
    assert net.connects == [("127.0.0.1", server.port)]


def test_allowlist_parsing() -> None:
    assert parse_allowlist("") == ()
    assert parse_allowlist(" 10.0.0.0/8, ::1/128 ,127.0.0.1") == (
        ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("127.0.0.1/32"))
    with pytest.raises(InvalidSetting, match="REELSERVE_FETCH_ALLOW_CIDRS"):
        parse_allowlist("10.0.0.0/33")


def test_a_connect_deadline_bounds_a_destination_that_never_accepts(net: TestNetwork) -> None:
    # A listener whose backlog is full: the kernel drops further SYNs, so connect hangs.
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.2)
    try:
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"no connection within 0.3 s|took longer"), \
                net.policy("127.0.0.1/32").request(
                    "POST", f"http://127.0.0.1:{port}/hook", deadline=Deadline.after(10),
                    connect_timeout_s=0.3):
            pass
        assert time.monotonic() - started < 3.0
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
