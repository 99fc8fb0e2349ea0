"""Adapters of the notifier service: ORM tables, repositories, provider clients."""
