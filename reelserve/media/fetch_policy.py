"""Outbound HTTP for URLs strangers send: public addresses only, checked where we connect.

Every URL reelserve calls on someone else's behalf goes through ``FetchPolicy``:
input images today (``get_bytes``), webhook calls later (``request``, one hop,
no redirects).

- The host is resolved once; every address in the answer must be public
  (``ipaddress`` ``is_global``, not multicast), unless it lies in the operator's
  allowlist. An IPv6 address that embeds an IPv4 one (mapped, compatible,
  translated, NAT64, 6to4, Teredo) passes only if that IPv4 address passes too:
  Python calls several of these forms global whatever they carry.
- The connection goes to the address that was checked, never to a second
  lookup, so a DNS answer that changes between check and use (rebinding) is
  never used. TLS still verifies the certificate against the host name.
- A host written as an IP number in anything but dotted decimal
  (``2130706433``, ``0177.0.0.1``, ``0x7f.1``) is refused: resolvers disagree
  on what such spellings mean, and no image host needs them.
- Redirects are followed by hand, each hop checked like the first, 5 at most.
- One deadline covers resolving, connecting, headers and body; a watchdog
  closes the socket when it passes, so a server that trickles bytes cannot
  stretch it.
- Bodies are counted as they stream and cut at a byte cap, whatever
  Content-Length says.

The resolver and the connector are seams: tests pass ones that record the
address they would connect to and refuse, so no test reaches beyond loopback.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import re
import socket
import ssl
import string
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from reelserve.errors import FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> the addresses it resolves to, as strings
Resolver = Callable[[str, int], Sequence[str]]
# (checked address, port, timeout in seconds) -> a connected socket
Connector = Callable[[IPAddress, int, float], socket.socket]

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
READ_CHUNK = 64 * 1024
DEFAULT_HEADERS = {"User-Agent": "reelserve", "Accept-Encoding": "identity",
                   "Connection": "close"}
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL_PREFIX = ipaddress.IPv6Network("64:ff9b:1::/48")
_NUMERIC_LABEL = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")
_HOST_CHARS = re.compile(r"[a-z0-9._-]+")
_PATH_SAFE = string.punctuation  # keep what is already escaped; quote spaces, controls, non-ASCII


def system_resolver(host: str, port: int) -> list[str]:
    """The system's answer for ``host`` (``getaddrinfo``), as address strings."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def open_tcp(address: IPAddress, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((str(address), port), timeout=timeout)


@dataclass(frozen=True)
class Deadline:
    """One point in time that a whole fetch must finish by."""

    at: float
    budget_s: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def error(self, url: str) -> FetchError:
        return FetchError(url, f"took longer than {self.budget_s:g} s")


