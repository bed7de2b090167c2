"""A discrete-event model of an LLM-serving fleet, reached through the tuner's own seams."""
