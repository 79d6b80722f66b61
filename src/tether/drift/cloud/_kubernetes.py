"""Kubernetes API verbs x resources as access levels (Kubernetes docs, "Using RBAC Authorization").

``get`` reads, ``list`` and ``watch`` list, every other verb writes. Writes to the RBAC
objects (``roles``, ``clusterroles``, ``rolebindings``, ``clusterrolebindings``) and the
verbs RBAC singles out as privilege escalation (``escalate``, ``bind``, ``impersonate``;
"Privilege escalation prevention and bootstrapping") manage permissions, as does
approving a certificate signing request, and writing admission webhook configurations
("Role Based Access Control Good Practices", "Control admission webhooks": a webhook
reads, and a mutating one changes, every object admitted to the cluster). Reading
``secrets`` and minting ``serviceaccounts/token`` reach credentials; ``pods/exec`` runs
commands (their techniques are in ``attack.yaml``).
"""

from __future__ import annotations

from tether.drift.cloud._model import AccessLevel

PERMISSION_RESOURCES = frozenset(
    {
        "roles",
        "clusterroles",
        "rolebindings",
        "clusterrolebindings",
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    }
)
ESCALATING_VERBS = frozenset({"escalate", "bind", "impersonate", "approve"})
SOURCE = "kubernetes-rbac"


def split_action(action: str) -> tuple[str, str]:
    """(verb, resource[/subresource]) of ``k8s:VERB RESOURCE``."""
    verb, _, resource = action.removeprefix("k8s:").partition(" ")
    return verb.lower(), resource.lower()


def access_level(action: str) -> tuple[AccessLevel, str]:
    verb, resource = split_action(action)
    base = resource.split("/", 1)[0]
    if verb in ESCALATING_VERBS or resource == "certificatesigningrequests/approval":
        return AccessLevel.PERMISSIONS_MANAGEMENT, SOURCE
    if verb == "get":
        return AccessLevel.READ, SOURCE
    if verb in ("list", "watch"):
        return AccessLevel.LIST, SOURCE
    if not verb or verb == "unknown":
        return AccessLevel.UNKNOWN, "default"
    if base in PERMISSION_RESOURCES:
        return AccessLevel.PERMISSIONS_MANAGEMENT, SOURCE
    return AccessLevel.WRITE, SOURCE
