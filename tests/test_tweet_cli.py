"""The msgsvc-tweet CLI against a real server on a free port."""

from __future__ import annotations

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.helpers import make_broker, run_cli, serve_for_test


class TweetCliTests(TestCase):
    """``msgsvc-tweet`` against a real server on a free port."""

    def setUp(self) -> None:
        self.broker = make_broker(reactor)
        self.port = str(serve_for_test(self, self.broker))

    async def tweet(self, *args: str) -> tuple[str, str, int]:
        out, err, code = await run_cli("msgsvc.cli.tweet", *args)
        return out.decode(), err.decode(), code

    async def test_upload_then_download(self) -> None:
        """-u posts the message and says Transmission Successful; -d prints it back."""
        out, err, code = await self.tweet("-u", "127.0.0.1", self.port, "h\u00e9llo #World")
        self.assertEqual((out, err, code), ("Transmission Successful: message 1 posted\n", "", 0))
        out, err, code = await self.tweet("-d", "127.0.0.1", self.port)
        self.assertEqual((out, err, code), ("Received Message: h\u00e9llo #World\n", "", 0))

    async def test_download_empty(self) -> None:
        """-d with nothing posted prints Empty Message."""
        out, _, code = await self.tweet("-d", "127.0.0.1", self.port)
        self.assertEqual((out, code), ("Received Message: Empty Message\n", 0))

    async def test_over_udp(self) -> None:
        """--udp posts and reads over UDP."""
        out, _, code = await self.tweet("--udp", "-u", "127.0.0.1", self.port, " spaced ")
        self.assertEqual((out, code), ("Transmission Successful: message 1 posted\n", 0))
        self.assertEqual(self.successResultOf(self.broker.microblog.last()).text, " spaced ")

    async def test_too_long_refused(self) -> None:
        """A message over 150 characters gets a one-line error, exit status 1, and nothing stored."""
        out, err, code = await self.tweet("-u", "127.0.0.1", self.port, "\u00e9" * 151)
        self.assertEqual(
            (out, err, code), ("", "msgsvc-tweet: server refused: too-long: message exceeds 150 characters\n", 1)
        )
        self.assertIsNone(self.successResultOf(self.broker.microblog.last()))

    async def test_unreachable(self) -> None:
        """A server that cannot be reached gives a one-line error and exit status 1."""
        from twisted.internet.protocol import Factory

        closed = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        port = str(closed.getHost().port)
        await closed.stopListening()
        out, err, code = await self.tweet("-d", "127.0.0.1", port)
        self.assertEqual((out, code), ("", 1))
        self.assertEqual(err, f"msgsvc-tweet: cannot reach 127.0.0.1:{port} over TCP: connection refused\n")

    async def test_usage(self) -> None:
        """-u without a message is a usage error (exit status 2)."""
        out, err, code = await self.tweet("-u", "127.0.0.1", self.port)
        self.assertEqual((out, code), ("", 2))
        self.assertIn("-u takes a", err)
