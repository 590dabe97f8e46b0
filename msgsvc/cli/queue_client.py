"""``msgsvc-client HOST PORT TCP|UDP send FILE|receive``: the queue from the command line.

Exit status 0 when the message was sent or received; 1 with one line on standard error
otherwise (an empty queue prints the original's ``Error - no messages in queue.``);
130 after Ctrl-C, which ends it at once (see :mod:`msgsvc.cli.common`).
"""

from __future__ import annotations

import argparse
import sys

from twisted.internet.interfaces import IReactorTime

from msgsvc.cli.common import CliError, connect, run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with TCP/UDP and send/receive accepted in any case."""
    parser = argparse.ArgumentParser(
        prog="msgsvc-client",
        description="Send a file's bytes to the msgsvc queue, or receive the oldest message.",
    )
    parser.add_argument("host", help="server host, e.g. 127.0.0.1")
    parser.add_argument("port", type=int, help="server port, e.g. 55556")
    parser.add_argument("transport", type=str.upper, choices=["TCP", "UDP"], help="TCP or UDP")
    parser.add_argument("mode", type=str.lower, choices=["send", "receive"], help="send or receive")
    parser.add_argument("file", nargs="?", help="with send: the file whose bytes are the message")
    parser.add_argument("--queue", default="default", help="queue name (default: %(default)s)")
    args = parser.parse_args(argv)
    if (args.mode == "send") != (args.file is not None):
        parser.error("send takes a FILE; receive takes none")
    return args


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``msgsvc-client``."""
    args = parse_args(argv)

    async def body(reactor: IReactorTime) -> None:
        if args.mode == "send":
            try:
                with open(args.file, "rb") as source:
                    message = source.read()
            except OSError as error:
                raise CliError(f"cannot read {args.file}: {error.strerror}") from None
        client = await connect(reactor, args.host, args.port, args.transport)
        if args.mode == "send":
            await client.command("SEND", f"@{args.queue}", payload=message)
            print(f"Sent: {len(message)} bytes")
        else:
            reply = await client.command("RECV", f"@{args.queue}")
            sys.stdout.write("Received:\n")
            sys.stdout.flush()
            sys.stdout.buffer.write(reply.payload)
            sys.stdout.buffer.flush()

    run("msgsvc-client", body, args.host, args.port, args.transport)


if __name__ == "__main__":
    main()
