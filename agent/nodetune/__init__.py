"""Node tuning: reconcile allowlisted TCP sysctls from a desired-state file."""
