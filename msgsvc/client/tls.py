# -*- test-case-name: tests.test_tls -*-
"""TLS for clients: the server's certificate checked against a CA file or the system's trust store, and its name."""

from __future__ import annotations

from cryptography import x509
from OpenSSL import SSL, crypto
from service_identity import VerificationError
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.internet.ssl import Certificate, optionsForClientTLS, trustRootFromCertificates
from twisted.python.failure import Failure


class TlsFailure(ConnectionError):
    """The TLS handshake failed: the server's certificate is not trusted, or not for the host asked for."""


def client_tls(host: str, cafile: str | None = None) -> IOpenSSLClientConnectionCreator:
    """TLS that verifies the server is ``host`` (a name or an IP address), with a certificate issued by a CA
    of ``cafile`` (PEM, one or more certificates) or, without one, of the system's trust store.

    Raises ValueError with a one-line reason when ``cafile`` cannot be read or holds no certificate.
    """
    if cafile is None:
        return optionsForClientTLS(host)
    try:
        with open(cafile, "rb") as file:
            pem = file.read()
    except OSError as error:
        raise ValueError(f"cannot read --cafile {cafile}: {error.strerror}") from None
    try:
        authorities = [
            Certificate(crypto.X509.from_cryptography(each)) for each in x509.load_pem_x509_certificates(pem)
        ]
    except ValueError:
        raise ValueError(f"--cafile {cafile} holds no PEM certificate") from None
    return optionsForClientTLS(host, trustRoot=trustRootFromCertificates(authorities))


def tls_failure(reason: Failure) -> TlsFailure | None:
    """Why a connection lost during the TLS handshake failed, as a TlsFailure; None if TLS was not the cause."""
    error = reason.value
    if isinstance(error, VerificationError):
        return TlsFailure("TLS handshake failed: the server's certificate is for another host name")
    if isinstance(error, SSL.Error):
        details = [part[-1] for part in error.args[0] if isinstance(part, tuple) and part] if error.args else []
        return TlsFailure(f"TLS handshake failed: {'; '.join(str(d) for d in details if d) or error}")
    return None
