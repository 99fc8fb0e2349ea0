"""Routing unit tests."""
