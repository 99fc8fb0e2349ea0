"""Event payload models, one module per producing service; each registers in the catalog."""
