"""Adapters of the routing service: ORM tables, repositories, provider clients."""
