"""change notices: PostgreSQL triggers that NOTIFY replicas of changed shared state (branch: changes)

On PostgreSQL, a commit that changes what every replica caches (revocations, estate
revisions, callers, trust anchors, signing keys, offboardings, approval verdicts) sends
``NOTIFY tether_changes, '<schema>.<table>'`` (``tether.store.changes``). The database
sends it, so every writer (a replica, the CLI, the worker) announces its changes without
any code of its own; NOTIFY is transactional, so a notice arrives only after the commit.
SQLite has no NOTIFY: there the version checks alone carry changes between processes.

It joins the branches of the tables it watches (callers, tokens and keys, approvals,
lifecycle): a merge point, so it runs after all of them.

Revision ID: 00ch
Revises: 0003, 0004, 0008, 000b
"""

from alembic import op

revision = "00ch"
down_revision = ("0003", "0004", "0008", "000b")
branch_labels = ("changes",)
depends_on = None

# table -> the trigger's event clause. `identities` leaves out `last_used_at`, which
# callers' activity updates all the time and which no replica caches.
WATCHED = {
    "revocation_version": "INSERT OR UPDATE OR DELETE",
    "estate_revisions": "INSERT OR UPDATE OR DELETE",
    "identities": (
        "INSERT OR DELETE OR UPDATE OF kind, workload_class, owner, workload, attributes,"
        " status, origin, updated_at"
    ),
    "api_keys": "INSERT OR UPDATE OR DELETE",
    "caller_roles": "INSERT OR UPDATE OR DELETE",
    "trust_anchors": "INSERT OR UPDATE OR DELETE",
    "signing_keys": "INSERT OR UPDATE OR DELETE",
    "offboardings": "INSERT OR UPDATE OR DELETE",
    "approvals": "UPDATE OF status, decided_at",
}

FUNCTION = """
CREATE OR REPLACE FUNCTION tether_announce_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('tether_changes', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    for table, events in WATCHED.items():
        # Per statement: one notice per changing statement (PostgreSQL folds equal notices
        # of one transaction into one).
        op.execute(
            f"CREATE TRIGGER tether_announce_{table} AFTER {events} ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION tether_announce_change()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in WATCHED:
        op.execute(f"DROP TRIGGER IF EXISTS tether_announce_{table} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS tether_announce_change()")
