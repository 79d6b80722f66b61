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

**System identities** (:func:`system_identity`): the ``system:`` prefix of user names is
"reserved for Kubernetes system use" (RBAC, "Referring to subjects"). Nodes authenticate
as ``system:node:<nodeName>`` ("Using Node Authorization"), the control plane's
components as ``system:kube-scheduler``, ``system:kube-controller-manager`` and
``system:kube-proxy`` ("Core component roles"), and the controller manager's controllers
as service accounts of ``kube-system`` ("Controller roles"), the namespace "for objects
created by the Kubernetes system" ("Namespaces"), where the cluster's add-ons (DNS,
metrics, storage drivers) run too. They all run on the cluster's nodes. Service
accounts of other namespaces are an application's, whose tokens CI systems and other
outside callers are routinely given, and ``system:anonymous`` / ``system:unauthenticated``
name no identity at all ("Anonymous requests").
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
_SYSTEM = "system:"
_SERVICE_ACCOUNT = "system:serviceaccount:"
_KUBE_SYSTEM_ACCOUNT = "system:serviceaccount:kube-system:"
_NOBODY = frozenset({"system:anonymous", "system:unauthenticated"})


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


def system_identity(username: str | None) -> str | None:
    """What Kubernetes system identity ``username`` is (``a node``), or None (not one)."""
    if not username or not username.startswith(_SYSTEM) or username in _NOBODY:
        return None
    if username.startswith(_KUBE_SYSTEM_ACCOUNT):
        return "a kube-system service account"
    if username.startswith(_SERVICE_ACCOUNT):
        return None
    if username.startswith("system:node:"):
        return "a node"
    return "a control-plane identity"
