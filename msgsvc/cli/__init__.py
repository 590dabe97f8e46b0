"""Command-line clients built on :mod:`msgsvc.client`."""
