"""Console benchmarks (the fleet cache)."""
