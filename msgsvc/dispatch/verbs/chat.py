# -*- test-case-name: tests.test_chat,tests.test_chat_files -*-
"""Chat verbs: NAME, SAY, WHO, STATUS, LIST, GET."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred

from msgsvc.dispatch.commands import Arg, CommandSet, Text
from msgsvc.domain.cluster import Listed
from msgsvc.domain.errors import InvalidRequest, NameTaken
from msgsvc.domain.text import chat_name, one_line
from msgsvc.protocol.wire import Data, Ok, StreamedData, listing
from msgsvc.store.answers import Answer, then

if TYPE_CHECKING:
    from msgsvc.domain.broker import Broker
    from msgsvc.domain.session import Session

commands = CommandSet("chat", "named clients, lines to all, who is here, file downloads")


@commands.verb(
    "NAME",
    Arg("name", chat_name),
    summary="choose your chat name (others hear JOIN)",
    remembers_client=True,
    errors=("name-taken", "full"),
)
def name(broker: Broker, session: Session, name: str) -> Deferred[Ok]:
    # Accounts own their names: only the client logged in to the account may take its name.
    def decide(is_account: bool) -> Answer[Ok]:
        own = session.account is not None and session.account.casefold() == name.casefold()
        if is_account and not own:
            raise NameTaken(f"{name} is a forum account; LOGIN {name} <password> to use it")
        holder = broker.chat.named(name)
        if not session.lasting or (holder is not None and holder is not session):
            broker.chat.set_name(session, name)  # refused, as without other nodes
        return then(broker.cluster.claim_name(session, name), granted)  # unique across nodes too

    def granted(taken: bool) -> Ok:
        if not taken:
            raise NameTaken(f"{name} is already in use")
        if not session.open:  # it left while the claim ran
            broker.cluster.release_name(session, name)
        else:
            broker.chat.set_name(session, name)
        return Ok(f"Your name is set as: {name}")

    return broker.forum.is_account(name).addCallback(decide)


@commands.verb("SAY", Text("text"), summary="say one line to every other named client", errors=("no-name",))
def say(broker: Broker, session: Session, text: bytes) -> Ok:
    try:
        line = one_line(text)
    except ValueError as error:
        raise InvalidRequest(f"chat text {error}") from None
    if not line.strip():
        raise InvalidRequest("nothing to say")
    broker.chat.say(session, line)
    return Ok(f"{line} ACK")


@commands.verb("WHO", summary="list connected named clients (of every node)", errors=())
def who(broker: Broker, session: Session) -> Answer[Data]:
    def lines(others: list[Listed]) -> Data:
        clients: list[Session | Listed] = [*broker.chat.members, *others]
        named = [client for client in clients if client.display_name is not None]
        return Data(listing([f"{client.display_name} {_where(client)}" for client in named]), "who")

    return then(broker.cluster.others_listed(), lines)


@commands.verb("STATUS", summary="every client of this server run, connected or gone (and of other nodes)", errors=())
def status(broker: Broker, session: Session) -> Answer[Data]:
    def lines(others: list[Listed]) -> Data:
        clients: list[Session | Listed] = [*broker.clients_of_run, *others]
        return Data(listing([_status(client, broker) for client in clients]), "status")

    return then(broker.cluster.others_listed(), lines)


def _status(client: Session | Listed, broker: Broker) -> str:
    closed = _iso(client.closed) if client.closed is not None else "-"
    client_id = client.id if isinstance(client, Listed) else broker.cluster.client_id(client)
    return (
        f"{client_id} {client.display_name or '-'} {_where(client)} opened={_iso(client.opened)} "
        f"closed={closed} sent={client.sent}"
    )


@commands.verb("LIST", summary="list the files GET can fetch, with their sizes", errors=())
def list_files(broker: Broker, session: Session) -> Data:
    return Data(listing([f"{name} {size}" for name, size in broker.files.listing()]), "files")


@commands.verb("GET", Arg("file"), summary="fetch a file listed by LIST", errors=("no-file",))
def get(broker: Broker, session: Session, file: str) -> StreamedData:
    size, source = broker.files.open(file)
    return StreamedData(size, file, source)


def _where(session: Session | Listed) -> str:
    host, port = session.peer
    host = f"[{host}]" if ":" in host else host
    return f"{session.transport_name} {host}:{port}"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
