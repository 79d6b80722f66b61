"""The default tool catalog: what an agent's tool does to data, read from its name.

Chain and intent detection need to know whether a tool only reads (``read``), reads
something sensitive (``source``: secrets, files, messages, account data), changes state
inside (``mutate``) or moves data or value out of the identity's control (``sink``:
e-mail, payment, post, share, invite, booking, any request to an external URL), and
which of its arguments name the *target* of that effect (a recipient, an IBAN, a URL,
a channel...).

:class:`DefaultToolCatalog` answers from the tool's name alone, so it works for any
agent without configuration: the leading verb (``send_email`` -> ``send``), then the
nouns (``schedule_transaction`` writes a payment, ``get_webpage`` reaches the web).
An estate declares its own agents' tools by passing overrides::

    catalog = DefaultToolCatalog.from_mapping(
        {"notify_vendor": {"role": "sink", "targets": ["vendor_id"]}}
    )

The rules are generic: they name verbs, nouns and argument names, never a task, an
agent, or an identifier seen in some trace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from tether.drift.model import ToolInfo, ToolRole

#: Argument names that say where an effect lands, most telling first.
TARGET_ARGUMENTS: tuple[str, ...] = (
    "recipient",
    "recipients",
    "to",
    "cc",
    "bcc",
    "iban",
    "account",
    "payee",
    "beneficiary",
    "email",
    "user_email",
    "emails",
    "url",
    "uri",
    "endpoint",
    "webhook",
    "host",
    "domain",
    "destination",
    "participants",
    "channel",
    "user",
    "username",
    "phone",
    "target",
)

#: Verbs whose effect leaves the identity's control (data or value goes out).
SINK_VERBS = frozenset(
    {
        "send",
        "post",
        "share",
        "invite",
        "transfer",
        "pay",
        "wire",
        "reserve",
        "book",
        "publish",
        "upload",
        "forward",
        "reply",
        "email",
        "mail",
        "message",
        "notify",
        "submit",
        "export",
        "tweet",
        "broadcast",
        "purchase",
        "buy",
        "order",
        "withdraw",
        "deposit",
    }
)
#: Verbs that change state inside the identity's reach.
MUTATE_VERBS = frozenset(
    {
        "update",
        "create",
        "delete",
        "add",
        "remove",
        "set",
        "cancel",
        "reschedule",
        "schedule",
        "append",
        "edit",
        "write",
        "put",
        "patch",
        "modify",
        "rename",
        "move",
        "insert",
        "grant",
        "revoke",
        "change",
        "reset",
        "register",
        "assign",
        "enable",
        "disable",
        "approve",
        "archive",
        "drop",
        "kick",
        "ban",
    }
)
#: Nouns of value: any change to one (a scheduled payment, a transfer) moves value out.
VALUE_NOUNS = frozenset(
    {"money", "payment", "payments", "transaction", "transactions", "transfer", "funds", "wire"}
)
#: Nouns of the open web: a request to an arbitrary URL is an egress channel.
WEB_NOUNS = frozenset({"webpage", "website", "url", "http", "https", "web", "browse", "internet"})
#: Nouns of data worth protecting: reading one is a sensitive source.
SENSITIVE_NOUNS = frozenset(
    {
        "password",
        "passwords",
        "secret",
        "secrets",
        "key",
        "keys",
        "token",
        "tokens",
        "credential",
        "credentials",
        "file",
        "files",
        "document",
        "documents",
        "inbox",
        "email",
        "emails",
        "mail",
        "message",
        "messages",
        "iban",
        "balance",
        "transaction",
        "transactions",
        "account",
        "contact",
        "contacts",
        "user",
        "users",
        "profile",
        "history",
        "drive",
    }
)
_ROLE_NAMES = {role.value: role for role in ToolRole}
_WORD = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def words_of(tool: str) -> list[str]:
    """The lowercase words of a tool name (``sendEmail``, ``send-email``, ``mail.send``)."""
    return _WORD.findall(_CAMEL.sub("_", tool).lower())


def classify(tool: str) -> ToolRole:
    """The role of ``tool`` from its name (see the module docstring)."""
    words = words_of(tool)
    if not words:
        return ToolRole.READ
    verb, nouns = words[0], set(words[1:])
    if verb in SINK_VERBS:
        return ToolRole.SINK
    if WEB_NOUNS & set(words):
        return ToolRole.SINK
    if verb in MUTATE_VERBS:
        return ToolRole.SINK if VALUE_NOUNS & nouns else ToolRole.MUTATE
    if SENSITIVE_NOUNS & set(words):
        return ToolRole.SOURCE
    return ToolRole.READ


class DefaultToolCatalog:
    """Classifies tools by name; ``overrides`` (tool -> :class:`ToolInfo`) take precedence."""

    def __init__(
        self,
        overrides: Mapping[str, ToolInfo] | None = None,
        *,
        target_arguments: Iterable[str] = TARGET_ARGUMENTS,
    ) -> None:
        self._overrides = MappingProxyType(dict(overrides or {}))
        self._targets = tuple(target_arguments)
        self._cache: dict[str, ToolInfo] = {}

    @classmethod
    def from_mapping(cls, declared: Mapping[str, Any]) -> DefaultToolCatalog:
        """A catalog from declared tools: ``{tool: {"role": ..., "targets": [...]}}``.

        Raises:
            ValueError: a role that is not one of ``read``, ``source``, ``mutate``, ``sink``,
                or targets that are not a list of names.
        """
        overrides: dict[str, ToolInfo] = {}
        for tool, spec in declared.items():
            if not isinstance(spec, Mapping):
                raise ValueError(f"tool `{tool}` must map to `{{role, targets}}`")
            role_name = spec.get("role", classify(tool).value)
            role = _ROLE_NAMES.get(str(role_name))
            if role is None:
                known = ", ".join(_ROLE_NAMES)
                raise ValueError(
                    f"tool `{tool}` has an unknown role `{role_name}` (known: {known})"
                )
            targets = spec.get("targets", TARGET_ARGUMENTS)
            if not isinstance(targets, list | tuple) or not all(
                isinstance(t, str) and t for t in targets
            ):
                raise ValueError(f"tool `{tool}`: `targets` must be a list of argument names")
            overrides[str(tool)] = ToolInfo(role, tuple(targets))
        return cls(overrides)

    def info(self, tool: str) -> ToolInfo:
        hit = self._overrides.get(tool) or self._cache.get(tool)
        if hit is None:
            hit = ToolInfo(classify(tool), self._targets)
            if len(self._cache) < 10_000:
                self._cache[tool] = hit
        return hit


def estate_catalog(tools: Mapping[str, Any]) -> DefaultToolCatalog:
    """The catalog of an estate's ``tools:`` section (tool -> ``ToolMapping``): a tool
    whose mapping names destinations sends to them (a sink), and exactly those arguments
    are its targets; every other tool is classified by name."""
    overrides: dict[str, ToolInfo] = {}
    for name, mapping in tools.items():
        named = tuple(getattr(mapping, "destinations", None) or ())
        if named:
            overrides[str(name)] = ToolInfo(ToolRole.SINK, named)
    return DefaultToolCatalog(overrides)


def target_values(info: ToolInfo, arguments: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(argument, value)`` for each target argument present in a call, lists flattened."""
    found: list[tuple[str, str]] = []
    if not arguments or info.target_names.isdisjoint(arguments):
        return found  # most calls: no target argument at all
    for name in info.target_arguments:
        value = arguments.get(name)
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if isinstance(item, str | int | float) and not isinstance(item, bool):
                text = str(item).strip()
                if text:
                    found.append((name, text))
    return found


def normalise_target(value: str) -> str:
    """A target value as compared with intent: case, scheme, ``www.``, trailing ``/`` dropped."""
    text = value.strip().lower()
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    if text.startswith("www."):
        text = text[4:]
    return text.rstrip("/")


__all__ = [
    "TARGET_ARGUMENTS",
    "DefaultToolCatalog",
    "classify",
    "estate_catalog",
    "normalise_target",
    "target_values",
    "words_of",
]
