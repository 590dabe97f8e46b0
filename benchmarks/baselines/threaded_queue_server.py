"""The original queue server's design, kept as the benchmark's thread-per-connection reference.

As in the queue server msgsvc grew from (``shared/seeds/queue-server.md``):
``socketserver.ThreadingTCPServer`` starts one thread per connection, a
``queue.Queue`` holds the messages, and each connection carries exactly one
message. The handler reads once (up to 3000 bytes); data starting with
``<<GET>>`` asks for the oldest message (or ``Error - no messages in queue.``),
anything else is stored. The server then closes the connection.

The only change is a listen backlog of 128 instead of socketserver's 5, so the
benchmark measures the threading design rather than dropped SYNs.

Run: ``python benchmarks/baselines/threaded_queue_server.py [PORT]``; it prints
``Server started on 127.0.0.1:<port>`` once it listens (PORT 0 picks a free one).
"""

from __future__ import annotations

import queue
import socketserver
import sys

BUFFER = 3000
GET = b"<<GET>>"
EMPTY = b"Error - no messages in queue."

messages: queue.Queue[bytes] = queue.Queue()


class Handler(socketserver.BaseRequestHandler):
    """One connection: one message stored, or the oldest message sent back."""

    def handle(self) -> None:
        data = self.request.recv(BUFFER)
        if data.startswith(GET):
            try:
                self.request.sendall(messages.get_nowait())
            except queue.Empty:
                self.request.sendall(EMPTY)
        else:
            messages.put(data)


class Server(socketserver.ThreadingTCPServer):
    """A thread per connection, as in the original."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main() -> None:
    """Serve on 127.0.0.1 until interrupted."""
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 55556
    with Server(("127.0.0.1", port), Handler) as server:
        print(f"Server started on 127.0.0.1:{server.server_address[1]}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
