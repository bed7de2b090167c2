"""Dashboards, alert rules and runbooks generated from the metric catalog."""
