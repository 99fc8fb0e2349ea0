"""Adapters of the analytics service: ORM tables, repositories, provider clients."""
