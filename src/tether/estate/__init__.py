"""Estate as code: load, validate, compile and apply an estate folder.

An estate folder holds ``*.yaml`` files (classes, trust, data classes, resources,
identities with their entitlements, exceptions), ``*.cedar`` policies anywhere under it
and optionally ``schema.cedarschema``. ``tether apply DIR`` is::

    estate = load_estate(DIR)          # parse + validate; EstateInvalid lists every problem
    compiled = compile_estate(estate)  # entitlements -> Cedar permits, schema validation
    apply_estate(engine, DIR)          # both of the above, then one transaction on the store

Every problem names its file and line (``tether.errors.EstateProblem``).
"""

from tether.estate._apply import ApplyResult, Change, apply_estate
from tether.estate._compile import compile_estate, entitlement_text
from tether.estate._fields import parse_duration
from tether.estate._load import load_estate
from tether.estate._model import (
    CLASS_MODES,
    IDENTITY_KINDS,
    DeclaredResource,
    Entitlement,
    Estate,
    EstateException,
    Identity,
    PolicyFile,
    SensitivityRule,
    TrustAnchor,
    Where,
    WorkloadClass,
)
from tether.estate._patterns import ResourcePattern, glob_regex, parse_pattern
from tether.estate.compiled import CompiledEstate, ResourceClassifier, ResourceRule

__all__ = [
    "CLASS_MODES",
    "IDENTITY_KINDS",
    "ApplyResult",
    "Change",
    "CompiledEstate",
    "DeclaredResource",
    "Entitlement",
    "Estate",
    "EstateException",
    "Identity",
    "PolicyFile",
    "ResourceClassifier",
    "ResourcePattern",
    "ResourceRule",
    "SensitivityRule",
    "TrustAnchor",
    "Where",
    "WorkloadClass",
    "apply_estate",
    "compile_estate",
    "entitlement_text",
    "glob_regex",
    "load_estate",
    "parse_duration",
    "parse_pattern",
]
