"""Reader of the estate section ``organisation``: what is the organisation's own.

Drift detection weighs a destination inside the organisation less than one outside it
(:mod:`tether.drift.provenance`)::

    organisation:
      domains: [example.org, example.com]         # addresses and hosts at these, subdomains too
      accounts: [DE89370400440532013000]          # bank accounts, cloud accounts
      workspaces: [acme-slack, general]           # chat workspaces and channels
"""

from __future__ import annotations

import re

from tether.estate._fields import Fields, expect_map
from tether.estate._sections import LoadContext
from tether.estate._yaml import Node
from tether.estate.compiled import Organisation

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_MAX_ITEM = 200


def read_organisation(node: Node, ctx: LoadContext) -> None:
    if not expect_map(node, ctx.problems, "`organisation`"):
        return
    fields = Fields(
        node, ctx.problems, what="`organisation`", optional=["domains", "accounts", "workspaces"]
    )
    found: dict[str, list[str]] = {}
    for key in ("domains", "accounts", "workspaces"):
        values: list[str] = []
        for value, item in fields.strings(key):
            text = value.strip()
            if key == "domains":
                text = text.lower().rstrip(".")
                if not _DOMAIN.match(text):
                    ctx.problems.add(item, f"`{value}` in `organisation.domains` is not a domain")
                    fields.ok = False
                    continue
            elif not text or len(text) > _MAX_ITEM:
                ctx.problems.add(
                    item, f"items of `organisation.{key}` must be 1 to {_MAX_ITEM} characters"
                )
                fields.ok = False
                continue
            values.append(text)
        found[key] = values
    if fields.ok:
        previous = ctx.organisation
        ctx.organisation = Organisation(
            previous.domains + tuple(found["domains"]),
            previous.accounts + tuple(found["accounts"]),
            previous.workspaces + tuple(found["workspaces"]),
        )
