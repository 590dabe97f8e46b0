"""What the broker knows of a client: somewhere to push events, something to close."""

from __future__ import annotations

from zope.interface import Attribute, Interface

from msgsvc.domain.events import Event


class IClient(Interface):
    """A connected client as the broker sees it, whatever its transport."""

    transport_name = Attribute("The front end's name, as STATUS and WHO show it ('tcp', 'tls', 'udp').")
    peer = Attribute("The client's (host, port).")

    def send_event(event: Event) -> None:
        """Tell the client of an event; its front end encodes it."""

    def close(reason: str) -> None:
        """Say ``* BYE <reason>`` and end the connection or UDP session."""
