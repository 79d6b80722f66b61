"""SPIFFE IDs and trust domain names, validated as SPIFFE-ID.md §2 requires.

A SPIFFE ID is ``spiffe://<trust domain><path>``: the scheme is exactly
``spiffe`` (lowercase, as go-spiffe and py-spiffe require); the trust domain
is 1 to 255 bytes of ``[a-z0-9._-]`` (no userinfo, port or percent-encoding);
the path is empty or ``/``-separated segments of ``[a-zA-Z0-9._-]`` with no
empty, ``.`` or ``..`` segment and no trailing ``/``; no query or fragment;
2048 bytes at most in all. Values are validated once, at construction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tether.identity.errors import SpiffeIdInvalid, shown

SCHEME_PREFIX = "spiffe://"
MAX_SPIFFE_ID_BYTES = 2048
MAX_TRUST_DOMAIN_BYTES = 255

# `\Z`, not `$`: `$` would also match before a trailing newline.
_TRUST_DOMAIN = re.compile(r"[a-z0-9._\-]+\Z")
_SEGMENT = re.compile(r"[a-zA-Z0-9._\-]+\Z")


def _trust_domain_problem(name: str) -> str | None:
    if not name:
        return "the trust domain is empty"
    if len(name) > MAX_TRUST_DOMAIN_BYTES:
        return f"the trust domain is longer than {MAX_TRUST_DOMAIN_BYTES} bytes"
    if _TRUST_DOMAIN.match(name):
        return None
    if name.startswith("["):
        return "the trust domain must not be an IPv6 address"
    if "@" in name:
        return "the trust domain must not carry userinfo (`@`)"
    if ":" in name:
        return "the trust domain must not carry a port (`:`)"
    if "%" in name:
        return "the trust domain must not be percent-encoded"
    if any("A" <= c <= "Z" for c in name):
        return "the trust domain must be lowercase"
    return "the trust domain may only hold `a-z`, `0-9`, `.`, `-` and `_`"


def _path_problem(path: str) -> str | None:
    if not path:
        return None
    if not path.startswith("/"):
        return "the path must start with `/`"
    for segment in path[1:].split("/"):
        if segment == "":
            return (
                "the path must not end with `/`"
                if path.endswith("/")
                else "the path must not hold an empty segment (`//`)"
            )
        if segment in (".", ".."):
            return "the path must not hold `.` or `..` segments"
        if not _SEGMENT.match(segment):
            if "%" in segment:
                return "the path must not be percent-encoded"
            return "path segments may only hold `a-z`, `A-Z`, `0-9`, `.`, `-` and `_`"
    return None


def _split(text: str) -> tuple[str, str]:
    """Split ``spiffe://domain/path`` into domain and path, refusing what is no SPIFFE ID."""
    if not isinstance(text, str):
        raise SpiffeIdInvalid(f"a SPIFFE ID must be a string, not {type(text).__name__}")
    if not text:
        raise SpiffeIdInvalid("a SPIFFE ID must not be empty")
    if len(text) > MAX_SPIFFE_ID_BYTES or len(text.encode("utf-8")) > MAX_SPIFFE_ID_BYTES:
        raise SpiffeIdInvalid(
            f"{shown(text)} is not a SPIFFE ID: longer than {MAX_SPIFFE_ID_BYTES} bytes"
        )
    if not text.startswith(SCHEME_PREFIX):
        why = (
            "the scheme must be lowercase `spiffe`"
            if text.lower().startswith(SCHEME_PREFIX)
            else "it must start with `spiffe://`"
        )
        raise SpiffeIdInvalid(f"{shown(text)} is not a SPIFFE ID: {why}")
    rest = text[len(SCHEME_PREFIX) :]
    for mark, part in (("?", "query"), ("#", "fragment")):
        if mark in rest:
            raise SpiffeIdInvalid(f"{shown(text)} is not a SPIFFE ID: it must not have a {part}")
    domain, slash, path = rest.partition("/")
    return domain, slash + path


@dataclass(frozen=True, order=True)
class TrustDomain:
    """A SPIFFE trust domain name such as ``example.org`` (SPIFFE-ID.md §2.1)."""

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise SpiffeIdInvalid(
                f"a trust domain must be a string, not {type(self.name).__name__}"
            )
        problem = _trust_domain_problem(self.name)
        if problem:
            raise SpiffeIdInvalid(f"{shown(self.name)} is not a trust domain name: {problem}")

    @classmethod
    def parse(cls, text: str) -> TrustDomain:
        """Read ``example.org`` or the trust domain's own ID ``spiffe://example.org``.

        Raises:
            SpiffeIdInvalid: the text is neither.
        """
        if isinstance(text, str) and text.startswith(SCHEME_PREFIX):
            domain, path = _split(text)
            if path:
                raise SpiffeIdInvalid(
                    f"{shown(text)} is not a trust domain ID: it must not have a path"
                )
            return cls(domain)
        return cls(text)

    @property
    def id(self) -> SpiffeId:
        """The SPIFFE ID of the trust domain itself (no path)."""
        return SpiffeId(self, "")

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, order=True)
class SpiffeId:
    """A SPIFFE ID (SPIFFE-ID.md §2), e.g. ``spiffe://example.org/agents/billing-bot``."""

    trust_domain: TrustDomain
    path: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.trust_domain, TrustDomain):
            raise SpiffeIdInvalid("a SPIFFE ID needs a `TrustDomain`")
        if not isinstance(self.path, str):
            raise SpiffeIdInvalid(
                f"a SPIFFE ID path must be a string, not {type(self.path).__name__}"
            )
        problem = _path_problem(self.path)
        if problem:
            raise SpiffeIdInvalid(f"{shown(str(self))} is not a SPIFFE ID: {problem}")
        if len(str(self)) > MAX_SPIFFE_ID_BYTES:
            raise SpiffeIdInvalid(
                f"{shown(str(self))} is not a SPIFFE ID: longer than {MAX_SPIFFE_ID_BYTES} bytes"
            )

    @classmethod
    def parse(cls, text: str) -> SpiffeId:
        """Parse and validate a SPIFFE ID.

        Raises:
            SpiffeIdInvalid: the text breaks a rule of SPIFFE-ID.md §2; the message says which.
        """
        domain, path = _split(text)
        problem = _trust_domain_problem(domain)
        if problem:
            raise SpiffeIdInvalid(f"{shown(text)} is not a SPIFFE ID: {problem}")
        return cls(TrustDomain(domain), path)

    def member_of(self, trust_domain: TrustDomain) -> bool:
        """Whether this ID belongs to ``trust_domain``."""
        return self.trust_domain == trust_domain

    def __str__(self) -> str:
        return f"{SCHEME_PREFIX}{self.trust_domain.name}{self.path}"
