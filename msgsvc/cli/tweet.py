"""``msgsvc-tweet -u HOST PORT "message"`` / ``msgsvc-tweet -d HOST PORT``: the microblog's client.

Upload posts a message (at most 150 characters; the server decides) and prints
``Transmission Successful``; download prints ``Received Message: <message>``,
the last message posted (``Empty Message`` when there is none). Errors are one
line on stderr and exit status 1; Ctrl-C ends it at once with status 130 (see
:mod:`msgsvc.cli.common`).
"""

from __future__ import annotations

import argparse
import os
import sys

from twisted.internet.interfaces import IReactorTime

from msgsvc.cli.common import TIMEOUT, connect, run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: -u with a message, or -d without one."""
    parser = argparse.ArgumentParser(
        prog="msgsvc-tweet",
        description="Post a message of at most 150 characters to the msgsvc microblog, or read the last one.",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("-u", "--upload", action="store_true", help="post MESSAGE")
    mode.add_argument("-d", "--download", action="store_true", help="print the last message posted")
    parser.add_argument("host", help="server host, e.g. 127.0.0.1")
    parser.add_argument("port", type=int, help="server port, e.g. 55556")
    parser.add_argument("message", nargs="?", help='with -u: the message (quote it: "hello #world")')
    parser.add_argument("--udp", action="store_true", help="talk to the server over UDP instead of TCP")
    args = parser.parse_args(argv)
    if args.upload != (args.message is not None):
        parser.error('-u takes a "message"; -d takes none')
    return args


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``msgsvc-tweet``."""
    args = parse_args(argv)
    transport = "UDP" if args.udp else "TCP"

    async def body(reactor: IReactorTime) -> None:
        client = await connect(reactor, args.host, args.port, transport)
        if args.upload:
            # The message's exact bytes (as the shell passed them) go as a literal.
            reply = await client.command("TWEET", payload=os.fsencode(args.message)).addTimeout(TIMEOUT, reactor)
            message_id = reply.text.split(" ", 1)[0]
            print(f"Transmission Successful: message {message_id} posted")
        else:
            reply = await client.command("LAST").addTimeout(TIMEOUT, reactor)
            sys.stdout.buffer.write(b"Received Message: " + reply.payload + b"\n")
            sys.stdout.buffer.flush()

    run("msgsvc-tweet", body, args.host, args.port, transport)


if __name__ == "__main__":
    main()
