"""tuneloop's core, imported by the agent, the tuner and the lab and importing none of them.

It holds the metric catalog (the contract), the generator of dashboards, alerts and runbooks,
config validation with field-path errors, durable file writes, retry with backoff, the clock
and logging set-up.
"""

from importlib import metadata

try:
    __version__ = metadata.version("tuneloop")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"
