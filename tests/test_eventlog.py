"""The event log: categories on every server event, and ``--event-log FILE``."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, LogLevel, LogPublisher, globalLogPublisher
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

import msgsvc
from msgsvc.dispatch.commands import CommandSet
from msgsvc.dispatch.table import CommandTable
from msgsvc.eventlog import EventLogObserver, EventLogService, category_of, format_line
from msgsvc.tap import Options, makeService
from tests.helpers import TcpHarness, UdpHarness, make_broker, temp_path

LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[(GENERAL|ERROR|CONNECTION)\] (.*)\n\Z")


class Lines:
    """A text file stand-in that keeps written lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.closed = False

    def write(self, text: str) -> None:
        self.lines.append(text)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def categorized(self) -> list[tuple[str, str]]:
        """(category, message) per line, checking each line's shape."""
        parsed = []
        for line in self.lines:
            match = LINE.match(line)
            if match is None:
                raise AssertionError(f"malformed event log line: {line!r}")
            parsed.append((match.group(1), match.group(2)))
        return parsed


class CategoryTests(TestCase):
    """Which category an event falls in."""

    def test_own_category(self) -> None:
        """An event's own category is used, in upper case."""
        self.assertEqual(category_of({"category": "CONNECTION", "log_level": LogLevel.error}), "CONNECTION")
        self.assertEqual(category_of({"category": "error"}), "ERROR")

    def test_without_category(self) -> None:
        """Without a (valid) category, failures and error levels are ERROR, the rest GENERAL."""
        self.assertEqual(category_of({"log_level": LogLevel.info}), "GENERAL")
        self.assertEqual(category_of({"category": "other", "log_level": LogLevel.warn}), "GENERAL")
        self.assertEqual(category_of({"log_level": LogLevel.critical}), "ERROR")
        self.assertEqual(category_of({"log_level": LogLevel.error}), "ERROR")
        self.assertEqual(category_of({"log_failure": Failure(ValueError("x"))}), "ERROR")


class FormatTests(TestCase):
    """One readable line per event."""

    def test_line(self) -> None:
        """A line is the UTC time, the category in brackets and the formatted message."""
        event = {"log_format": "client {id} connected", "id": 7, "log_time": 0.5, "category": "CONNECTION"}
        self.assertEqual(format_line(event), "1970-01-01T00:00:00.500Z [CONNECTION] client 7 connected\n")

    def test_one_line(self) -> None:
        """Line breaks inside a message become spaces."""
        event = {"log_format": "a\nb\r\nc", "log_time": 0}
        self.assertEqual(format_line(event), "1970-01-01T00:00:00.000Z [GENERAL] a b  c\n")

    def test_failure(self) -> None:
        """A failure adds its exception type and message on the same line."""
        event = {"log_format": "boom", "log_time": 0, "log_failure": Failure(KeyError("k"))}
        self.assertEqual(format_line(event), "1970-01-01T00:00:00.000Z [ERROR] boom (KeyError: 'k')\n")


class ServiceTests(TestCase):
    """EventLogService writes the log file while the application runs."""

    def test_observes_while_running(self) -> None:
        """Events are appended to the file from start to stop, not before or after."""
        path = temp_path(self, "events.log")
        Path(path).write_text("earlier line\n")
        publisher = LogPublisher()
        log = Logger(observer=publisher)
        service = EventLogService(path, publisher)
        log.info("before", category="GENERAL")
        service.startService()
        log.info("client {id} connected", id=1, category="CONNECTION")
        log.error("bad {thing}", thing="input")
        self.successResultOf(service.stopService())
        log.info("after")
        lines = Path(path).read_text().splitlines(keepends=True)
        self.assertEqual(lines[0], "earlier line\n")
        self.assertEqual(
            [LINE.match(line).groups() for line in lines[1:]],
            [
                ("CONNECTION", "client 1 connected"),
                ("ERROR", "bad input"),
            ],
        )

    def test_children_stop_first(self) -> None:
        """Events logged while the children stop are still written."""
        from twisted.application.service import Service

        publisher = LogPublisher()
        log = Logger(observer=publisher)

        class Noisy(Service):
            def stopService(self) -> None:
                log.info("bye from child", category="CONNECTION")

        root = EventLogService(temp_path(self, "events.log"), publisher)
        Noisy().setServiceParent(root)
        root.startService()
        self.successResultOf(root.stopService())
        self.assertIn("[CONNECTION] bye from child", Path(root.path).read_text())


