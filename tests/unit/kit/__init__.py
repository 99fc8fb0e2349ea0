"""Unit tests of the shared kit."""
