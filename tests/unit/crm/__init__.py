"""Unit tests of the crm service."""
