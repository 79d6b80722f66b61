"""Who calls tether, how they prove it, and what each role may do.

The roles (``Role``) and the per-route declaration (``tether.api.routing``) are the
contract every HTTP route follows: deny by default, every route names its roles.
"""

from tether.callers.roles import PUBLIC, Caller, Role

__all__ = ["PUBLIC", "Caller", "Role"]
