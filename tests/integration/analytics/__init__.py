"""Integration tests of analytics on real Kafka and PostgreSQL."""
