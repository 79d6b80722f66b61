"""AuthZEN Authorization API 1.0 request parsing (§5-§8), strict where the spec is.

Required members missing or of the wrong type are 400s naming the member; unknown
members are ignored (forward compatibility, §5.6 of the certification scenario).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.errors import FieldError, InvalidRequest
from tether.policy import DecisionRequest, EntityRef


class RequestInvalid(InvalidRequest):
    """A malformed AuthZEN request; ``field_errors`` says where."""

    code = "authzen_request_invalid"

    def __init__(self, field_errors: list[FieldError]) -> None:
        self.field_errors = field_errors
        super().__init__(describe(field_errors))


def describe(field_errors: list[FieldError]) -> str:
    """One line naming each offending member (an error about the whole body names none)."""
    return "; ".join(str(e) if e.path else e.message for e in field_errors)


def _object(
    body: Mapping[str, Any], key: str, path: str, errors: list[FieldError]
) -> Mapping[str, Any] | None:
    value = body.get(key)
    if value is None:
        errors.append(FieldError(f"{path}{key}", "is required"))
        return None
    if not isinstance(value, dict):
        errors.append(FieldError(f"{path}{key}", f"must be an object, not {_kind(value)}"))
        return None
    return value


def _string(obj: Mapping[str, Any], key: str, path: str, errors: list[FieldError]) -> str | None:
    value = obj.get(key)
    if value is None:
        errors.append(FieldError(f"{path}.{key}", "is required"))
        return None
    if not isinstance(value, str):
        errors.append(FieldError(f"{path}.{key}", f"must be a string, not {_kind(value)}"))
        return None
    if not value:
        errors.append(FieldError(f"{path}.{key}", "must not be empty"))
        return None
    return value


def _properties(obj: Mapping[str, Any], path: str, errors: list[FieldError]) -> Mapping[str, Any]:
    value = obj.get("properties")
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(FieldError(f"{path}.properties", f"must be an object, not {_kind(value)}"))
        return {}
    return value


def _kind(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), "null")


def require_object_body(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise RequestInvalid(
            [FieldError("", f"request body must be a JSON object, not {_kind(body)}")]
        )
    return body


def parse_context(
    body: Mapping[str, Any], errors: list[FieldError], path: str = ""
) -> Mapping[str, Any]:
    value = body.get("context")
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(FieldError(f"{path}context", f"must be an object, not {_kind(value)}"))
        return {}
    return value


def parse_entity(
    body: Mapping[str, Any],
    key: str,
    errors: list[FieldError],
    *,
    path: str = "",
    need_id: bool = True,
) -> tuple[str | None, str | None, Mapping[str, Any]]:
    obj = _object(body, key, path, errors)
    if obj is None:
        return None, None, {}
    where = f"{path}{key}"
    etype = _string(obj, "type", where, errors)
    if need_id:
        eid = _string(obj, "id", where, errors)
    else:
        raw = obj.get("id")
        eid = raw if isinstance(raw, str) and raw else None
    return etype, eid, _properties(obj, where, errors)


def parse_action(
    body: Mapping[str, Any], errors: list[FieldError], *, path: str = ""
) -> tuple[str | None, Mapping[str, Any]]:
    obj = _object(body, "action", path, errors)
    if obj is None:
        return None, {}
    where = f"{path}action"
    return _string(obj, "name", where, errors), _properties(obj, where, errors)


def parse_evaluation(body: Mapping[str, Any], *, path: str = "") -> DecisionRequest:
    """Parse an Access Evaluation request (§6.1) or raise :class:`RequestInvalid`."""
    request = _well_formed(body)
    return request if request is not None else _parse_naming_errors(body, path)


def _parse_naming_errors(body: Mapping[str, Any], path: str) -> DecisionRequest:
    errors: list[FieldError] = []
    stype, sid, sprops = parse_entity(body, "subject", errors, path=path)
    action, aprops = parse_action(body, errors, path=path)
    rtype, rid, rprops = parse_entity(body, "resource", errors, path=path)
    context = parse_context(body, errors, path)
    if errors or stype is None or sid is None or action is None or rtype is None or rid is None:
        raise RequestInvalid(errors)
    return DecisionRequest(
        subject=EntityRef(stype, sid),
        action=action,
        resource=EntityRef(rtype, rid),
        context=context,
        subject_properties=sprops,
        resource_properties=rprops,
        action_properties=aprops,
    )


def _well_formed(body: Mapping[str, Any]) -> DecisionRequest | None:
    """The request of a body whose members are all present and of their JSON type, as
    parsing JSON makes them (plain ``dict`` and ``str``), else ``None``: the same request
    :func:`parse_evaluation` builds, without the member paths its error messages need
    (the request every PEP sends, on every decision)."""
    subject, action, resource = body.get("subject"), body.get("action"), body.get("resource")
    if type(subject) is not dict or type(action) is not dict or type(resource) is not dict:
        return None
    stype, sid, name = subject.get("type"), subject.get("id"), action.get("name")
    rtype, rid = resource.get("type"), resource.get("id")
    if not (
        type(stype) is str
        and stype
        and type(sid) is str
        and sid
        and type(name) is str
        and name
        and type(rtype) is str
        and rtype
        and type(rid) is str
        and rid
    ):
        return None
    # Absent (or null) is a new empty object, as the full parser makes it.
    sprops = subject.get("properties")
    sprops = {} if sprops is None else sprops
    rprops = resource.get("properties")
    rprops = {} if rprops is None else rprops
    aprops = action.get("properties")
    aprops = {} if aprops is None else aprops
    context = body.get("context")
    context = {} if context is None else context
    if (
        type(sprops) is not dict
        or type(rprops) is not dict
        or type(aprops) is not dict
        or type(context) is not dict
    ):
        return None
    return DecisionRequest(
        EntityRef(stype, sid), name, EntityRef(rtype, rid), context, sprops, rprops, aprops
    )


SEMANTICS = ("execute_all", "deny_on_first_deny", "permit_on_first_permit")


def parse_semantic(body: Mapping[str, Any]) -> str:
    options = body.get("options")
    if options is None:
        return "execute_all"
    if not isinstance(options, dict):
        raise RequestInvalid([FieldError("options", f"must be an object, not {_kind(options)}")])
    semantic = options.get("evaluations_semantic", "execute_all")
    if semantic not in SEMANTICS:
        raise RequestInvalid(
            [FieldError("options.evaluations_semantic", f"must be one of {', '.join(SEMANTICS)}")]
        )
    return str(semantic)


def require_object_defaults(body: Mapping[str, Any]) -> None:
    """Top-level defaults of an evaluations request (§7.1.1) that are present must be objects.

    A default of the wrong JSON type is a fault of the whole payload (400), not of one
    item; an incomplete default object (``"resource": {}``) is left for the items that
    inherit it to report, since items that override it never use it.
    """
    errors = [
        FieldError(key, f"must be an object, not {_kind(body[key])}")
        for key in ("subject", "action", "resource", "context")
        if body.get(key) is not None and not isinstance(body[key], dict)
    ]
    if errors:
        raise RequestInvalid(errors)


def merge_item(defaults: Mapping[str, Any], item: Mapping[str, Any]) -> dict[str, Any]:
    """An evaluation item inherits whole top-level members it omits (§7.1)."""
    merged = {k: defaults[k] for k in ("subject", "action", "resource", "context") if k in defaults}
    for key in ("subject", "action", "resource", "context"):
        if key in item:
            merged[key] = item[key]
    return merged
