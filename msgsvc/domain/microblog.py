# -*- test-case-name: tests.test_microblog,tests.test_microblog_follow -*-
"""The microblog: short messages, the last one, hashtags, and followers who get ``* TWEET`` events.

Messages and their hashtag index live in an :class:`~msgsvc.store.interfaces.ITweetStore`;
who follows what is per run and lives here, keyed both ways (hashtag to
sessions and session to hashtags) so that fan-out touches only matching
followers and a leaving client is forgotten in proportion to what it followed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from msgsvc.domain import events
from msgsvc.domain.cluster import ICluster, SingleNode, TweetNews
from msgsvc.domain.session import Session
from msgsvc.store.answers import deferred
from msgsvc.store.interfaces import ITweetStore, Tweet

log = Logger()

MAX_CHARACTERS = 150
"""Longest message, in characters (Unicode code points), not bytes."""
ALL = "all"
"""``FOLLOW #ALL``: every message, whatever its hashtags."""
ANONYMOUS = "anonymous"
"""The author of a message posted by a client without a name.

A named client's messages carry ``Session.display_name``: the bare account name
when it is logged in to that account, ``~name`` for a guest's name, stored so.
"""

_HASHTAG = re.compile(r"#([A-Za-z0-9_]{1,50})\Z")
_HASHTAG_IN_TEXT = re.compile(r"(?<![\w#])#([A-Za-z0-9_]{1,50})(?!\w)")


def hashtag(text: str) -> str:
    """A ``#tag`` argument, as the lower-case tag without its ``#``; raises ValueError."""
    match = _HASHTAG.match(text)
    if not match:
        raise ValueError("a hashtag is # followed by 1-50 of A-Z a-z 0-9 _")
    return match.group(1).lower()


def hashtags(text: str) -> frozenset[str]:
    """The hashtags of a message, lower-case, without ``#``.

    A hashtag starts at a ``#`` that does not follow a letter, digit, ``_`` or
    ``#``, and its 1-50 characters must end the word: ``#caf\u00e9`` and a run of
    51 characters are not hashtags.
    """
    return frozenset(tag.lower() for tag in _HASHTAG_IN_TEXT.findall(text))


def describe(session: Session) -> str:
    """Who sent a command, for the log: ``client <id>``, or ``udp <host>:<port>`` without a session."""
    if session.lasting:
        return f"client {session.id}"
    host, port = session.peer
    return f"{session.transport_name} {host}:{port}"


class Microblog:
    """Posting, reading and following microblog messages."""

    def __init__(self, store: ITweetStore, confirm: Callable[[Any], Any] = lambda value: value) -> None:
        """``confirm`` holds a value until the store's changes are durable (see ``IDurability.confirm``)."""
        self._store = store
        self._confirm = confirm
        self._followers: dict[str, dict[Session, None]] = {}
        """Tag (or ALL) to the sessions following it, in the order they followed."""
        self._following: dict[Session, set[str]] = {}
        self.cluster: ICluster = SingleNode()
        """The other nodes, told of each tweet (the broker sets it)."""

    def post(self, session: Session, text: str) -> Deferred[int]:
        """Store a message (already checked); once stored, tell its followers. Fires with its id."""
        author = session.display_name or ANONYMOUS  # a guest posts as ~name, never as an account
        tags = hashtags(text)
        return deferred(self._store.post(author, text, tags)).addCallback(self._posted, session, author, text, tags)

    def _posted(self, tweet_id: int, session: Session, author: str, text: str, tags: frozenset[str]) -> int:
        log.info(
            "{client} posted message {id} as {author} (hashtags: {tags})",
            client=describe(session),
            id=tweet_id,
            author=author,
            tags=" ".join(sorted(tags)) or "none",
            category="GENERAL",
        )
        news = events.Tweet(tweet_id, author, text)
        # Followers hear of a message only once it is durable: a crash cannot take back what they saw.
        succeed(None).addCallback(lambda _: self._confirm(None)).addCallback(self._tell, news, tags, session)
        return tweet_id

    def _tell(self, _: None, news: events.Tweet, tags: frozenset[str], author: Session | None) -> None:
        for follower in self._followers_of(tags):
            if follower is not author and follower.open:
                follower.client.send_event(news)
        if author is not None:
            self.cluster.tell(TweetNews(news, tags))

    def tell_local(self, news: events.Tweet, tags: frozenset[str]) -> None:
        """Another node's tweet: this node's followers of its tags hear it."""
        self._tell(None, news, tags, None)

    def _followers_of(self, tags: frozenset[str]) -> dict[Session, None]:
        """Every session following ALL or one of ``tags``, each once."""
        audience = dict(self._followers.get(ALL, {}))
        for tag in tags:
            audience.update(self._followers.get(tag, {}))
        return audience

    def last(self) -> Deferred[Tweet | None]:
        """The most recent message, or None."""
        return deferred(self._store.last())

    def tagged(self, tag: str, limit: int) -> Deferred[list[Tweet]]:
        """Up to ``limit`` newest messages with hashtag ``tag`` (lower-case), newest first."""
        return deferred(self._store.tagged(tag, limit))

    def follow(self, session: Session, tag: str) -> bool:
        """Send ``session`` the messages with ``tag`` (or ALL); False if it already did."""
        followers = self._followers.setdefault(tag, {})
        if session in followers:
            return False
        followers[session] = None
        self._following.setdefault(session, set()).add(tag)
        return True

    def following(self, session: Session) -> int:
        """How many hashtags (counting ALL) ``session`` follows."""
        return len(self._following.get(session, ()))

    def unfollow(self, session: Session, tag: str) -> bool:
        """Stop sending ``session`` the messages with ``tag`` (or ALL); False if it did not follow it."""
        tags = self._following.get(session)
        if tags is None or tag not in tags:
            return False
        tags.discard(tag)
        if not tags:
            del self._following[session]
        followers = self._followers[tag]
        del followers[session]
        if not followers:
            del self._followers[tag]
        return True

    def unfollow_all(self, session: Session) -> int:
        """Stop every subscription of ``session``; returns how many there were."""
        tags = list(self._following.get(session, ()))
        for tag in tags:
            self.unfollow(session, tag)
        return len(tags)

    def session_closed(self, session: Session) -> None:
        """A client left: it follows nothing any more."""
        self.unfollow_all(session)
