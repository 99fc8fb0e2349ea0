"""Entry points of the notifier service: HTTP routes and Kafka consumers (parse, call, map errors)."""
