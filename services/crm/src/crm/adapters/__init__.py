"""Adapters of the crm service: ORM tables, repositories, provider clients."""
