# -*- test-case-name: tests.test_eventlog -*-
"""``--event-log FILE``: one readable line per server event, with its category.

Like the original's report file, every event falls in one of three categories:

- ``GENERAL``: start-up, messages posted, and anything else;
- ``ERROR``: failures, and requests that break the rules;
- ``CONNECTION``: clients connecting, leaving or turned away.

msgsvc's own log calls name their category (``log.info(..., category="CONNECTION")``).
Events that do not (Twisted's own, for instance) are ``ERROR`` when they carry a
failure or have level error or critical, and ``GENERAL`` otherwise.

A line is ``<ISO-8601 UTC time> [<CATEGORY>] <message>``; a failure adds
``(<exception type>: <message>)`` on the same line (the traceback goes to the
twistd log), and line breaks inside a message become spaces.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import IO, Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.logger import ILogObserver, LogLevel, LogPublisher, formatEvent, globalLogPublisher
from zope.interface import implementer

CATEGORIES = ("GENERAL", "ERROR", "CONNECTION")


def category_of(event: dict[str, Any]) -> str:
    """The event's category: its own ``category`` key if valid, else decided by its level."""
    category = event.get("category")
    if isinstance(category, str) and category.upper() in CATEGORIES:
        return category.upper()
    if "log_failure" in event or event.get("log_level") in (LogLevel.error, LogLevel.critical):
        return "ERROR"
    return "GENERAL"


def format_line(event: dict[str, Any]) -> str:
    """The event as one line of the event log, with its line ending."""
    when = datetime.fromtimestamp(event.get("log_time") or 0, UTC)
    text = formatEvent(event)
    failure = event.get("log_failure")
    if failure is not None:
        kind = getattr(failure.type, "__name__", str(failure.type))
        text += f" ({kind}: {failure.getErrorMessage()})"
    text = " ".join(text.split("\n")).replace("\r", " ")
    return f"{when.isoformat(timespec='milliseconds').replace('+00:00', 'Z')} [{category_of(event)}] {text}\n"


@implementer(ILogObserver)
class EventLogObserver:
    """Writes each event it observes as one line to a text file, flushed at once."""

    def __init__(self, output: IO[str]) -> None:
        self.output = output

    def __call__(self, event: dict[str, Any]) -> None:
        self.output.write(format_line(event))
        self.output.flush()


def open_event_log(path: str) -> IO[str]:
    """Open (or create) the event log for appending; raises OSError."""
    return open(path, "a", encoding="utf-8", errors="backslashreplace")


class EventLogService(MultiService):
    """The application's root service when ``--event-log`` is given.

    It observes the log before its children start and until they have all
    stopped, so start-up and the whole shutdown are in the file.
    """

    def __init__(self, path: str, publisher: LogPublisher = globalLogPublisher) -> None:
        super().__init__()
        self.path = path
        self.publisher = publisher
        self.observer: EventLogObserver | None = None

    def startService(self) -> None:
        self.observer = EventLogObserver(open_event_log(self.path))
        self.publisher.addObserver(self.observer)
        super().startService()

    def stopService(self) -> Deferred[Any]:
        """Stop the children (MultiService's DeferredList, firing once they have stopped), then stop logging."""
        return super().stopService().addBoth(self._stop_observing)

    def _stop_observing(self, result: Any) -> Any:
        if self.observer is not None:
            self.publisher.removeObserver(self.observer)
            self.observer.output.close()
            self.observer = None
        return result
