"""Switchboard analytics service."""
