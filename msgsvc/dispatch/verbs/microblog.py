# -*- test-case-name: tests.test_microblog,tests.test_microblog_follow -*-
"""Microblog verbs: TWEET, LAST, TAGGED, FOLLOW, UNFOLLOW."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from msgsvc.dispatch.commands import Arg, CommandSet, Text
from msgsvc.domain.errors import DomainError, InvalidRequest, TooLong
from msgsvc.domain.microblog import ALL, MAX_CHARACTERS, describe, hashtag
from msgsvc.domain.text import one_line
from msgsvc.protocol.wire import Data, Ok, listing
from msgsvc.store.interfaces import Tweet

if TYPE_CHECKING:
    from msgsvc.domain.broker import Broker
    from msgsvc.domain.session import Session

log = Logger()

commands = CommandSet("microblog", "messages of at most 150 characters, hashtags, follow events")

EMPTY = "Empty Message"
"""What LAST says when nothing was posted, or the last message was empty (as the original did)."""
TAGGED_DEFAULT = 20
TAGGED_MAX = 1000
MAX_FOLLOWS = 1000
"""Hashtags one client may follow at once."""

TAG = Arg("tag", hashtag, label="#tag")


def tagged_count(text: str) -> int:
    """How many messages TAGGED lists: 1 to TAGGED_MAX."""
    if not (text.isdigit() and 1 <= int(text) <= TAGGED_MAX):
        raise ValueError(f"k must be a whole number from 1 to {TAGGED_MAX}")
    return int(text)


def _refused(session: Session, error: DomainError, why: str) -> DomainError:
    """``error``, once the refused TWEET is logged in the ERROR category (like the original's rule violations)."""
    log.warn("{client} tweet refused: {why}", client=describe(session), why=why, category="ERROR")
    return error


@commands.verb(
    "TWEET", Text("text"), summary=f"post a message of at most {MAX_CHARACTERS} characters", errors=("too-long",)
)
def tweet(broker: Broker, session: Session, text: bytes) -> Deferred[Ok]:
    try:
        message = one_line(text)
    except ValueError as error:
        raise _refused(session, InvalidRequest(f"a message {error}"), str(error)) from None
    if len(message) > MAX_CHARACTERS:
        raise _refused(session, TooLong(f"message exceeds {MAX_CHARACTERS} characters"), f"{len(message)} characters")
    return broker.microblog.post(session, message).addCallback(lambda tweet_id: Ok(f"{tweet_id} posted"))


@commands.verb("LAST", summary=f"the last message posted ('{EMPTY}' if none, or if it was empty)", errors=())
def last(broker: Broker, session: Session) -> Deferred[Data]:
    return broker.microblog.last().addCallback(_last)


def _last(tweet: Tweet | None) -> Data:
    text = tweet.text if tweet is not None and tweet.text else EMPTY
    return Data(text.encode(), "last")


@commands.verb(
    "TAGGED",
    TAG,
    Arg("k", tagged_count, optional=True, default=TAGGED_DEFAULT),
    summary=f"the k (default {TAGGED_DEFAULT}) newest messages with a hashtag",
    errors=(),
)
def tagged(broker: Broker, session: Session, tag: str, k: int) -> Deferred[Data]:
    return broker.microblog.tagged(tag, k).addCallback(
        lambda tweets: Data(listing([f"{t.id} {t.author} {t.text}" for t in tweets]), "tagged")
    )


@commands.verb(
    "FOLLOW",
    TAG,
    summary="get '* TWEET' events for new messages with a hashtag (#ALL: every message)",
    remembers_client=True,
    errors=("full",),
)
def follow(broker: Broker, session: Session, tag: str) -> Ok:
    microblog = broker.microblog
    if microblog.following(session) >= MAX_FOLLOWS:
        raise InvalidRequest(f"a client may follow at most {MAX_FOLLOWS} hashtags")
    microblog.follow(session, tag)
    return Ok("following all messages" if tag == ALL else f"following #{tag}")


@commands.verb("UNFOLLOW", TAG, summary="stop following a hashtag; #ALL stops following anything", errors=())
def unfollow(broker: Broker, session: Session, tag: str) -> Ok:
    microblog = broker.microblog
    if tag == ALL:
        microblog.unfollow_all(session)
        return Ok("following nothing")
    if microblog.unfollow(session, tag):
        return Ok(f"unfollowed #{tag}")
    return Ok(f"not following #{tag}")
