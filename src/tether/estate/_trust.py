"""Reader of the ``trust`` section: who may prove workload identity.

A SPIFFE entry names a trust domain (SPIFFE-ID.md §2.1) and its JWKS bundle file; an
OIDC entry names an issuer, its JWKS (a file or a URI) and the audience its tokens must
carry. The JWKS document of a ``jwks_file`` is stored with the anchor so that every
replica can verify proofs without the estate files; verifying is ``tether.identity``'s work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tether.estate._fields import Fields, expect_list, expect_map, where
from tether.estate._model import TrustAnchor
from tether.estate._sections import MAX_PATTERN, LoadContext
from tether.estate._spiffe import spiffe_id_problem
from tether.estate._yaml import Node

_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def read_trust(node: Node, ctx: LoadContext) -> None:
    for entry in expect_list(node, ctx.problems, "`trust`"):
        if not expect_map(entry, ctx.problems, "a `trust` entry"):
            continue
        if "spiffe" in entry.value:
            _read_spiffe_trust(entry, ctx)
        elif "oidc_issuer" in entry.value:
            _read_oidc_trust(entry, ctx)
        else:
            ctx.problems.add(entry, "a `trust` entry needs `spiffe` or `oidc_issuer`")


def _read_spiffe_trust(entry: Node, ctx: LoadContext) -> None:
    fields = Fields(
        entry,
        ctx.problems,
        what="a SPIFFE trust entry",
        required=["spiffe", "jwks_file"],
        optional=["audience", "require_kid"],
    )
    name = fields.string("spiffe", max_length=MAX_PATTERN)
    if name is not None:
        problem = spiffe_id_problem(name, trust_domain_only=True)
        if problem:
            fields.fail("spiffe", f"`{name}` is not a SPIFFE trust domain ID: {problem}")
    settings = _trust_settings(fields, ctx, "spiffe")
    if fields.ok and name is not None and ctx.claim("trust anchor", name, where(entry)):
        ctx.trust[name] = TrustAnchor(name, "spiffe", settings, where(entry))


def _read_oidc_trust(entry: Node, ctx: LoadContext) -> None:
    fields = Fields(
        entry,
        ctx.problems,
        what="an OIDC trust entry",
        required=["oidc_issuer", "audience"],
        optional=["jwks_file", "jwks_uri", "require_kid"],
    )
    name = fields.string("oidc_issuer", max_length=MAX_PATTERN)
    if name is not None:
        _check_url(fields, "oidc_issuer", name)
    if fields.has("jwks_file") == fields.has("jwks_uri"):
        ctx.problems.add(entry, "an OIDC trust entry needs exactly one of `jwks_file`, `jwks_uri`")
        fields.ok = False
    uri = fields.string("jwks_uri")
    if uri is not None:
        _check_url(fields, "jwks_uri", uri)
    settings = _trust_settings(fields, ctx, "oidc_issuer")
    if fields.ok and name is not None and ctx.claim("trust anchor", name, where(entry)):
        ctx.trust[name] = TrustAnchor(name, "oidc", settings, where(entry))


def _trust_settings(fields: Fields, ctx: LoadContext, name_key: str) -> dict[str, Any]:
    settings: dict[str, Any] = {name_key: fields.string(name_key)}
    for key in ("audience", "jwks_uri"):
        value = fields.string(key)
        if value is not None:
            settings[key] = value
    require_kid = fields.boolean("require_kid")
    if require_kid is not None:
        settings["require_kid"] = require_kid
    jwks_file = fields.string("jwks_file")
    if jwks_file is not None:
        settings["jwks_file"] = jwks_file
        jwks = _read_jwks(fields, ctx.directory / jwks_file, jwks_file)
        if jwks is not None:
            # Stored with the anchor so every replica can verify without the estate files.
            settings["jwks"] = jwks
    return settings


def _read_jwks(fields: Fields, path: Path, shown: str) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        fields.fail("jwks_file", f"jwks file `{shown}` does not exist")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        fields.fail("jwks_file", f"cannot read jwks file `{shown}`: {exc}")
        return None
    except ValueError as exc:
        fields.fail("jwks_file", f"jwks file `{shown}` is not JSON: {exc}")
        return None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        fields.fail("jwks_file", f"jwks file `{shown}` must be a JSON object with a `keys` list")
        return None
    return document


def _check_url(fields: Fields, key: str, url: str) -> None:
    parts = urlsplit(url)
    local = parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS
    if not (parts.scheme == "https" or local) or not parts.hostname:
        fields.fail(key, f"`{key}` must be an `https://` URL, not `{url}`")
