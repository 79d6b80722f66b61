"""Errors of telemetry ingest and principal resolution: caller mistakes only.

A bad line in an input file is not an exception: adapters yield an
:class:`~tether.telemetry.model.IngestError` for it and carry on. These are for
mistakes that stop ingest before it starts::

    InvalidRequest
    ├── SourceUnreadable        ingest_source_unreadable   the file cannot be opened
    ├── FieldMappingInvalid     field_mapping_invalid      a generic JSONL mapping is wrong
    └── PrincipalRuleInvalid    principal_rule_invalid     a principal rule cannot match anything
"""

from __future__ import annotations

from tether.errors import InvalidRequest


class SourceUnreadable(InvalidRequest):
    """An input file that does not exist or cannot be read."""

    code = "ingest_source_unreadable"


class FieldMappingInvalid(InvalidRequest):
    """A field mapping for generic JSON lines that names unknown fields or lacks required ones."""

    code = "field_mapping_invalid"


class PrincipalRuleInvalid(InvalidRequest):
    """A principal rule whose pattern is malformed for its kind of match."""

    code = "principal_rule_invalid"
