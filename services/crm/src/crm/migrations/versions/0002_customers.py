"""Customers, identities, attributes, consents, orders, shipments, timeline, merges, tombstones.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from crm.adapters import orm

revision = "0002"
down_revision = "0001"

TABLES = [orm.customers, *orm.OWNED.values(), orm.shipments, orm.merges, orm.tombstones]


def upgrade() -> None:
    """Create crm's tables (defined once, in adapters/orm.py)."""
    bind = op.get_bind()
    for table in TABLES:
        table.create(bind)


def downgrade() -> None:
    """Drop them."""
    bind = op.get_bind()
    for table in reversed(TABLES):
        table.drop(bind)
