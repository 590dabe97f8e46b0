# -*- test-case-name: tests.test_udp_safety -*-
"""Safety for UDP peers outside ``--udp-trusted``: address validation, the 3x budget, rate limits.

A UDP source address can be forged. A peer proves that it receives what is
sent to its address by a round trip: ``COOKIE`` (padded to at least 16 bytes)
is answered ``OK cookie <16hex>``, the first 16 hex digits of
HMAC-SHA256(secret, host|port|epoch), epoch = floor(time / 300); the current
and the previous epoch are accepted. A request that starts ``!<cookie> `` is
from a validated address. Until then the server sends an address at most
:data:`AMPLIFICATION` times the bytes it received from it (:class:`Budgets`),
and per address and per prefix token buckets bound the datagrams handled
(:class:`RateLimits`). Everything here is stateless or bounded, and runs on
the injected clock.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from collections import OrderedDict
from functools import lru_cache

from twisted.internet.interfaces import IReactorTime

from msgsvc.protocol import transfer
from msgsvc.protocol.wire import Err

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

COOKIE_EPOCH = 300.0
"""Seconds of one cookie epoch; a cookie is good in its epoch and the next."""
COOKIE_HEX = 16
COOKIE_REQUEST = b"COOKIE"
AMPLIFICATION = 3
"""Bytes sent to an unvalidated address per byte received from it."""
BUDGET_SECONDS = 60.0
"""An address's budget is forgotten this long after its last datagram."""
TABLE_ENTRIES = 65536
"""Most addresses (or prefixes) each table remembers; the least recently seen go first."""
ADDRESS_RATE = 200.0
PREFIX_RATE = 1000.0
EGRESS_BYTES = 1 << 20
"""Bytes per second the server sends to all unvalidated peers together."""

HINT = "send COOKIE (padded to 16 bytes), then start requests with !<cookie>"


def parse_trusted(text: str) -> tuple[Network, ...]:
    """``--udp-trusted``: comma-separated CIDRs, or ``none``; raises ValueError naming a bad one."""
    if text.strip().lower() == "none":
        return ()
    networks = []
    for part in text.split(","):
        part = part.strip()
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"--udp-trusted: not a CIDR: {part!r}") from None
    return tuple(networks)


def host_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address of a datagram's host (an IPv4-mapped IPv6 address as IPv4), None if not one."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=4096)
def is_trusted(host: str, trusted: tuple[Network, ...]) -> bool:
    """Whether ``host`` is in one of the ``trusted`` networks (remembered: it is asked for every datagram)."""
    address = host_address(host)
    return address is not None and any(address in network for network in trusted)


def prefix_of(host: str) -> str:
    """The network a host's rate is shared with: its /24 (IPv4) or /56 (IPv6)."""
    address = host_address(host)
    if address is None:
        return host
    bits = 24 if address.version == 4 else 56
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


def bad_cookie() -> Err:
    """The refusal of a request with a wrong or expired cookie."""
    return Err("bad-args", f"bad or expired cookie: {HINT}")


def needs_validation(size: int) -> Err:
    """Instead of a reply over the budget of an unvalidated address."""
    return Err("too-big", f"a {size}-byte reply needs a validated address: {HINT}")


