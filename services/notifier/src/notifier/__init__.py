"""Switchboard notifier service."""
