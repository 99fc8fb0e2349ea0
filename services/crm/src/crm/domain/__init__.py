"""Domain model of the crm service: pure Python, no framework imports."""
