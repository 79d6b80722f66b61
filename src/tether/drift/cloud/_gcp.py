"""Google Cloud audit method names as access levels (Cloud IAM permission verbs, API design guide).

A method's last component carries its verb (``google.iam.admin.v1.CreateServiceAccountKey``,
``v1.compute.instances.insert``, ``SetIamPolicy``). ``setIamPolicy`` and
``setIamPermissions`` manage permissions (IAM "Understanding roles": ``*.setIamPolicy``
permissions), ``Get``/``List``/``TestIamPermissions`` read (Google API design guide,
"Standard methods"), other standard and custom verbs write. GKE's Kubernetes calls
(``io.k8s.core.v1.pods.create``) are read as Kubernetes verbs on their resource.
"""

from __future__ import annotations

import re

from tether.drift.cloud import _kubernetes
from tether.drift.cloud._model import AccessLevel

SOURCE = "gcp-method"
_VERSION = re.compile(r"^v\d+[a-z0-9]*$")
# A method's leading API version: `v1.compute...`, `beta.compute...`, `alpha.compute...`.
_LEADING_VERSION = re.compile(r"^(v\d+[a-z0-9]*|beta|alpha)$")
_PERMISSION_VERBS = ("setiampolicy", "setiampermissions")
_LIST_VERBS = ("list", "aggregatedlist", "search")
_READ_VERBS = ("get", "testiampermissions", "read", "lookup", "batchget")


def k8s_action(method: str) -> str | None:
    """``k8s:VERB RESOURCE[/SUB]`` of a GKE method (``io.k8s.core.v1.pods.exec.create``)."""
    if not method.startswith("io.k8s."):
        return None
    parts = method.split(".")
    versions = [i for i, p in enumerate(parts) if _VERSION.match(p)]
    if not versions or len(parts) < versions[0] + 3:
        return None
    names = parts[versions[0] + 1 :]
    verb, resource = names[-1], "/".join(names[:-1])
    return f"k8s:{verb} {resource}"


def method_names(method: str) -> tuple[str, ...]:
    """Spellings of ``method`` the technique table is keyed by (lowercased)."""
    lowered = method.lower()
    parts = [p for p in lowered.split(".") if p]
    if parts and _LEADING_VERSION.match(parts[0]):
        parts = parts[1:]
    names = [lowered, ".".join(parts)]
    if parts:
        names.append(parts[-1])
    return tuple(dict.fromkeys(names))


def access_level(method: str) -> tuple[AccessLevel, str]:
    kubernetes = k8s_action(method)
    if kubernetes is not None:
        return _kubernetes.access_level(kubernetes)
    verb = method.rsplit(".", 1)[-1].lower()
    if not verb or verb == "unknown":
        return AccessLevel.UNKNOWN, "default"
    if verb.startswith(_PERMISSION_VERBS):
        return AccessLevel.PERMISSIONS_MANAGEMENT, SOURCE
    if verb.startswith(_LIST_VERBS):
        return AccessLevel.LIST, SOURCE
    if verb.startswith(_READ_VERBS):
        return AccessLevel.READ, SOURCE
    return AccessLevel.WRITE, SOURCE
