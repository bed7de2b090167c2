"""Collectors: one module each, host paths and device libraries injected."""
