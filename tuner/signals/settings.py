"""The ``signals:`` section of an experiment: where signals come from and which service they cover.

```yaml
signals:
  prometheus: http://prometheus.monitoring:9090
  timeout: 5s
  retries: 2
  source: fleet            # fleet (default) | loadgen | haproxy
  scope:                   # one experiment tunes one service
    model: meta-llama/Llama-3.1-8B-Instruct
    namespace: llm-prod    # regex over the namespace part of the agent's target label
    target: "llm-prod/vllm-.*"
    node: "gpu-node-.*"
    backend: llm           # HAProxy backend (the exporter's ``proxy`` label), source haproxy
```

Decisions:
- ``source: fleet`` reads the agent's normalised server-side metrics (``tuneloop_inference_*``),
  the view every cluster has; ``loadgen`` is the lab's client-side load generator; ``haproxy`` is
  the balancer's own exporter. One source per experiment, so the objective and the constraints of
  a trial describe the same traffic; anything else is a PromQL ``query:``.
- Scope values are matched as Prometheus regexes (fully anchored, RE2), except ``model``, an exact
  name. They are checked here as regexes, so a typo fails at load time, not at the first trial.
- ``namespace`` matches the namespace part of the agent's ``target`` label, which is
  ``namespace/pod`` for pods found by annotation; ``node`` is the ``node`` label the scrape adds.
- The haproxy source needs ``scope.backend``: an exporter serves every backend of the process,
  and summing unrelated backends would tune nothing in particular. ``model``, ``target`` and
  ``namespace`` mean nothing to HAProxy and are refused with that source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tuneloop.validation import (
    ConfigError,
    duration,
    fail,
    integer,
    join,
    mapping,
    no_unknown_keys,
    string,
)

SOURCES = ("fleet", "loadgen", "haproxy")
_SCOPE_KEYS = ("model", "target", "namespace", "node", "backend")
_TOP_KEYS = {"prometheus", "timeout", "retries", "source", "scope"}


@dataclass(frozen=True)
class Scope:
    """Label selectors that narrow every built-in signal to one service."""

    model: str | None = None
    target: str | None = None  # regex
    namespace: str | None = None  # regex
    node: str | None = None  # regex
    backend: str | None = None  # regex over HAProxy's ``proxy`` label

    def is_empty(self) -> bool:
        return all(getattr(self, k) is None for k in _SCOPE_KEYS)


@dataclass(frozen=True)
class SignalSettings:
    """Where signals come from: the Prometheus server, the source of built-ins and their scope."""

    prometheus: str | None = None
    timeout_s: float = 5.0
    retries: int = 2
    source: str = "fleet"
    scope: Scope = field(default_factory=Scope)


def _regex(value: Any, field_: str) -> str:
    text = string(value, field_)
    try:
        re.compile(text)
    except re.error as err:
        fail(field_, f"is not a valid regular expression ({err}): {text!r}")
    return text


def _scope(raw: Any, field_: str, source: str) -> Scope:
    raw = mapping(raw, field_)
    no_unknown_keys(raw, field_, set(_SCOPE_KEYS))
    values: dict[str, str] = {}
    for key in _SCOPE_KEYS:
        if key in raw:
            sub = join(field_, key)
            values[key] = string(raw[key], sub) if key == "model" else _regex(raw[key], sub)
    scope = Scope(**values)
    if source == "haproxy":
        if scope.backend is None:
            fail(
                join(field_, "backend"),
                "is required with source haproxy (the exporter serves every backend)",
            )
        for key in ("model", "target", "namespace"):
            if getattr(scope, key) is not None:
                fail(join(field_, key), "has no meaning for source haproxy (use 'backend')")
    elif scope.backend is not None:
        fail(join(field_, "backend"), f"applies to source haproxy only, not {source}")
    return scope


def _url(value: Any, field_: str) -> str:
    text = string(value, field_)
    if not re.match(r"^https?://[^\s/]+", text):
        fail(field_, f"must be an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


def parse_signal_settings(raw: Mapping[str, Any] | None, field: str = "signals") -> SignalSettings:
    """The validated ``signals:`` section; a ConfigError names e.g. ``signals.scope.model``."""
    raw = mapping({} if raw is None else raw, field)
    no_unknown_keys(raw, field, _TOP_KEYS)
    source = string(raw.get("source", "fleet"), join(field, "source"), choices=SOURCES)
    return SignalSettings(
        prometheus=_url(raw["prometheus"], join(field, "prometheus"))
        if raw.get("prometheus") is not None
        else None,
        timeout_s=duration(raw.get("timeout", 5.0), join(field, "timeout")),
        retries=integer(raw.get("retries", 2), join(field, "retries"), minimum=0, maximum=10),
        source=source,
        scope=_scope(raw.get("scope", {}), join(field, "scope"), source),
    )


def require_prometheus(settings: SignalSettings, field: str = "signals") -> str:
    """The Prometheus URL, or a ConfigError saying it is required."""
    if settings.prometheus is None:
        raise ConfigError(join(field, "prometheus"), "is required: the Prometheus base URL")
    return settings.prometheus


def signal_settings_schema() -> dict[str, Any]:
    """The JSON Schema of the ``signals:`` section, for editors (``tuneloop schema experiment``)."""
    regex = {"type": "string", "format": "regex"}
    return {
        "type": "object",
        "description": "Where the signals come from, and which service they cover.",
        "additionalProperties": False,
        "properties": {
            "prometheus": {
                "type": "string",
                "pattern": "^https?://",
                "description": "Prometheus base URL.",
            },
            "timeout": {
                "type": ["number", "string"],
                "description": "Per-query timeout (5s, 500ms, or seconds).",
                "default": 5.0,
            },
            "retries": {
                "type": "integer",
                "minimum": 0,
                "maximum": 10,
                "default": 2,
                "description": "Retries of a failed query.",
            },
            "source": {
                "enum": list(SOURCES),
                "default": "fleet",
                "description": "Where built-in signals read from: the agent's server-side "
                "metrics (fleet), the lab's load generator, or HAProxy's exporter.",
            },
            "scope": {
                "type": "object",
                "additionalProperties": False,
                "description": "Label selectors that narrow every built-in signal to one service.",
                "properties": {
                    "model": {"type": "string", "description": "The model's exact name."},
                    "target": {**regex, "description": "Regex over the agent's target label."},
                    "namespace": {**regex, "description": "Regex over the target's namespace."},
                    "node": {**regex, "description": "Regex over the scrape's node label."},
                    "backend": {**regex, "description": "HAProxy backend (source haproxy)."},
                },
            },
        },
    }
