"""Tables of the routing service (its own schema); the kit's inbox and outbox included."""

from __future__ import annotations

from sqlalchemy import MetaData

from sbkit.db.tables import KitTables

metadata = MetaData()
kit = KitTables(metadata)
