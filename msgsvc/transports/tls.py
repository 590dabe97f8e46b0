# -*- test-case-name: tests.test_tls -*-
"""TLS for the ``ssl:`` listeners: a certificate from PEM files, read again on SIGHUP.

Each new connection is made with the context loaded last; a reload builds a new
one, so connections already open keep the certificate they began with and
nobody is dropped. A reload that fails logs why and keeps the certificate in use.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from cryptography import x509
from OpenSSL import SSL, crypto
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator, IReactorFromThreads
from twisted.internet.ssl import CertificateOptions
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer

log = Logger()


def load_options(private_key: str, cert_key: str) -> CertificateOptions:
    """TLS options from PEM files: the private key, and the certificate followed by its chain (``fullchain.pem``).

    ``cert_key`` may be the key's own file (key and certificate in one). Raises
    ValueError with a one-line reason when a file cannot be read or used.
    """
    try:
        with open(private_key, "rb") as file:
            key_pem = file.read()
        with open(cert_key, "rb") as file:
            cert_pem = file.read()
    except OSError as error:
        raise ValueError(f"cannot read {error.filename}: {error.strerror}") from None
    try:
        key = crypto.load_privatekey(crypto.FILETYPE_PEM, key_pem)
    except crypto.Error:
        raise ValueError(f"{private_key} holds no PEM private key") from None
    try:
        chain = [crypto.X509.from_cryptography(each) for each in x509.load_pem_x509_certificates(cert_pem)]
    except ValueError:
        raise ValueError(f"{cert_key} holds no PEM certificate") from None
    options = CertificateOptions(privateKey=key, certificate=chain[0], extraCertChain=chain[1:])
    try:
        options.getContext()  # made now, once: it checks that the key is the certificate's
    except SSL.Error:
        raise ValueError(f"{private_key} is not the private key of the certificate in {cert_key}") from None
    return options


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableCertificate:
    """The TLS side of one ``ssl:`` listener: each new connection gets the certificate loaded last."""

    def __init__(self, private_key: str, cert_key: str) -> None:
        """Load the files now; ValueError with the reason if they cannot be used."""
        self.private_key = private_key
        self.cert_key = cert_key
        self._options = load_options(private_key, cert_key)

    def serverConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        """A TLS connection with the current certificate (Twisted calls this once per new client)."""
        return self._options.serverConnectionForTLS(tlsProtocol)

    def reload(self) -> bool:
        """Read the files again for new connections; on failure log why and keep the old certificate."""
        try:
            self._options = load_options(self.private_key, self.cert_key)
        except ValueError as error:
            log.error(
                "cannot reload the TLS certificate {cert}: {reason}; still using the one loaded before",
                cert=self.cert_key,
                reason=str(error),
                category="ERROR",
            )
            return False
        log.info("reloaded the TLS certificate {cert} for new connections", cert=self.cert_key, category="GENERAL")
        return True


SignalHandler = Callable[[int, FrameType | None], Any] | int | None
"""What ``signal.signal`` takes and gives back."""


class HangupReload:
    """While installed, SIGHUP reloads the certificates in the reactor thread; ``restore`` puts the old handler back."""

    def __init__(self, reactor: IReactorFromThreads, certificates: Sequence[ReloadableCertificate]) -> None:
        self.reactor = reactor
        self.certificates = list(certificates)
        self._previous: SignalHandler = None

    def install(self) -> None:
        """Handle SIGHUP from now on."""
        self._previous = signal.signal(signal.SIGHUP, self._received)

    def restore(self) -> None:
        """Give SIGHUP back to whoever handled it before."""
        signal.signal(signal.SIGHUP, self._previous if self._previous is not None else signal.SIG_DFL)

    def _received(self, signum: int, frame: FrameType | None) -> None:
        self.reactor.callFromThread(self.reload)

    def reload(self) -> None:
        """Reload every certificate (each keeps its old one if it fails)."""
        for certificate in self.certificates:
            certificate.reload()
