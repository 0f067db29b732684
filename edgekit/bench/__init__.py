"""Benchmark harness: each variant measured in its own process, variants alternated over rounds.

Kept torch-free so that ``edgekit bench`` runs on a device with only the runtime installed;
only the PyTorch reference worker imports torch, inside its own process.
"""
