"""Signals: where the tuner reads its objective and SLO constraints."""
