"""The AuthZEN certification fixture (certification-scenario.md §C.1) as request parts.

Entities and requests are copied from the scenario text, so each test reads like the
section it checks.
"""

from __future__ import annotations

from typing import Any

ALICE = {"type": "user", "id": "alice"}
BOB = {"type": "user", "id": "bob"}
BOB_ADMIN = {"type": "user", "id": "bob", "properties": {"role": "admin"}}
READ = {"name": "read"}
WRITE = {"name": "write"}
DELETE = {"name": "delete"}
SOFT_DELETE = {"name": "delete", "properties": {"soft": True}}
HARD_DELETE = {"name": "delete", "properties": {"soft": False}}
RECORD_1 = {"type": "record", "id": "record-1"}
RECORD_1_ACTIVE = {"type": "record", "id": "record-1", "properties": {"status": "active"}}
RECORD_2 = {"type": "record", "id": "record-2"}
RECORD_2_ARCHIVED = {"type": "record", "id": "record-2", "properties": {"status": "archived"}}
CONTEXT = {"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"}


def request(
    subject: dict[str, Any], action: dict[str, Any], resource: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {"subject": subject, "action": action, "resource": resource, **extra}


# §C.1.4: the only decision values the certification harness validates.
RULES: dict[str, tuple[dict[str, Any], bool]] = {
    "rule1-alice-read-record-1": (request(ALICE, READ, RECORD_1), True),
    "rule2-alice-write-record-1": (request(ALICE, WRITE, RECORD_1), True),
    "rule3-bob-read-record-1": (request(BOB, READ, RECORD_1), True),
    "rule4-bob-write-record-1": (request(BOB, WRITE, RECORD_1), False),
    "rule5-alice-write-archived": (request(ALICE, WRITE, RECORD_2_ARCHIVED), False),
    "rule6-admin-write-archived": (request(BOB_ADMIN, WRITE, RECORD_2_ARCHIVED), True),
    "rule7-alice-soft-delete": (request(ALICE, SOFT_DELETE, RECORD_1), True),
    "rule8-alice-hard-delete": (request(ALICE, HARD_DELETE, RECORD_1), False),
}
RULE1 = RULES["rule1-alice-read-record-1"][0]
RULE4 = RULES["rule4-bob-write-record-1"][0]
