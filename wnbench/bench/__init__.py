"""Micro-benchmarks of the norm layers themselves: cost (claim C3) and batch-companion noise (claim C4)."""
