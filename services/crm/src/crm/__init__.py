"""Switchboard crm service."""
