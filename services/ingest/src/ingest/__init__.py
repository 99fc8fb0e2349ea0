"""Switchboard ingest service."""
