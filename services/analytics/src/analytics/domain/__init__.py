"""Domain model of the analytics service: pure Python, no framework imports."""
