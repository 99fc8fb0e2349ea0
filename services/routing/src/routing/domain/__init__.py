"""Domain model of the routing service: pure Python, no framework imports."""
