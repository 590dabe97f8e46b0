# -*- test-case-name: tests.test_forum,tests.test_forum_threads,tests.test_forum_files,tests.test_forum_udp -*-
"""Forum verbs: REGISTER, LOGIN, CRT, MSG, DLT, EDT, LST, RDT, UPD, DWN, RMV (XIT is QUIT's alias)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred

from msgsvc.dispatch.commands import Arg, CommandSet, Text
from msgsvc.dispatch.plaintext_auth import require_tls
from msgsvc.domain.accounts.passwords import password
from msgsvc.domain.forum import post_number, safe_name
from msgsvc.domain.text import account_name
from msgsvc.domain.uploads import UploadData
from msgsvc.protocol.wire import Data, Ok, StreamedData, listing
from msgsvc.store.interfaces import Post, Upload

if TYPE_CHECKING:
    from msgsvc.domain.broker import Broker
    from msgsvc.domain.session import Session

commands = CommandSet("forum", "accounts, threads, numbered posts, file uploads (log in first)")

WELCOME = "Welcome to the forum"
USER = Arg("user", account_name)
PASSWORD = Arg("password", password)
TITLE = Arg("title", safe_name)
FILE = Arg("file", safe_name)
NUMBER = Arg("n", post_number)


@commands.verb(
    "REGISTER",
    USER,
    PASSWORD,
    summary="create a forum account and log in",
    remembers_client=True,
    identity=True,
    errors=("exists", "in-use", "auth", "full", "tls-required"),
)
def register(broker: Broker, session: Session, user: str, password: str) -> Deferred[Ok]:
    require_tls(broker.config, session)
    return broker.forum.accounts.register(session, user, password).addCallback(lambda _: Ok(WELCOME))


@commands.verb(
    "LOGIN",
    USER,
    PASSWORD,
    summary="log in to the forum",
    remembers_client=True,
    identity=True,
    errors=("no-user", "auth", "in-use", "full", "tls-required"),
)
def login(broker: Broker, session: Session, user: str, password: str) -> Deferred[Ok]:
    require_tls(broker.config, session)
    return broker.forum.accounts.login(session, user, password).addCallback(lambda _: Ok(WELCOME))


@commands.verb("CRT", TITLE, summary="create a forum thread", errors=("not-logged-in", "exists"))
def create(broker: Broker, session: Session, title: str) -> Deferred[Ok]:
    return broker.forum.create_thread(session, title).addCallback(lambda _: Ok(f"Thread {title} created"))


@commands.verb(
    "MSG",
    TITLE,
    Text("text"),
    summary="post a one-line message to a thread; replies its number",
    errors=("not-logged-in", "no-thread", "too-long"),
)
def post(broker: Broker, session: Session, title: str, text: bytes) -> Deferred[Ok]:
    return broker.forum.post(session, title, text).addCallback(lambda number: Ok(str(number)))


@commands.verb(
    "DLT",
    TITLE,
    NUMBER,
    summary="delete your message n (later ones renumber)",
    errors=("not-logged-in", "no-thread", "no-msg", "not-owner"),
)
def delete(broker: Broker, session: Session, title: str, n: int) -> Deferred[Ok]:
    return broker.forum.delete(session, title, n).addCallback(lambda _: Ok(f"Message {n} deleted"))


@commands.verb(
    "EDT",
    TITLE,
    NUMBER,
    Text("text"),
    summary="replace the text of your message n",
    errors=("not-logged-in", "no-thread", "no-msg", "not-owner", "too-long"),
)
def edit(broker: Broker, session: Session, title: str, n: int, text: bytes) -> Deferred[Ok]:
    return broker.forum.edit(session, title, n, text).addCallback(lambda _: Ok(f"Message {n} edited"))


@commands.verb("LST", summary="list forum threads", errors=("not-logged-in",))
def titles(broker: Broker, session: Session) -> Deferred[Data]:
    return broker.forum.titles(session).addCallback(lambda found: Data(listing(found), "threads"))


@commands.verb(
    "RDT", TITLE, summary="read a thread: its messages and uploads in order", errors=("not-logged-in", "no-thread")
)
def read(broker: Broker, session: Session, title: str) -> Deferred[Data]:
    return broker.forum.read(session, title).addCallback(lambda entries: Data(listing(_lines(entries)), title))


def _lines(entries: list[Post | Upload]) -> list[str]:
    return [
        f"{entry.number} {entry.user}: {entry.text}"
        if isinstance(entry, Post)
        else f"{entry.user} uploaded {entry.file}"
        for entry in entries
    ]


@commands.verb(
    "UPD",
    TITLE,
    FILE,
    Text("data"),
    summary="upload a file to a thread (data usually a literal {N})",
    literal_limit=lambda config: config.max_upload,
    literal_sink=lambda broker, session: broker.forum.upload_sink(session),
    errors=("not-logged-in", "no-thread", "exists", "too-big"),
)
def upload(broker: Broker, session: Session, title: str, file: str, data: UploadData) -> Deferred[Ok]:
    return broker.forum.upload(session, title, file, data).addCallback(
        lambda size: Ok(f"{file} uploaded to {title} ({size} bytes)")
    )


@commands.verb(
    "DWN", TITLE, FILE, summary="download a file of a thread", errors=("not-logged-in", "no-thread", "no-file")
)
def download(broker: Broker, session: Session, title: str, file: str) -> Deferred[StreamedData]:
    return broker.forum.download(session, title, file).addCallback(
        lambda opened: StreamedData(opened[0], file, opened[1])
    )


@commands.verb(
    "RMV",
    TITLE,
    summary="remove your thread with its messages and files",
    errors=("not-logged-in", "no-thread", "not-owner"),
)
def remove(broker: Broker, session: Session, title: str) -> Deferred[Ok]:
    return broker.forum.remove_thread(session, title).addCallback(lambda _: Ok(f"Thread {title} removed"))
