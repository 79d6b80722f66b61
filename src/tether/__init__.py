"""tether: runtime governance for non-human identities.

Entitlement (what the estate approves) and behaviour (what is observed) are two
separate control signals; tether decides every request with both.

``tether.Client``, ``tether.AsyncClient`` and ``tether.guarded`` are the SDK's
(``tether.sdk``), imported on first use so that ``import tether`` stays light.
"""

from typing import Any

__version__ = "0.1.0"

_SDK_NAMES = frozenset({"Client", "AsyncClient", "guarded", "ToolDenied", "ApprovalPending"})


def __getattr__(name: str) -> Any:
    if name in _SDK_NAMES:
        from tether import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module `tether` has no attribute `{name}`")
