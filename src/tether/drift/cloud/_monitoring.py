"""CIS benchmark monitoring controls of cloud actions, read from ``monitoring.yaml``.

The CIS AWS Foundations Benchmark (section 4, "Monitoring"; 4.1-4.14 are AWS Security
Hub's controls CloudWatch.1-14) and the CIS Google Cloud Platform Foundation Benchmark (section 2,
"Logging and Monitoring") each ask for a metric filter and an alarm on every change of a
kind (IAM policies, trails, Config, security groups, NACLs, gateways, route tables, VPCs,
Organizations; custom roles, firewall rules, routes, networks, bucket IAM, Cloud SQL
configuration). The table beside this module lists the actions their filters name; see
its header for what is left out and why. Read once, on first use.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import yaml

from tether.drift.cloud._index import ActionIndex


@dataclass(frozen=True, slots=True)
class Control:
    """One benchmark recommendation: id (``CIS AWS 4.4``) and what it watches."""

    id: str
    name: str


@functools.cache
def control_table() -> ActionIndex[Control]:
    """The controls of ``monitoring.yaml`` by action, loaded once."""
    text = resources.files(__package__).joinpath("monitoring.yaml").read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    return ActionIndex.of(
        (Control(str(control_id), str(entry["name"])), list(entry.get("actions") or ()))
        for control_id, entry in document["controls"].items()
    )
