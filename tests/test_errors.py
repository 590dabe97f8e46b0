"""Every error code of the protocol: produced by a domain error type or by what the table says, and documented."""

from __future__ import annotations

import os
import re

from twisted.trial.unittest import TestCase

from msgsvc.dispatch.errors import CODES, FRAMING_CODES, reply_for
from msgsvc.domain import errors
from msgsvc.protocol.wire import Err
from tests.helpers import ROOT

SPEC_CODES = (
    *"unknown-command bad-args line-too-long too-big too-long full empty no-name name-taken no-file".split(),
    *"not-logged-in no-user auth in-use exists no-thread no-msg not-owner tls-required internal".split(),
)
"""The error codes of the specification, copied here so the test does not depend on where the spec lives."""


def domain_errors(kind: type[errors.DomainError] = errors.DomainError) -> list[type[errors.DomainError]]:
    """Every subclass of ``kind`` that msgsvc defines, at any depth (not those the tests make)."""
    found = []
    for sub in kind.__subclasses__():
        if sub.__module__.startswith("msgsvc."):
            found.append(sub)
        found += domain_errors(sub)
    return found


def documented_codes() -> dict[str, str]:
    """The codes of the "Error codes" table of docs/protocol.md, with what each means."""
    with open(os.path.join(ROOT, "docs", "protocol.md"), encoding="utf-8") as page:
        text = page.read()
    section = text.split("\n## Error codes\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([a-z-]+)` \| (.+) \|$", section, re.MULTILINE))


class CodeTableTests(TestCase):
    """CODES and FRAMING_CODES between them produce exactly the protocol's codes."""

    def test_every_code_produced(self) -> None:
        """Each code of the spec comes from a domain error type or is listed as produced elsewhere."""
        produced = set(CODES.values())
        for code in SPEC_CODES:
            self.assertTrue(code in produced or code in FRAMING_CODES, code)

    def test_no_other_codes(self) -> None:
        """Neither table has a code the spec does not define, and no code is listed twice."""
        self.assertEqual(len(SPEC_CODES), len(set(SPEC_CODES)))
        self.assertLessEqual(set(CODES.values()) | set(FRAMING_CODES), set(SPEC_CODES))

    def test_framing_codes_say_by_what(self) -> None:
        """Every code produced outside the domain says what produces it."""
        for code, produced_by in FRAMING_CODES.items():
            self.assertGreater(len(produced_by), 10, code)


class DomainErrorTests(TestCase):
    """Every domain error type maps to a code of the spec."""

    def test_every_type_has_a_code(self) -> None:
        """reply_for answers each DomainError subclass with its code and the error's text."""
        kinds = domain_errors()
        self.assertGreaterEqual(len(kinds), 16)
        for kind in kinds:
            reply = reply_for(kind("why it failed"))
            self.assertIsInstance(reply, Err)
            self.assertIn(reply.code, SPEC_CODES, kind)
            self.assertEqual(reply.text, "why it failed")

    def test_every_mapped_type_is_a_domain_error(self) -> None:
        """CODES maps only DomainError subclasses."""
        self.assertEqual(set(CODES) - set(domain_errors()), set())

    def test_subclass_takes_its_base_code(self) -> None:
        """A subclass of a mapped type answers with its base type's code."""

        class NoSuchPoll(errors.NoThread):
            """A narrower failure."""

        self.assertEqual(reply_for(NoSuchPoll("no poll p")), Err("no-thread", "no poll p"))

    def test_unmapped_type_refused(self) -> None:
        """A domain error with no code is a programming error, not a reply."""
        self.assertRaises(TypeError, reply_for, errors.DomainError("why"))

    def test_text_is_kept(self) -> None:
        """The error's text reaches the reply unchanged, spaces and punctuation included."""
        self.assertEqual(
            reply_for(errors.NoFile("File path is invalid")).encode(), b"ERR no-file File path is invalid\r\n"
        )


class DocumentedTests(TestCase):
    """The protocol reference documents every code."""

    def test_every_code_documented(self) -> None:
        """Each code of the spec has a row in the error-code table of docs/protocol.md."""
        documented = documented_codes()
        missing = [code for code in SPEC_CODES if code not in documented]
        self.assertEqual(missing, [])
        self.assertLessEqual(set(documented), set(SPEC_CODES))
