"""Entry points of the routing service: HTTP routes and Kafka consumers (parse, call, map errors)."""
