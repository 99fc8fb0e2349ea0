"""Domain model of the ingest service: pure Python, no framework imports."""