class Cookies:
    """Stateless cookies: an HMAC of the address and the epoch under a secret made per server run."""

    def __init__(self, clock: IReactorTime, secret: bytes | None = None) -> None:
        self._clock = clock
        self._secret = os.urandom(32) if secret is None else secret

    def _epoch(self) -> int:
        return int(self._clock.seconds() // COOKIE_EPOCH)

    def make(self, host: str, port: int, epoch: int | None = None) -> bytes:
        """The cookie of ``(host, port)`` in ``epoch`` (the current one if None), as 16 hex digits."""
        epoch = self._epoch() if epoch is None else epoch
        message = f"{host}|{port}|{epoch}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:COOKIE_HEX].encode()

    def valid(self, host: str, port: int, cookie: bytes) -> bool:
        """Whether ``cookie`` is the one of ``(host, port)`` in the current or the previous epoch."""
        epoch = self._epoch()
        cookie = cookie.lower()
        return any(hmac.compare_digest(self.make(host, port, e), cookie) for e in (epoch, epoch - 1))


def split_cookie(datagram: bytes) -> tuple[bytes | None, bytes]:
    """(cookie, rest): the ``!<16hex> `` a datagram starts with, if any, and what follows it.

    Raises ValueError for a datagram that starts with ``!`` but not a well-formed cookie.
    """
    if not datagram.startswith(b"!"):
        return None, datagram
    cookie, _space, rest = datagram[1:].partition(b" ")
    if len(cookie) != COOKIE_HEX or not all(c in b"0123456789abcdefABCDEF" for c in cookie):
        raise ValueError("malformed cookie")
    return cookie, rest


def is_cookie_request(datagram: bytes) -> bool:
    """Whether a datagram asks for a cookie: ``COOKIE`` followed by nothing but padding."""
    size = len(COOKIE_REQUEST)
    return datagram[:size].upper() == COOKIE_REQUEST and not datagram[size : size + 1].isalnum()


class _Bounded(OrderedDict):
    """An LRU-bounded dict: the least recently touched entry goes when it is full."""

    def __init__(self, entries: int) -> None:
        super().__init__()
        self.entries = entries

    def touch(self, key: object, default: list[float]) -> list[float]:
        """The entry of ``key`` (made from ``default`` if new), now the most recent."""
        entry = self.get(key)
        if entry is None:
            entry = self[key] = default
            while len(self) > self.entries:
                self.popitem(last=False)
        else:
            self.move_to_end(key)
        return entry


class Budgets:
    """Bytes received from and sent to each unvalidated address; at most AMPLIFICATION x sent."""

    def __init__(self, clock: IReactorTime, entries: int = TABLE_ENTRIES, seconds: float = BUDGET_SECONDS) -> None:
        self._clock = clock
        self._seconds = seconds
        self._table = _Bounded(entries)

    def _entry(self, address: tuple) -> list[float]:
        now = self._clock.seconds()
        entry = self._table.touch(address, [now, 0.0, 0.0])
        if now - entry[0] > self._seconds:  # forgotten: a fresh start
            entry[1] = entry[2] = 0.0
        entry[0] = now
        return entry

    def received(self, address: tuple, size: int) -> None:
        """A datagram of ``size`` bytes came from ``address``."""
        self._entry(address)[1] += size

    def remaining(self, address: tuple) -> int:
        """Bytes that may still be sent to ``address``."""
        entry = self._entry(address)
        return max(0, int(AMPLIFICATION * entry[1] - entry[2]))

    def sent(self, address: tuple, size: int) -> None:
        """``size`` bytes went to ``address``."""
        self._entry(address)[2] += size


class TokenBuckets:
    """One token bucket per key (``rate`` a second, up to ``burst``), LRU-bounded."""

    def __init__(self, clock: IReactorTime, rate: float, burst: float, entries: int = TABLE_ENTRIES) -> None:
        self._clock = clock
        self.rate = rate
        self.burst = burst
        self._table = _Bounded(entries)

    def take(self, key: object, amount: float = 1.0) -> bool:
        """Take ``amount`` tokens from the bucket of ``key``; False (nothing taken) if it has too few."""
        now = self._clock.seconds()
        entry = self._table.touch(key, [now, self.burst])
        entry[1] = min(self.burst, entry[1] + (now - entry[0]) * self.rate)
        entry[0] = now
        if entry[1] < amount:
            return False
        entry[1] -= amount
        return True


class RateLimits:
    """The datagrams one address and one prefix may have handled, and the egress to unvalidated peers."""

    def __init__(
        self,
        clock: IReactorTime,
        address_rate: float = ADDRESS_RATE,
        prefix_rate: float = PREFIX_RATE,
        egress: int = EGRESS_BYTES,
    ) -> None:
        self.addresses = TokenBuckets(clock, address_rate, max(address_rate * 2, 1.0))
        self.prefixes = TokenBuckets(clock, prefix_rate, max(prefix_rate * 2, 1.0))
        self.egress = TokenBuckets(clock, egress, egress, entries=1)

    def admit(self, address: tuple) -> str | None:
        """None if a datagram from ``address`` may be handled, else the reason it is dropped."""
        if not self.addresses.take(address):
            return "address-rate"
        if not self.prefixes.take(prefix_of(address[0])):
            return "prefix-rate"
        return None

    def may_send(self, size: int) -> bool:
        """Whether ``size`` bytes may go to an unvalidated peer now (taken from the global cap if so)."""
        return self.egress.take(None, size)


class Safety:
    """What a UDP front end keeps about its untrusted peers: cookies, budgets, rate limits, drops."""

    def __init__(self, clock: IReactorTime) -> None:
        self.cookies = Cookies(clock)
        self.budgets = Budgets(clock)
        self.limits = RateLimits(clock)
        self.dropped: dict[str, int] = {}

    def count_drop(self, reason: str) -> None:
        """One datagram dropped, or not answered, for ``reason``."""
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def admit(self, datagram: bytes, address: tuple, trusted: bool) -> tuple[bool, bytes | None, bytes | None]:
        """(validated, the request without its cookie or None, an answer to send here or None)."""
        malformed = False
        try:
            cookie, request = split_cookie(datagram)
        except ValueError:
            cookie, request, malformed = None, b"", True
        validated = trusted or (cookie is not None and self.cookies.valid(address[0], address[1], cookie))
        if not trusted:
            if not (validated and transfer.is_message(request)):  # transfers pace themselves
                reason = self.limits.admit(address)
                if reason is not None:
                    self.count_drop(reason)
                    return False, None, None
            self.budgets.received(address, len(datagram))
        if malformed or (cookie is not None and not validated):
            return validated, None, bad_cookie().encode()
        if is_cookie_request(request):
            answer = b"OK cookie " + self.cookies.make(address[0], address[1]) + b"\r\n"
            if not validated and len(answer) > self.budgets.remaining(address):  # not padded enough
                self.count_drop("budget")
                return False, None, None
            return validated, None, answer
        return validated, request, None

    def fit(self, data: bytes, address: tuple, tag: bytes | None) -> bytes | None:
        """``data`` if it fits the budget of ``address``; else the ERR it is (or the hint), cut to fit, or None."""
        remaining = self.budgets.remaining(address)
        if len(data) <= remaining:
            return data
        if not data.startswith(b"ERR " if tag is None else b"#%s ERR " % tag):
            data = needs_validation(len(data)).encode(tag)
        words = data.split(b" ", 3 if tag is not None else 2)
        head = len(b" ".join(words[:-1]))  # [#tag ]ERR code
        if remaining - 2 < head:
            return None
        return data[: remaining - 2].rstrip() + b"\r\n"

    def may_send(self, size: int, address: tuple) -> bool:
        """Whether ``size`` bytes may go to the unvalidated ``address`` now (counted if so, a drop if not)."""
        if size > self.budgets.remaining(address):
            self.count_drop("budget")
            return False
        if not self.limits.may_send(size):
            self.count_drop("egress")
            return False
        self.budgets.sent(address, size)
        return True
