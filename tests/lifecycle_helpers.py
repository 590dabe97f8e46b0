"""Sizes and timeouts shared by the tests of how TCP connections end."""

BIG = 100_000
"""A reply larger than the transport's 64 KiB buffer: writing it pauses the producer."""
IDLE = 600.0
