"""Framework references of drift findings: OWASP Top 10 for Agentic Applications, NIST CSF 2.0.

Every finding carries where it sits in the frameworks reviewers work with: the OWASP
agentic risks it indicates (ASI01 goal hijack, ASI02 tool misuse, ASI03 identity and
privilege abuse, ASI10 rogue agents), the NIST CSF 2.0 subcategories of the control
that caught it (PR.AA-05 access permissions enforced, DE.CM-01/03/09 monitoring,
DE.AE-02 adverse events analysed) and the NIST AI RMF function (MANAGE).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

_DETECT = ("DE.CM-01", "DE.AE-02")

_BY_DETECTOR: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "out_of_entitlement": {"owasp_asi": ("ASI03",), "nist_csf": ("PR.AA-05", *_DETECT)},
    "out_of_intent": {"owasp_asi": ("ASI01", "ASI02"), "nist_csf": ("PR.AA-05", *_DETECT)},
    "scope_widening": {"owasp_asi": ("ASI03",), "nist_csf": ("PR.AA-05", *_DETECT)},
    "novel_access": {"owasp_asi": ("ASI03", "ASI10"), "nist_csf": ("DE.CM-03", *_DETECT)},
    "tool_chain": {"owasp_asi": ("ASI02", "ASI01"), "nist_csf": ("DE.CM-09", *_DETECT)},
    "volume_anomaly": {"owasp_asi": ("ASI10",), "nist_csf": ("DE.CM-09", *_DETECT)},
    "environment_change": {"owasp_asi": ("ASI03",), "nist_csf": ("DE.CM-01", "DE.AE-02")},
    "static_credential_use": {"owasp_asi": ("ASI03",), "nist_csf": ("PR.AA-01", "PR.AA-05")},
}
_COMMON = {"nist_ai_rmf": ("MANAGE",)}


def frameworks_for(detector: str) -> Mapping[str, tuple[str, ...]]:
    """The framework references of a finding raised by ``detector``."""
    refs = dict(_BY_DETECTOR.get(detector, {"nist_csf": _DETECT}))
    refs.update(_COMMON)
    return MappingProxyType(refs)
