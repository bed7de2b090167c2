"""Fakes at our own boundaries (the Kubernetes API server), faithful to the real APIs' errors."""
