"""routing on real PostgreSQL and Kafka."""
