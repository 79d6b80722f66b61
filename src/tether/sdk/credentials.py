"""How a PEP proves itself to tether (README "Who may call tether").

* :class:`ApiKey`: a PEP API key (``tether pep add``), sent as ``Authorization: Bearer``;
* :class:`BearerToken`: the PEP's own JWT-SVID (or OIDC token), as ``Authorization:
  Bearer``; give a callable to have a fresh SVID read for every request (they rotate);
* :class:`ClientCertificate`: an X.509-SVID presented over mTLS (no header).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A PEP API key ``tpk_<key id>_<secret>``."""

    key: str = field(repr=False)

    def authorization(self) -> str | None:
        return f"Bearer {self.key}"


@dataclass(frozen=True, slots=True)
class BearerToken:
    """A JWT-SVID or OIDC token, or a callable that returns the current one."""

    token: str | Callable[[], str] = field(repr=False)

    def current(self) -> str:
        """The token to send now."""
        return self.token() if callable(self.token) else self.token

    def authorization(self) -> str | None:
        return f"Bearer {self.current()}"


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """An X.509-SVID and its key (PEM files) for mTLS; ``ca_file`` verifies tether's
    server certificate (default: the system's trust store)."""

    cert_file: Path | str
    key_file: Path | str
    ca_file: Path | str | None = None

    def authorization(self) -> str | None:
        return None

    def ssl_context(self) -> ssl.SSLContext:
        """A TLS context presenting the certificate.

        Raises:
            OSError, ssl.SSLError: a file is missing or not PEM.
        """
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context


Credential = ApiKey | BearerToken | ClientCertificate
"""What a :class:`~tether.sdk.Client` authenticates with."""
