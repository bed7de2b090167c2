"""tuneloop tuner: Bayesian optimization of serving knobs under guardrails."""
