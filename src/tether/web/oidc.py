"""People signing in through an OIDC issuer: the authorization code flow with PKCE.

OpenID Connect Core 1.0 §3.1 and Discovery 1.0, RFC 7636 (PKCE, ``S256`` only). With
``oidc_issuer``, ``oidc_client_id`` (and for a confidential client ``oidc_client_secret``)
set, :class:`OidcSignin`:

1. finds the issuer's endpoints in ``<issuer>/.well-known/openid-configuration`` (its
   ``issuer`` must be the configured one exactly; every endpoint https, or http on a
   loopback host), once, when the first person signs in;
2. :meth:`~OidcSignin.begin` keeps a new flow in the store (``dashboard_signin_flows``:
   ``state``, ``nonce``, the PKCE ``code_verifier``, where to go next, sealed under the
   flow's id as sessions are; single use, ``FLOW_TTL_S``), so the issuer's answer may come
   back to any replica, and answers the authorization URL to send the browser to;
3. :meth:`~OidcSignin.finish` takes the flow back (the flow cookie, then ``state``
   compared in constant time), trades the code and verifier for tokens at the token
   endpoint, verifies the ID token (:func:`tether.identity.verify_oidc_token`: the
   issuer's JWKS, an asymmetric ``alg`` only, exact ``iss``, ``aud`` the client id,
   ``exp``/``iat``/``nbf``), then its ``nonce`` and ``azp``, and maps the role claim to
   dashboard roles.

Every refusal is a :class:`SigninRefused` (or the identity library's
:class:`~tether.identity.IdentityProofError`) with a stable ``code`` and a message fit to
show: the sign-in fails closed. The person is ``oidc:<sub>`` with the mapped roles.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx
from sqlalchemy import Engine, delete, func, insert, select

from tether.callers import Caller, Role
from tether.config import Settings
from tether.errors import InvalidRequest, Unauthenticated
from tether.identity import (
    HttpxJwksFetcher,
    JwksFetcher,
    TrustStore,
    fetchable_url_problem,
    verify_oidc_token,
)
from tether.store.dashboard_tables import dashboard_signin_flows
from tether.web.sessions import lookup_hash, same_token, seal, unseal

DISCOVERY_PATH = "/.well-known/openid-configuration"
CALLBACK_PATH = "/signin/oidc/callback"
FLOW_TTL_S = 600.0
MAX_FLOWS = 10_000
PEOPLE_ROLES = {r.value: r for r in (Role.ADMIN, Role.AUDITOR, Role.APPROVER)}
_SHOWN = 200  # characters of an issuer's error text shown


class SigninRefused(Unauthenticated):
    code = "oidc_signin_refused"


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    role_claim: str
    roles: Mapping[str, Role]  # a value of the role claim -> the dashboard role
    scopes: str

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        """The configuration, or ``None`` when no issuer is set.

        Raises:
            InvalidRequest: an issuer without a client id, a bad URL or role map.
        """
        if not settings.oidc_issuer:
            return None
        if not settings.oidc_client_id:
            raise InvalidRequest("`oidc_issuer` is set but `oidc_client_id` is not")
        problem = fetchable_url_problem(settings.oidc_issuer)
        if problem:
            raise InvalidRequest(
                f"`oidc_issuer` `{settings.oidc_issuer}` cannot be used: {problem}"
            )
        if "openid" not in settings.oidc_scopes.split():
            raise InvalidRequest("`oidc_scopes` must include `openid`")
        return cls(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            redirect_uri=settings.public_url + CALLBACK_PATH,
            role_claim=settings.oidc_role_claim,
            roles=parse_role_map(settings.oidc_roles),
            scopes=settings.oidc_scopes,
        )


def parse_role_map(text: str) -> dict[str, Role]:
    """``value=role,value=role`` (roles: admin, auditor, approver).

    Raises:
        InvalidRequest: an entry without ``=``, an empty value, or not a people role.
    """
    mapping: dict[str, Role] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        value, sep, role = (part.strip() for part in entry.partition("="))
        if not sep or not value or role not in PEOPLE_ROLES:
            raise InvalidRequest(
                f"`oidc_roles` entry `{entry}` must be `claim-value=role`, the role one of "
                + ", ".join(sorted(PEOPLE_ROLES))
            )
        mapping[value] = PEOPLE_ROLES[role]
    if not mapping:
        raise InvalidRequest("`oidc_roles` maps no claim value to a role: nobody could sign in")
    return mapping


@dataclass(frozen=True)
class Endpoints:
    authorization: str
    token: str
    jwks_uri: str


@dataclass(frozen=True)
class Flow:
    state: str
    nonce: str
    verifier: str
    next_page: str
    expires: float


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def code_challenge(verifier: str) -> str:
    """RFC 7636 §4.2 ``S256``: BASE64URL(SHA256(verifier)), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _endpoint(document: Mapping[str, Any], name: str) -> str:
    url = document.get(name)
    if not isinstance(url, str) or not url:
        raise SigninRefused(
            f"the issuer's discovery document has no `{name}`", code="oidc_discovery_invalid"
        )
    problem = fetchable_url_problem(url)
    if problem:
        raise SigninRefused(
            f"the issuer's `{name}` cannot be used: {problem}", code="oidc_discovery_invalid"
        )
    return url


