"""Errors of drift detection (stable codes; HTTP and exit codes mapped by their parents)::

TetherError
├── InvalidRequest
│   ├── DetectorUnavailable   an enabled detector's module is missing or malformed
│   └── ExceptionInvalid      a drift exception with bad fields (owner, expiry, pattern...)
└── NotFound
    └── ExceptionNotFound     no drift exception with that id
"""

from __future__ import annotations

from tether.errors import InvalidRequest, NotFound


class DetectorUnavailable(InvalidRequest):
    code = "drift_detector_unavailable"


class ExceptionInvalid(InvalidRequest):
    code = "drift_exception_invalid"


class ExceptionNotFound(NotFound):
    code = "drift_exception_not_found"
