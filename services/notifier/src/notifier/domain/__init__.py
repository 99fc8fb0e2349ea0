"""Domain model of the notifier service: pure Python, no framework imports."""
