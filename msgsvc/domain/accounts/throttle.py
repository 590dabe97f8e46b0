# -*- test-case-name: tests.test_throttle -*-
"""Rate limits on LOGIN and REGISTER, per client address prefix and for the whole server.

An attacker rarely has one address: a /24 of IPv4 or a /56 of IPv6 is what one
customer of a provider typically gets, so attempts are counted per prefix
(:func:`prefix_of`), and also for all addresses together, so that many prefixes
cannot add up to more than the server allows.

A :class:`Throttle` counts *attempts in progress* as well as *counted outcomes*
(failed logins; created accounts) within a sliding window: a burst sent before
any outcome is known cannot outrun the limit. Memory is bounded: per prefix at
most ``limit`` timestamps are kept (more can never matter), and at most
:attr:`Throttle.MAX_PREFIXES` prefixes, those idle longest being forgotten first
(the global limit still bounds what forgotten prefixes can do).
"""

from __future__ import annotations

import ipaddress
import math
from collections import deque

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from msgsvc.domain.errors import AuthFailed

log = Logger()

IPV4_PREFIX = 24
IPV6_PREFIX = 56
LOGIN_WINDOW = 60.0
"""Failed logins are counted over this many seconds (``--login-limit`` is per minute)."""
REGISTER_WINDOW = 3600.0
"""Accounts created are counted over this many seconds (``--register-limit`` is per hour)."""


def prefix_of(host: str) -> str:
    """The network a client address belongs to for throttling: ``10.0.0.0/24``, ``2001:db8:0:100::/56``.

    An IPv4-mapped IPv6 address (``::ffff:10.0.0.7``) counts as its IPv4
    address; an IPv6 zone (``%eth0``) is ignored. Anything that is not an IP
    address (a UNIX socket's path) is its own key.
    """
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    bits = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network((address, bits), strict=False))


class Throttle:
    """At most ``limit`` counted-or-running attempts per prefix, and ``global_limit`` in all, per ``window`` seconds.

    ``begin(host)`` before an attempt (AuthFailed when over a limit),
    ``end(key, counted)`` once its outcome is known. A limit of 0 is no limit.
    """

    MAX_PREFIXES = 10000
    """Prefixes remembered at once; beyond that the longest idle are forgotten."""

    def __init__(self, clock: IReactorTime, limit: int, global_limit: int, window: float, what: str) -> None:
        """``what`` names the counted outcome in the refusal: ``failed logins``, ``accounts registered``."""
        self._clock = clock
        self._limit = limit
        self._global_limit = global_limit
        self._window = window
        self._what = what
        self._counted: dict[str, deque[float]] = {}
        """Per prefix, the times of its latest counted outcomes; ordered by the latest of them."""
        self._running: dict[str, int] = {}
        self._all: deque[float] = deque(maxlen=global_limit or 1)
        self._all_running = 0

    def begin(self, host: str) -> str:
        """An attempt from ``host`` starts; returns the key to pass to :meth:`end`.

        Raises AuthFailed saying when to try again if the prefix, or the
        server as a whole, has reached its limit.
        """
        key = prefix_of(host)
        now = self._clock.seconds()
        if self._limit:
            self._forget_expired(now)
            wait = self._wait(self._counted.get(key, ()), self._running.get(key, 0), self._limit, now)
            if wait is not None:
                raise AuthFailed(f"too many {self._what} from {key}; try again in {wait} seconds")
        if self._global_limit:
            wait = self._wait(self._all, self._all_running, self._global_limit, now)
            if wait is not None:
                raise AuthFailed(f"too many {self._what} on this server; try again in {wait} seconds")
        if self._limit:
            self._running[key] = self._running.get(key, 0) + 1
        self._all_running += 1
        return key

    def end(self, key: str, counted: bool) -> None:
        """The attempt begun with ``key`` is over; ``counted`` if its outcome counts toward the limits."""
        self._all_running -= 1
        if self._limit:
            running = self._running.get(key, 1) - 1
            if running:
                self._running[key] = running
            else:
                self._running.pop(key, None)
        if not counted:
            return
        now = self._clock.seconds()
        if self._global_limit:
            self._all.append(now)
            if len(self._all) == self._global_limit and now - self._all[0] < self._window:
                self._reached("all addresses together", self._global_limit)
        if self._limit:
            times = self._counted.pop(key, None)  # re-inserted last: the dict stays ordered by latest outcome
            if times is None:
                times = deque(maxlen=self._limit)
            times.append(now)
            self._counted[key] = times
            if len(times) == self._limit and now - times[0] < self._window:
                self._reached(key, self._limit)
            self._forget_expired(now)
            while len(self._counted) > self.MAX_PREFIXES:
                del self._counted[next(iter(self._counted))]

    def _reached(self, source: str, limit: int) -> None:
        """Log, once each time it happens, that ``source`` has used up its limit: later attempts are refused."""
        log.warn(
            "{limit} {what} in {window:.0f} s from {source}: further attempts are refused for a while",
            limit=limit,
            what=self._what,
            window=self._window,
            source=source,
            category="ERROR",
        )

    @property
    def prefixes(self) -> int:
        """How many prefixes are remembered now."""
        return len(self._counted)

    def _forget_expired(self, now: float) -> None:
        """Drop the prefixes whose latest outcome left the window (they come first)."""
        horizon = now - self._window
        while self._counted:
            key = next(iter(self._counted))
            if self._counted[key][-1] > horizon:
                break
            del self._counted[key]

    def _wait(self, times: deque[float] | tuple, running: int, limit: int, now: float) -> int | None:
        """Seconds until one more attempt is allowed, or None if it is allowed now."""
        horizon = now - self._window
        recent = [t for t in times if t > horizon]
        excess = len(recent) + running - limit + 1
        if excess <= 0:
            return None
        if excess > len(recent):  # attempts still running fill the limit by themselves
            return math.ceil(self._window)
        return max(1, math.ceil(recent[excess - 1] + self._window - now))
