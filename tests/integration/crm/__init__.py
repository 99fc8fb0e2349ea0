"""Integration tests of the crm service on real PostgreSQL and Kafka."""
