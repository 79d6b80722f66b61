"""Framework references: which OWASP ASI, CSA MAESTRO, NIST AI RMF and NIST CSF 2.0 ids a
finding type or review row type maps to (the data is ``frameworks.yaml`` beside this module).

Every finding and every report row carries the references of its type::

    catalog = load_frameworks()
    catalog.references("out_of_entitlement")
    # {"owasp-asi": ("ASI03", "ASI10"), "maestro": ("L6",), ...}

The file is validated once when loaded: every framework has its ids with names of the
right shape (``ASI01``..``ASI10``, ``L1``..``L7``, ``MEASURE 2.7``, ``PR.AA-05``), every type
maps to at least one id of every framework, and every id it names is declared.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml

from tether.errors import InvalidRequest, TetherError

FRAMEWORKS = ("owasp-asi", "maestro", "nist-ai-rmf", "nist-csf")

# The row column each framework's references go in (a Python- and CSV-friendly name).
COLUMNS: Mapping[str, str] = MappingProxyType({f: f.replace("-", "_") for f in FRAMEWORKS})

ID_SHAPES: Mapping[str, re.Pattern[str]] = MappingProxyType(
    {
        "owasp-asi": re.compile(r"^ASI(0[1-9]|10)$"),
        "maestro": re.compile(r"^L[1-7]$"),
        "nist-ai-rmf": re.compile(r"^(GOVERN|MAP|MEASURE|MANAGE) [1-6]\.[1-9][0-9]?$"),
        "nist-csf": re.compile(r"^(GV|ID|PR|DE|RS|RC)\.[A-Z]{2}-[0-9]{2}$"),
    }
)
TYPE_KINDS = ("finding", "review")


class FrameworksInvalid(TetherError):
    """``frameworks.yaml`` (or a file given instead) is not a valid framework mapping."""

    code = "frameworks_invalid"


class UnknownFramework(InvalidRequest):
    """A framework key that is not one of :data:`FRAMEWORKS`."""


@dataclass(frozen=True)
class Framework:
    """One framework: its key, title and the name of every id it declares."""

    key: str
    title: str
    ids: Mapping[str, str]


@dataclass(frozen=True)
class FrameworkCatalog:
    """The validated mapping: frameworks and, per type, the ids of each framework."""

    frameworks: Mapping[str, Framework]
    types: Mapping[str, Mapping[str, tuple[str, ...]]]
    kinds: Mapping[str, str]  # type -> finding | review

    def references(self, type_name: str) -> Mapping[str, tuple[str, ...]]:
        """The ids ``type_name`` maps to, per framework (empty for an unknown type)."""
        return self.types.get(type_name, _NO_REFERENCES)

    def columns(self, type_name: str) -> dict[str, str]:
        """The references as row columns: ``{"owasp_asi": "ASI03, ASI10", ...}``."""
        refs = self.references(type_name)
        return {COLUMNS[f]: ", ".join(refs.get(f, ())) for f in FRAMEWORKS}

    def name_of(self, framework: str, ref: str) -> str:
        return self.frameworks[framework].ids.get(ref, "")

    def framework(self, key: str) -> Framework:
        try:
            return self.frameworks[key]
        except KeyError:
            raise UnknownFramework(
                f"unknown framework `{key}`; use one of {', '.join(FRAMEWORKS)}"
            ) from None


_NO_REFERENCES: Mapping[str, tuple[str, ...]] = MappingProxyType(dict.fromkeys(FRAMEWORKS, ()))


@functools.cache
def load_frameworks() -> FrameworkCatalog:
    """The catalog shipped with tether (read and validated once)."""
    text = resources.files("tether").joinpath("frameworks.yaml").read_text("utf-8")
    return parse_frameworks(text)


def parse_frameworks(text: str) -> FrameworkCatalog:
    """Parse and validate a framework mapping.

    Raises:
        FrameworksInvalid: listing every problem found.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FrameworksInvalid(f"frameworks file is not YAML: {exc}") from None
    problems: list[str] = []
    if not isinstance(data, dict) or set(data) != {"frameworks", "types"}:
        raise FrameworksInvalid("frameworks file must have exactly `frameworks` and `types`")
    frameworks = _frameworks(data["frameworks"], problems)
    types, kinds = _types(data["types"], frameworks, problems)
    if problems:
        raise FrameworksInvalid("invalid framework mapping: " + "; ".join(problems))
    return FrameworkCatalog(MappingProxyType(frameworks), MappingProxyType(types), kinds)


def _frameworks(raw: Any, problems: list[str]) -> dict[str, Framework]:
    found: dict[str, Framework] = {}
    if not isinstance(raw, dict):
        problems.append("`frameworks` must be a mapping")
        return found
    for key in FRAMEWORKS:
        entry = raw.get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("ids"), dict):
            problems.append(f"framework `{key}` needs `title` and `ids`")
            continue
        ids: dict[str, str] = {}
        for ref, name in entry["ids"].items():
            if not isinstance(ref, str) or not ID_SHAPES[key].match(ref):
                problems.append(f"framework `{key}`: id `{ref}` has the wrong shape")
            elif not isinstance(name, str) or not name.strip():
                problems.append(f"framework `{key}`: id `{ref}` needs a name")
            else:
                ids[ref] = name
        found[key] = Framework(key, str(entry.get("title", key)), MappingProxyType(ids))
    for extra in sorted(set(raw) - set(FRAMEWORKS)):
        problems.append(f"unknown framework `{extra}`")
    return found


def _types(
    raw: Any, frameworks: Mapping[str, Framework], problems: list[str]
) -> tuple[dict[str, Mapping[str, tuple[str, ...]]], Mapping[str, str]]:
    types: dict[str, Mapping[str, tuple[str, ...]]] = {}
    kinds: dict[str, str] = {}
    if not isinstance(raw, dict):
        problems.append("`types` must be a mapping")
        return types, kinds
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            problems.append(f"type `{name}` must be a mapping")
            continue
        unknown = set(entry) - {"kind", *FRAMEWORKS}
        if unknown:
            problems.append(f"type `{name}`: unknown key(s) {sorted(unknown)}")
        if entry.get("kind") not in TYPE_KINDS:
            problems.append(f"type `{name}`: `kind` must be one of {', '.join(TYPE_KINDS)}")
        refs: dict[str, tuple[str, ...]] = {}
        for key in FRAMEWORKS:
            values = entry.get(key)
            if not isinstance(values, list) or not values:
                problems.append(f"type `{name}` maps to no `{key}` id")
                continue
            declared = frameworks[key].ids if key in frameworks else {}
            for ref in values:
                if ref not in declared:
                    problems.append(f"type `{name}`: `{key}` id `{ref}` is not declared")
            refs[key] = tuple(str(v) for v in values)
        types[str(name)] = MappingProxyType(refs)
        kinds[str(name)] = str(entry.get("kind"))
    return types, MappingProxyType(kinds)
