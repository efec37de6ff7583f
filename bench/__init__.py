"""Benchmarks: ``python -m bench.<name>`` (see docs/ for measured figures)."""