@dataclass(frozen=True)
class Target:
    """A URL taken apart, with the checked addresses to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[IPAddress, ...]


class FetchPolicy:
    """Which addresses outbound calls may reach, and how they are made."""

    def __init__(self, allow: Sequence[IPNetwork] = (), *, resolver: Resolver = system_resolver,
                 connector: Connector = open_tcp, max_redirects: int = MAX_REDIRECTS,
                 tls: ssl.SSLContext | None = None) -> None:
        self.allow = tuple(allow)
        self.resolver = resolver
        self.connector = connector
        self.max_redirects = max_redirects
        self.tls = tls or ssl.create_default_context()

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be reached ("is not a public address"), or None.

        An IPv6 address that embeds an IPv4 one (mapped, compatible, translated,
        NAT64, 6to4, Teredo) is judged by the IPv4 address too: packets to it end
        up there, so it passes only if that IPv4 address would pass on its own.
        """
        plain = _unmapped(address)
        if plain != address:  # IPv4-mapped: the IPv4 address is the one connected to
            return None if self._reachable(plain) else f"carries {plain}, not a public address"
        for inner in embedded_ipv4(plain):
            if not self._reachable(inner):
                return f"carries {inner}, not a public address"
        return None if self._reachable(plain) else "is not a public address"

    def _reachable(self, address: IPAddress) -> bool:
        return any(address in network for network in self.allow) or _public(address)

    def target(self, url: str, deadline: Deadline) -> Target:
        """Parse ``url``, resolve its host and check every address; raise ``FetchError``."""
        scheme, host, port, path = _split_url(url)
        literal = _literal_address(url, host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            addresses = [_parse_answer(url, host, answer)
                         for answer in self._resolve(url, host, port, deadline)]
            if not addresses:
                raise FetchError(url, f"could not be fetched: {host} has no address")
        for address in addresses:
            reason = self.refusal(address)
            if reason is not None:
                named = f"{address} {reason}" if literal is not None else \
                    f"{host} resolves to {address}, which {reason}"
                raise FetchError(url, f"refused: {named}")
        return Target(url, scheme, host, port, path, tuple(_unmapped(a) for a in addresses))

    @contextlib.contextmanager
    def request(self, method: str, url: str, *, deadline: Deadline,
                headers: Mapping[str, str] | None = None, body: bytes | None = None,
                connect_timeout_s: float | None = None) -> Iterator[http.client.HTTPResponse]:
        """One checked request, no redirects followed; the response is open inside.

        ``connect_timeout_s`` bounds the TCP connect (and TLS handshake) on its own,
        inside ``deadline``.
        """
        target = self.target(url, deadline)
        connection = self._connect(target, deadline, connect_timeout_s)
        try:
            with _watchdog(connection.sock, deadline):
                try:
                    connection.request(method, target.path, body=body,
                                       headers={**DEFAULT_HEADERS, **(headers or {})})
                    response = connection.getresponse()
                except (OSError, http.client.HTTPException) as error:
                    raise _failure(url, deadline, error) from error
                try:
                    yield response
                finally:
                    response.close()
        finally:
            connection.close()

    def get_bytes(self, url: str, *, max_bytes: int, timeout_s: float,
                  headers: Mapping[str, str] | None = None) -> bytes:
        """GET ``url`` under the policy, following checked redirects; at most ``max_bytes``."""
        deadline = Deadline.after(timeout_s)
        current = url
        for _ in range(self.max_redirects + 1):
            try:
                with self.request("GET", current, deadline=deadline, headers=headers) as response:
                    location = response.getheader("location")
                    if response.status in REDIRECT_STATUSES and location:
                        current = urllib.parse.urljoin(current, location.strip())
                        continue
                    if response.status != 200:
                        raise FetchError(current, f"the server answered HTTP {response.status}")
                    return read_capped(response, current, max_bytes, deadline)
            except FetchError as error:
                if current == url:
                    raise
                raise FetchError(url, f"redirected to {current}: {error.reason}") from error
        raise FetchError(url, f"more than {self.max_redirects} redirects")

    def _resolve(self, url: str, host: str, port: int, deadline: Deadline) -> Sequence[str]:
        # A thread, so that a slow resolver cannot outlast the deadline either.
        pool = ThreadPoolExecutor(max_workers=1)
        try:
            return pool.submit(self.resolver, host, port).result(timeout=deadline.remaining())
        except TimeoutError as error:
            raise deadline.error(url) from error
        except OSError as error:
            raise FetchError(url, f"could not be fetched: cannot resolve {host} ({error})") \
                from error
        finally:
            pool.shutdown(wait=False)

    def _connect(self, target: Target, deadline: Deadline,
                 connect_timeout_s: float | None = None) -> http.client.HTTPConnection:
        last: OSError | None = None
        for address in target.addresses:
            if deadline.passed:
                break
            timeout = deadline.remaining()
            if connect_timeout_s is not None:
                timeout = min(timeout, connect_timeout_s)
            connection = _pinned_connection(self, target, address, timeout)
            try:
                connection.connect()
                if connection.sock is not None:  # the rest of the call has the whole deadline
                    connection.sock.settimeout(max(deadline.remaining(), 0.001))
            except OSError as error:
                connection.close()
                last = error
                continue
            return connection
        if last is None or deadline.passed:
            raise deadline.error(target.url)
        if isinstance(last, TimeoutError) and connect_timeout_s is not None:
            raise FetchError(target.url, f"could not be fetched: no connection within "
                             f"{connect_timeout_s:g} s")
        raise FetchError(target.url, f"could not be fetched: {last}")


def read_capped(response: http.client.HTTPResponse, url: str, max_bytes: int,
                deadline: Deadline) -> bytes:
    """The body, counted as it streams: past ``max_bytes`` (or the deadline) it is refused."""
    too_big = FetchError(url, f"larger than {_size(max_bytes)}")
    declared = response.getheader("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_big
    chunks, size = [], 0
    try:
        while chunk := response.read1(READ_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise too_big
            chunks.append(chunk)
    except (OSError, http.client.HTTPException) as error:
        raise _failure(url, deadline, error) from error
    if deadline.passed:  # the watchdog's shutdown looks like a clean end of the body
        raise deadline.error(url)
    return b"".join(chunks)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to a checked address, with the URL's host in the Host header."""

    def __init__(self, target: Target, address: IPAddress, connector: Connector,
                 timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address, self._connector, self._connect_timeout = address, connector, timeout

    def connect(self) -> None:
        self.sock = self._connector(self._address, self.port, self._connect_timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to a checked address; SNI and the certificate check use the URL's host."""

    def __init__(self, target: Target, address: IPAddress, connector: Connector,
                 timeout: float, tls: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=tls)
        self._address, self._connector, self._connect_timeout = address, connector, timeout
        self._tls = tls

    def connect(self) -> None:
        sock = self._connector(self._address, self.port, self._connect_timeout)
        try:
            self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except OSError:
            sock.close()
            raise


def _pinned_connection(policy: FetchPolicy, target: Target, address: IPAddress,
                       timeout: float) -> http.client.HTTPConnection:
    if target.scheme == "https":
        return _PinnedHTTPSConnection(target, address, policy.connector, timeout, policy.tls)
    return _PinnedHTTPConnection(target, address, policy.connector, timeout)


@contextlib.contextmanager
def _watchdog(sock: socket.socket, deadline: Deadline) -> Iterator[None]:
    """Shut the socket down when the deadline passes, whatever read is waiting.

    It holds the socket itself: http.client hands it to the response and drops
    its own reference when the server says it will close the connection.
    """
    def cut() -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(deadline.remaining(), cut)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _failure(url: str, deadline: Deadline, error: Exception) -> FetchError:
    if deadline.passed:
        return deadline.error(url)
    return FetchError(url, f"could not be fetched: {error or type(error).__name__}")


def _split_url(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise FetchError(url, f"is not a valid URL ({error})") from error
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(url, "only http and https URLs are fetched")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise FetchError(url, "has no host")
    if ":" not in host:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as error:
            raise FetchError(url, f"has an invalid host name ({error})") from error
        if not _HOST_CHARS.fullmatch(host):
            raise FetchError(url, "has an invalid host name")
    path = urllib.parse.quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path += "?" + urllib.parse.quote(parts.query, safe=_PATH_SAFE)
    return scheme, host, port or (443 if scheme == "https" else 80), path


def _literal_address(url: str, host: str) -> IPAddress | None:
    """The address ``host`` spells, None for a name; other numeric spellings are refused."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as error:
            raise FetchError(url, f"has an invalid IPv6 address ({error})") from error
    if not all(_NUMERIC_LABEL.fullmatch(label) for label in host.split(".")):
        return None
    try:
        return ipaddress.IPv4Address(host)
    except ValueError:
        pass
    try:
        meaning = f" (read as {socket.inet_ntoa(socket.inet_aton(host))})"
    except OSError:
        meaning = ""
    raise FetchError(url, f"refused: {host}{meaning} is not an IP address in dotted decimal")


def _parse_answer(url: str, host: str, answer: str) -> IPAddress:
    try:
        return ipaddress.ip_address(answer.split("%", 1)[0])
    except ValueError as error:
        raise FetchError(url, f"could not be fetched: {host} resolved to {answer!r}") from error


def _public(address: IPAddress) -> bool:
    return address.is_global and not address.is_multicast


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address may lead to.

    IPv4-compatible ``::a.b.c.d`` and IPv4-translated ``::ffff:0:a.b.c.d`` (the low
    32 bits), 6to4 (2002::/16), Teredo (2001::/32: its server and client), the
    well-known NAT64 prefix 64:ff9b::/96 and the local-use one 64:ff9b:1::/48.
    A local-use prefix may be /48, /56, /64 or /96 long (RFC 6052), and which one
    a network uses cannot be told from the address, so each reading is returned.
    IPv4-mapped addresses are not here: ``_unmapped`` turns them into IPv4.
    """
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    number = int(address)
    low = ipaddress.IPv4Address(number & 0xFFFFFFFF)
    if number >> 32 == 0:
        return [low] if number > 1 else []  # :: and ::1 are not compatible addresses
    if number >> 32 == 0xFFFF0000:
        return [low]
    inner = [address.sixtofour] if address.sixtofour is not None else []
    if address.teredo is not None:
        inner.extend(address.teredo)
    if address in NAT64_PREFIX:
        inner.append(low)
    if address in NAT64_LOCAL_PREFIX:
        inner.extend(_rfc6052_readings(address.packed))
    return inner


def _rfc6052_readings(packed: bytes) -> list[ipaddress.IPv4Address]:
    """The IPv4 address under a /96, /64, /56 and /48 prefix; bits 64-71 are skipped."""
    spans = ((12, 16, 0, 0), (9, 13, 0, 0), (7, 8, 9, 12), (6, 8, 9, 11))
    return [ipaddress.IPv4Address(packed[a:b] + packed[c:d]) for a, b, c, d in spans]


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _size(count: int) -> str:
    return f"{count // 2**20} MB" if count % 2**20 == 0 else f"{count} bytes"
