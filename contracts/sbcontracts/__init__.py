"""Event contracts: CloudEvents envelope, event models, topic registry (source of truth)."""
