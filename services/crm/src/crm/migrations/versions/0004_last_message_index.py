"""A partial index for the card's last contact: the newest message of a customer.

The (customer_id, occurred_at, id) index serves timeline pages, but finding the latest
*message* through it walks every newer order, shipment and notification entry of the customer
(hundreds for a customer with many parcel scans). This index holds only messages. On a large
timeline, build it beforehand with CREATE INDEX CONCURRENTLY under the same name: this
migration then finds it.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

WHERE = sa.text("kind = 'message'")


def upgrade() -> None:
    """Create the partial index."""
    op.create_index(
        "ix_timeline_last_message",
        "timeline",
        ["customer_id", "occurred_at", "id"],
        postgresql_where=WHERE,
        sqlite_where=WHERE,
        if_not_exists=True,
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_timeline_last_message", "timeline")
