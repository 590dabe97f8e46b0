"""The docs' nc transcripts replay byte for byte against the server (see tests/transcripts.py)."""

from __future__ import annotations

import glob
import os

from twisted.trial import unittest

from tests.helpers import ROOT
from tests.transcripts import Replay, TranscriptMismatch

PAGES = sorted([os.path.join(ROOT, "README.md"), *glob.glob(os.path.join(ROOT, "docs", "*.md"))])


class TranscriptTests(unittest.TestCase):
    """Every page's transcripts, replayed on a fresh server."""

    def test_every_page_replays(self) -> None:
        """Each transcript marked for replay shows exactly what the server sends."""
        checked = 0
        failures = []
        for page in PAGES:
            with open(page, encoding="utf-8") as source:
                text = source.read()
            try:
                checked += Replay().run(text)
            except TranscriptMismatch as mismatch:
                failures.append(f"{os.path.relpath(page, ROOT)}: {mismatch}")
        self.assertEqual(failures, [])
        self.assertGreater(checked, 10)

    def test_a_wrong_transcript_fails(self) -> None:
        """A transcript that differs from the server's bytes is reported."""
        page = "<!-- replay a tcp 40000 -->\n```\n$ nc 127.0.0.1 55556\nOK msgsvc 0.1.0 ready\nPING\nOK PONG\n```\n"
        self.assertRaises(TranscriptMismatch, Replay().run, page)