class ServerEventsTests(TestCase):
    """The server's own events carry their category."""

    def setUp(self) -> None:
        self.output = Lines()
        observer = EventLogObserver(self.output)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def mine(self) -> list[tuple[str, str]]:
        """The lines from msgsvc's own events."""
        return [(c, m) for c, m in self.output.categorized() if re.match(r"(client|udp|refused|BREAK|Server) ", m)]

    def test_connection_general_error(self) -> None:
        """Connecting and leaving are CONNECTION, posting is GENERAL, a refused message is ERROR."""
        broker = make_broker()
        client = TcpHarness(broker, port=40001)
        client.output()
        client.command(b"TWEET hello #World")
        client.command(b"TWEET " + b"x" * 151)
        UdpHarness(broker).command(b"TWEET {3}\na\nb")
        client.disconnect()
        self.assertEqual(
            self.mine(),
            [
                ("CONNECTION", "client 1 connected over tcp from 127.0.0.1:40001"),
                ("GENERAL", "client 1 posted message 1 as anonymous (hashtags: world)"),
                ("ERROR", "client 1 tweet refused: 151 characters"),
                ("ERROR", "udp 127.0.0.1:50000 tweet refused: must be one line without control characters"),
                ("CONNECTION", "client 1 disconnected"),
            ],
        )

    def test_full_server(self) -> None:
        """A client turned away is CONNECTION."""
        broker = make_broker(max_clients=1)
        TcpHarness(broker, port=40001)
        TcpHarness(broker, port=40002)
        self.assertIn(("CONNECTION", "refused tcp client 127.0.0.1:40002: server is full"), self.mine())

    def test_internal_error(self) -> None:
        """A command that fails unexpectedly is logged as ERROR."""
        broken = CommandSet()
        broken.verb("BREAK", summary="fail")(lambda broker, session: 1 / 0)
        client = TcpHarness(make_broker(), table=CommandTable([broken]))
        client.output()
        self.assertEqual(client.command(b"BREAK").code, "internal")
        self.flushLoggedErrors(ZeroDivisionError)
        self.assertIn(("ERROR", "BREAK failed (ZeroDivisionError: division by zero)"), self.mine())

    def test_server_started(self) -> None:
        """Start-up is GENERAL, shutting down CONNECTION (as in the original), both in the --event-log file."""
        path = temp_path(self, "events.log")
        options = Options()
        options.parseOptions(["--no-udp", "--port", "0", "--store", "memory", "--event-log", path])
        service = makeService(options, MemoryReactorClock())
        self.assertIsInstance(service, EventLogService)
        service.startService()
        self.successResultOf(service.stopService())
        text = Path(path).read_text()
        self.assertIn("[GENERAL] Server started on 127.0.0.1:0 (TCP)", text)
        self.assertIn("[CONNECTION] Server stopping on port 0", text)

    def test_every_log_call_has_category(self) -> None:
        """Every log call in msgsvc names its category."""
        missing = []
        root = Path(os.path.dirname(msgsvc.__file__))
        levels = {"debug", "info", "warn", "error", "critical", "failure"}
        for source in sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(source.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in levels
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "log"
                    and not any(k.arg == "category" for k in node.keywords)
                ):
                    missing.append(f"{source.relative_to(root)}:{node.lineno}")
        self.assertEqual(missing, [])


class OptionTests(TestCase):
    """--event-log FILE."""

    def test_default_off(self) -> None:
        """Without --event-log the application is a plain MultiService."""
        options = Options()
        options.parseOptions(["--no-udp", "--port", "0", "--store", "memory"])
        self.assertNotIsInstance(makeService(options, MemoryReactorClock()), EventLogService)

    def test_unwritable(self) -> None:
        """A file that cannot be written is a usage error naming the reason."""
        directory = temp_path(self, "events.log")
        os.mkdir(directory)
        error = self.assertRaises(usage.UsageError, Options().parseOptions, ["--event-log", directory])
        self.assertIn("cannot write --event-log", str(error))


class HelpTests(TestCase):
    """The new verbs are listed by HELP."""

    def test_listed(self) -> None:
        """HELP lists every microblog and diagnostics verb."""
        client = TcpHarness(make_broker())
        client.output()
        payload = client.command(b"HELP").payload.decode()
        verbs = {line.split()[0] for line in payload.splitlines()}
        self.assertLessEqual({"TWEET", "LAST", "TAGGED", "FOLLOW", "UNFOLLOW", "ECHO", "GEN", "STREAM", "STOP"}, verbs)
