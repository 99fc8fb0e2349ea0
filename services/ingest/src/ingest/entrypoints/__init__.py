"""Entry points of the ingest service: HTTP routes and Kafka consumers (parse, call, map errors)."""
