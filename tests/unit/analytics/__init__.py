"""Unit tests of the analytics service."""
