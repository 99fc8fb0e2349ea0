"""Entry points of the analytics service: HTTP routes and Kafka consumers (parse, call, map errors)."""
