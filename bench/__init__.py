"""Benchmarks for fastgan ops: `python -m bench.run` (see bench/README.md)."""
