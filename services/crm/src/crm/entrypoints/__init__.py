"""Entry points of the crm service: HTTP routes and Kafka consumers (parse, call, map errors)."""
