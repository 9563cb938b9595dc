"""Benchmarks of tap-clinical-conductor against the fake tenant (``python -m benchmarks.bench``)."""
