"""Benchmarks: each prints our figure beside a reference measured in the same run."""