class OidcSignin:
    """The OIDC sign-in of one configured issuer (thread-safe)."""

    def __init__(
        self,
        config: OidcConfig,
        engine: Engine,
        *,
        fetcher: JwksFetcher | None = None,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._engine = engine
        self._own_fetcher: HttpxJwksFetcher | None = None
        if fetcher is None:
            fetcher = self._own_fetcher = HttpxJwksFetcher()
        self._fetcher: JwksFetcher = fetcher
        self._http = http or httpx.Client(timeout=10, follow_redirects=False)
        self._clock = clock
        self._endpoints: Endpoints | None = None
        self._trust = TrustStore(fetcher=self._fetcher)

    # --- discovery --------------------------------------------------------------------

    def endpoints(self) -> Endpoints:
        """The issuer's endpoints, discovered once.

        Raises:
            SigninRefused: the document cannot be had, or does not fit the configuration.
            JwksUnavailable: the document could not be fetched.
        """
        found = self._endpoints
        if found is not None:
            return found
        issuer = self.config.issuer
        document = self._fetcher.get_json(issuer.rstrip("/") + DISCOVERY_PATH)
        if not isinstance(document, Mapping):
            raise SigninRefused(
                "the issuer's discovery document is not an object", code="oidc_discovery_invalid"
            )
        if document.get("issuer") != issuer:
            raise SigninRefused(
                f"the discovery document names issuer `{str(document.get('issuer'))[:_SHOWN]}`, "
                f"not the configured `{issuer}`",
                code="oidc_discovery_invalid",
            )
        methods = document.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise SigninRefused(
                "the issuer does not support PKCE with S256", code="oidc_discovery_invalid"
            )
        found = Endpoints(
            _endpoint(document, "authorization_endpoint"),
            _endpoint(document, "token_endpoint"),
            _endpoint(document, "jwks_uri"),
        )
        self._trust.add_oidc_issuer(issuer, jwks_uri=found.jwks_uri, audience=self.config.client_id)
        self._endpoints = found
        return found

    # --- the flow ---------------------------------------------------------------------

    def begin(self, next_page: str) -> tuple[str, str]:
        """A new flow: its id (for the flow cookie) and the URL to send the browser to."""
        endpoints = self.endpoints()
        now = self._clock()
        flow = Flow(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(64),  # 86 characters: RFC 7636 asks 43 to 128
            next_page=next_page,
            expires=now + FLOW_TTL_S,
        )
        flow_id = secrets.token_urlsafe(32)
        self._keep(flow_id, flow, now)
        query = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_uri,
            "scope": self.config.scopes,
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": code_challenge(flow.verifier),
            "code_challenge_method": "S256",
        }
        separator = "&" if "?" in endpoints.authorization else "?"
        return flow_id, endpoints.authorization + separator + urlencode(query)

    def _keep(self, flow_id: str, flow: Flow, now: float) -> None:
        table = dashboard_signin_flows
        contents = {
            "state": flow.state,
            "nonce": flow.nonce,
            "verifier": flow.verifier,
            "next_page": flow.next_page,
        }
        with self._engine.begin() as connection:
            connection.execute(delete(table).where(table.c.expires_at <= _moment(now)))
            surplus = int(connection.execute(select(func.count()).select_from(table)).scalar_one())
            if surplus >= MAX_FLOWS:  # the oldest go first
                oldest = select(table.c.id_hash).order_by(table.c.expires_at, table.c.id_hash)
                ended = [r for (r,) in connection.execute(oldest.limit(surplus - MAX_FLOWS + 1))]
                connection.execute(delete(table).where(table.c.id_hash.in_(ended)))
            connection.execute(
                insert(table).values(
                    id_hash=lookup_hash(flow_id),
                    sealed=seal(flow_id, contents),
                    expires_at=_moment(flow.expires),
                )
            )

    def _spend(self, flow_id: str) -> Flow | None:
        """The flow ``flow_id``, taken out of the store: once, whichever replica asks."""
        if not flow_id:
            return None
        table = dashboard_signin_flows
        found = table.c.id_hash == lookup_hash(flow_id)
        with self._engine.begin() as connection:
            row = connection.execute(
                select(table.c.sealed, table.c.expires_at).where(found)
            ).first()
            if row is None or connection.execute(delete(table).where(found)).rowcount != 1:
                return None  # none, or another request spent it first
        contents = unseal(flow_id, row.sealed)
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        if contents is None or expires.timestamp() <= self._clock():
            return None
        return Flow(
            str(contents["state"]),
            str(contents["nonce"]),
            str(contents["verifier"]),
            str(contents["next_page"]),
            expires.timestamp(),
        )

    def take(self, flow_id: str, state: object) -> Flow:
        """The flow ``flow_id``, once, if ``state`` is its state.

        Raises:
            SigninRefused: no such flow (never begun here, used, or too old), or the state
                is not the flow's (a forged or crossed callback: the flow is spent too).
        """
        flow = self._spend(flow_id)
        if flow is None:
            raise SigninRefused(
                "this sign-in was not started here, was already used or took longer than "
                f"{int(FLOW_TTL_S) // 60} minutes: sign in again",
                code="oidc_flow_unknown",
            )
        if not same_token(state, flow.state):
            raise SigninRefused(
                "the issuer's answer does not carry this sign-in's `state`: sign in again",
                code="oidc_state_mismatch",
            )
        return flow

    def finish(self, flow_id: str, params: Mapping[str, str]) -> tuple[Caller, str]:
        """The person the issuer's answer proves, and the page to send them to.

        Raises:
            SigninRefused, IdentityProofError: see the module's docstring.
        """
        flow = self.take(flow_id, params.get("state"))
        if "error" in params:
            said = " ".join(
                v[:_SHOWN]
                for v in (params.get("error", ""), params.get("error_description", ""))
                if v
            )
            raise SigninRefused(
                f"the issuer refused the sign-in: {said}", code="oidc_issuer_refused"
            )
        code = params.get("code")
        if not code:
            raise SigninRefused("the issuer's answer carries no code", code="oidc_code_missing")
        id_token = self._redeem(code, flow.verifier)
        return self.person(id_token, nonce=flow.nonce), flow.next_page

    def _redeem(self, code: str, verifier: str) -> str:
        config = self.config
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": config.redirect_uri,
            "code_verifier": verifier,
            "client_id": config.client_id,
        }
        headers = {"Accept": "application/json"}
        if config.client_secret:  # client_secret_basic (RFC 6749 §2.3.1: each part encoded)
            pair = f"{quote_plus(config.client_id)}:{quote_plus(config.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        try:
            answer = self._http.post(self.endpoints().token, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise SigninRefused(
                f"the issuer's token endpoint could not be reached ({type(exc).__name__})",
                code="oidc_issuer_unreachable",
            ) from exc
        try:
            body = answer.json()
        except ValueError:
            body = None
        if answer.status_code != 200 or not isinstance(body, dict):
            error = body.get("error", "") if isinstance(body, dict) else ""
            raise SigninRefused(
                f"the issuer's token endpoint answered HTTP {answer.status_code} "
                f"{str(error)[:_SHOWN]}".rstrip(),
                code="oidc_token_refused",
            )
        id_token = body.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise SigninRefused("the issuer answered no ID token", code="oidc_token_refused")
        return id_token

    def person(self, id_token: str, *, nonce: str) -> Caller:
        """The person an ID token proves (signature, claims, ``nonce``, roles).

        Raises:
            SigninRefused, IdentityProofError.
        """
        self.endpoints()  # the issuer's keys are trusted once its endpoints are known
        verified = verify_oidc_token(id_token, self._trust, audience=self.config.client_id)
        claims = verified.claims
        if not same_token(claims.get("nonce"), nonce):
            raise SigninRefused(
                "the ID token's `nonce` is not this sign-in's (a replayed token?)",
                code="oidc_nonce_mismatch",
            )
        azp = claims.get("azp")
        if azp is not None and azp != self.config.client_id:
            raise SigninRefused(
                "the ID token was issued to another client (`azp`)", code="oidc_azp_mismatch"
            )
        roles = self.roles(claims.get(self.config.role_claim))
        attributes = {"issuer": verified.issuer, "subject": verified.subject}
        for name in ("email", "name", "preferred_username"):
            if isinstance(claims.get(name), str):
                attributes[name] = str(claims[name])[:_SHOWN]
        return Caller(f"oidc:{verified.subject}", roles, "oidc", verified.token_id, attributes)

    def roles(self, claimed: object) -> frozenset[Role]:
        values = [claimed] if isinstance(claimed, str) else claimed
        if not isinstance(values, list):
            values = []
        roles = frozenset(
            self.config.roles[v] for v in values if isinstance(v, str) and v in self.config.roles
        )
        if not roles:
            raise SigninRefused(
                f"the ID token's `{self.config.role_claim}` claim grants none of the dashboard's "
                "roles: ask for one at your identity provider",
                code="oidc_no_role",
            )
        return roles

    def close(self) -> None:
        self._http.close()
        self._trust.close()
        if self._own_fetcher is not None:
            self._own_fetcher.close()
