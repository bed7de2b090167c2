"""Appliers: one module per system the tuner can change."""
