"""The tuner's only door to the Kubernetes API (see client.py)."""
