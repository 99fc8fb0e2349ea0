"""Benchmarks run by `make bench` against real infrastructure, each beside a same-run baseline."""
