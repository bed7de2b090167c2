"""Latency-aware traffic shifting: move load off a replica whose P99 degrades, and back."""
