"""The command-line arguments the interactive clients share: which transport they talk over."""

from __future__ import annotations

import argparse


def add_transport_arguments(parser: argparse.ArgumentParser) -> None:
    """``--udp``, ``--tls`` and ``--cafile``, for the interactive clients."""
    parser.add_argument("--udp", action="store_true", help="talk over UDP instead of TCP")
    parser.add_argument("--tls", action="store_true", help="talk over TLS, verifying the server's certificate")
    parser.add_argument(
        "--cafile", metavar="FILE", help="with --tls: trust the CA certificates in FILE (PEM), not the system's"
    )


def transport_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """'TCP', 'UDP' or 'TLS', as the arguments of :func:`add_transport_arguments` ask; a usage error if they clash."""
    if args.tls and args.udp:
        parser.error("--tls works over TCP, not with --udp")
    if args.cafile is not None and not args.tls:
        parser.error("--cafile goes with --tls")
    return "TLS" if args.tls else "UDP" if args.udp else "TCP"
