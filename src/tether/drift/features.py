"""Behaviour features drift compares: IP prefix, user agent family, hour of day, transitions.

Environment values are reduced to what is stable for one workload: an IPv4 address to
its /24, an IPv6 address to its /64, a user agent to its product family (``aws-cli``,
``boto3``, ``python-httpx``...), a time to its UTC hour.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime

from tether.drift.model import Observation

_VERSION = re.compile(r"^v\d+[a-z0-9]*$")
_UA_TOKEN = re.compile(r"^\s*([A-Za-z][A-Za-z0-9._+-]*)")


def ip_prefix(address: str | None) -> str | None:
    """The /24 (IPv4) or /64 (IPv6) network of ``address``; ``None`` when not an address."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return None
    bits = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def user_agent_family(user_agent: str | None) -> str | None:
    """The product token of a user agent, lowercased (``aws-cli/2.13 Python/3.11``: ``aws-cli``)."""
    if not user_agent:
        return None
    match = _UA_TOKEN.match(user_agent)
    return match.group(1).lower() if match else None


def hour_of(at: datetime) -> str:
    """The UTC hour of ``at`` as a string (baseline values are strings)."""
    return str(at.hour if at.tzinfo is None else at.astimezone(UTC).hour)


def tool_of(obs: Observation) -> str:
    """The tool an observation is a call of (its tool name, else its action)."""
    return obs.tool_name or obs.action


#: Event sources whose actions are ``service:Name`` cloud calls (the service is learned).
SERVICE_SOURCES = frozenset({"cloudtrail", "k8s-audit", "gcp-audit"})


def service_of(obs: Observation) -> str | None:
    """The cloud service of a cloud call (``iam`` of ``iam:CreateAccessKey``, ``k8s``,
    ``compute`` of ``v1.compute.instances.insert``), else ``None``."""
    if obs.source not in SERVICE_SOURCES:
        return None
    prefix, colon, _ = obs.action.partition(":")
    if colon:
        return prefix.lower()
    parts = [p.lower() for p in obs.action.split(".") if p and not _VERSION.match(p)]
    if len(parts) < 2:
        return None
    return parts[1] if parts[0] in ("google", "io") else parts[0]


def environment_features(obs: Observation) -> dict[str, str]:
    """The environment dimensions of ``obs`` that are known: ip_prefix, region, user_agent, hour."""
    out = {"hour": hour_of(obs.at)}
    prefix = ip_prefix(obs.environment.source_ip)
    if prefix:
        out["ip_prefix"] = prefix
    if obs.environment.region:
        out["region"] = obs.environment.region
    family = user_agent_family(obs.environment.user_agent)
    if family:
        out["user_agent"] = family
    return out
