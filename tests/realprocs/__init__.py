"""Helpers that start real programs (Prometheus, HAProxy, nginx) for tests, on loopback only."""
