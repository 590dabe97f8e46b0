# -*- test-case-name: tests.test_accounts_passwords -*-
"""Passwords: what one may be, and salted scrypt hashes of them.

A hash is a self-describing record ``scrypt$<log2 N>$<r>$<p>$<salt>$<digest>``,
so hashes made at another cost still verify. Hashing and verifying are slow on
purpose: call them in a thread (``deferToThread``), never in the reactor.
This module depends on nothing else in msgsvc.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
DIGEST_BYTES = 32
MIN_COST, MAX_COST = 1, 20

_PASSWORD = re.compile(r"[\x21-\x7e]{1,128}\Z")


def password(text: str) -> str:
    """A password: 1-128 printable ASCII characters without spaces (never echoed back)."""
    if not _PASSWORD.match(text):
        raise ValueError("a password is 1-128 printable ASCII characters without spaces")
    return text


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _scrypt(secret: str, salt: bytes, cost: int, r: int, p: int) -> bytes:
    n = 1 << cost
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=DIGEST_BYTES, maxmem=256 * n * r * p + (1 << 20)
    )


def hash_password(secret: str, cost: int) -> str:
    """A new salted scrypt record for ``secret`` (slow: call it in a thread)."""
    if not MIN_COST <= cost <= MAX_COST:
        raise ValueError(f"password cost must be from {MIN_COST} to {MAX_COST}")
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(secret, salt, cost, SCRYPT_R, SCRYPT_P)
    return f"scrypt${cost}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def dummy_hash(cost: int) -> str:
    """A record no password matches, as slow to check as a real one of this cost (made instantly)."""
    return f"scrypt${cost}${SCRYPT_R}${SCRYPT_P}${_b64(os.urandom(SALT_BYTES))}${_b64(os.urandom(DIGEST_BYTES))}"


def verify_password(record: str, secret: str) -> bool:
    """Whether ``secret`` matches the record, compared in constant time (slow: call it in a thread)."""
    scheme, cost, r, p, salt, digest = record.split("$")
    if scheme != "scrypt":
        raise ValueError(f"unknown password hash scheme {scheme!r}")
    actual = _scrypt(secret, base64.b64decode(salt), int(cost), int(r), int(p))
    return hmac.compare_digest(actual, base64.b64decode(digest))
