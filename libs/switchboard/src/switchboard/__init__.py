"""Switchboard: the all-in-one composition (embedded mode) and the command line."""
