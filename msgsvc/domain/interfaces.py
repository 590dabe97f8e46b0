"""What the broker knows of a client: somewhere to push events, something to close."""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IClient(Interface):
    """A connected client as the broker sees it, whatever its transport."""

    transport_name = Attribute("'tcp' or 'udp'.")
    peer = Attribute("The client's (host, port).")
    max_payload = Attribute("Largest payload one reply may carry, or None for no limit.")

    def send_event(line: bytes) -> None:
        """Push an event line (``* ...`` with its CRLF) to the client."""

    def close(reason: str) -> None:
        """Say ``* BYE <reason>`` and end the connection or UDP session."""
