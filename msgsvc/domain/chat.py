# -*- test-case-name: tests.test_chat -*-
"""The chat room: named clients, JOIN/LEAVE presence and broadcast chat.

Names are unique among connected clients, ignoring case. Forum accounts own
their names: a client logging in to an account takes the account's name from a
guest that holds it (:meth:`ChatRoom.claim`). With other nodes (see
``cluster``), every event is told to them too, names freed here are freed
there, and the NAME verb claims a name across nodes before :meth:`set_name`.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.logger import Logger

from msgsvc.domain.cluster import Claimed, ICluster, SingleNode
from msgsvc.domain.errors import InvalidRequest, NameTaken, NoName
from msgsvc.domain.events import Chat, Event, Join, Leave
from msgsvc.domain.session import Session

log = Logger()


class ChatRoom:
    """Who is named, and who hears what. Names are unique among connected clients, ignoring case."""

    def __init__(self, cluster: ICluster | None = None) -> None:
        self._members: dict[str, Session] = {}
        self.cluster: ICluster = cluster or SingleNode()
        self.changed: Callable[[Session], None] | None = None
        """Told of a client whose listing changed (name, lines said), if other nodes list this node's clients."""

    @property
    def members(self) -> list[Session]:
        """Connected named clients, in the order they took their current name."""
        return list(self._members.values())

    def named(self, name: str) -> Session | None:
        """The connected client using ``name`` (ignoring case), if any."""
        return self._members.get(name.casefold())

    def set_name(self, session: Session, name: str) -> None:
        """Name a client; the others hear ``* JOIN`` (and ``* LEAVE`` of its old name)."""
        holder = self._members.get(name.casefold())
        if holder is not None and holder is not session:
            raise NameTaken(f"{name} is already in use")
        if not session.lasting:
            raise InvalidRequest("a name needs a connection or UDP session")
        old = session.name
        if old == name:
            return
        if old is not None:
            del self._members[old.casefold()]
            self._broadcast(Leave(old), session)
            if old.casefold() != name.casefold():
                self.cluster.release_name(session, old)
        session.name = name
        self._members[name.casefold()] = session
        self._broadcast(Join(name), session)
        self._changed(session)

    def claim(self, session: Session, name: str, elsewhere: bool = False) -> None:
        """Name a client after the forum account it logs in to; the account owns the name.

        ``elsewhere``: a guest of another node held it (the login took it in
        the cluster already): that node is told, and the members here hear
        ``* LEAVE``, before the ``* JOIN``.

        A guest holding the name (any other client: the realm refuses a second
        login to the account before this) loses it: every named client, the
        guest included, hears ``* LEAVE <name>``, and the guest has no name
        (its SAY fails with NoName) until it picks another. Then the account's
        client takes the name as :meth:`set_name` does (the others hear ``* JOIN``).
        """
        if elsewhere:
            self.cluster.tell(Claimed(name))
            self.deliver(Leave(name))
        holder = self._members.get(name.casefold())
        if holder is not None and holder is not session:
            gone = holder.name
            assert gone is not None  # a member is named
            del self._members[name.casefold()]
            holder.name = None
            self.cluster.release_name(holder, gone)
            self._changed(holder)
            log.info(
                "client {id} lost the name {name} to the forum account", id=holder.id, name=gone, category="GENERAL"
            )
            leave = Leave(gone)
            holder.client.send_event(leave)
            self._broadcast(leave, holder)
        self.set_name(session, name)

    def say(self, session: Session, text: str) -> None:
        """Broadcast ``* CHAT <name> <text>`` to every other named client."""
        if session.name is None:
            raise NoName("choose a name first: NAME <name>")
        session.sent += 1
        self._broadcast(Chat(session.name, text), session)
        self._changed(session)

    def _changed(self, session: Session) -> None:
        if self.changed is not None:
            self.changed(session)

    def session_closed(self, session: Session) -> None:
        """A named client left: the others hear ``* LEAVE``."""
        if session.name is not None and self._members.get(session.name.casefold()) is session:
            del self._members[session.name.casefold()]
            self._broadcast(Leave(session.name), session)
            self.cluster.release_name(session, session.name)

    def lose(self, name: str) -> None:
        """An account of another node took ``name``: its guest here, if any, loses it; the members here hear LEAVE."""
        holder = self._members.pop(name.casefold(), None)
        if holder is not None:
            holder.name = None
            log.info("client {id} lost the name {name} to an account", id=holder.id, name=name, category="GENERAL")
            holder.client.send_event(Leave(name))
            self._changed(holder)
        self.deliver(Leave(name))

    def deliver(self, event: Event) -> None:
        """Another node's event: every member here hears it."""
        for member in list(self._members.values()):
            member.client.send_event(event)

    def _broadcast(self, event: Chat | Join | Leave, sender: Session) -> None:
        for member in list(self._members.values()):
            if member is not sender:
                member.client.send_event(event)
        self.cluster.tell(event)
