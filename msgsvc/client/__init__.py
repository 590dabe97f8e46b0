"""The msgsvc client library, used by the CLIs, the tests and your programs.

>>> client = await connect_tcp(reactor, "127.0.0.1", 55556)
>>> reply = await client.command("SEND", payload=b"hello")
"""

from msgsvc.client.replies import Event, ProtocolViolation, Reply, ReplyParser, ServerError
from msgsvc.client.requests import encode_command
from msgsvc.client.tcp import TcpClient, connect_tcp
from msgsvc.client.tls import TlsFailure, client_tls
from msgsvc.client.udp import TransferFailed, UdpClient, connect_udp

__all__ = [
    "Event",
    "ProtocolViolation",
    "Reply",
    "ReplyParser",
    "ServerError",
    "TcpClient",
    "TlsFailure",
    "TransferFailed",
    "UdpClient",
    "client_tls",
    "connect_tcp",
    "connect_udp",
    "encode_command",
]
