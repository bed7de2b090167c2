"""What the inference collector knows of a target: its address, and one collection's verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.collectors.inference_engines import (
    ENGINES,
    TABLES,
    Histogram,
    Ratio,
    Term,
    Total,
)
from agent.collectors.inference_http import REASONS, FetchError
from agent.collectors.inference_parse import DuplicateSeries, ParseError, TooManySeries

ENGINE_CHOICES = (*ENGINES, "auto")


@dataclass(frozen=True)
class InferenceTarget:
    """One inference server's metrics endpoint; ``engine`` "auto" detects it from the names."""

    name: str
    url: str
    engine: str = "auto"
    model: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(
                f"inference target name: must be a non-empty string, got {self.name!r}"
            )
        where = f"inference target {self.name!r}"
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise ValueError(f"{where}: url must start with http:// or https://, got {self.url!r}")
        if self.engine not in ENGINE_CHOICES:
            raise ValueError(
                f"{where}: engine must be one of {', '.join(ENGINE_CHOICES)}, got {self.engine!r}"
            )
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise ValueError(f"{where}: model must be a non-empty string, got {self.model!r}")


def short_error(exc: BaseException) -> str:
    """The first line of an error, at most 200 characters."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def classify(exc: BaseException) -> str:
    """The failure reason label for an exception raised while reading a target."""
    if isinstance(exc, FetchError):
        return exc.reason if exc.reason in REASONS else "error"
    if isinstance(exc, DuplicateSeries):
        return "duplicate"
    if isinstance(exc, TooManySeries):
        return "too_many_series"
    if isinstance(exc, ParseError):
        return "parse"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionError):
        return "connection"
    return "error"


@dataclass(frozen=True)
class TargetResult:
    """What one collection learnt about one target."""

    target: InferenceTarget
    engine: str
    up: bool
    duration_s: float
    values: dict[str, dict[str, float]] = field(default_factory=dict)
    latencies: dict[str, dict[str, Histogram]] = field(default_factory=dict)
    outcomes: dict[str, dict[str, float]] = field(default_factory=dict)
    requests: dict[str, dict[str, Histogram]] = field(default_factory=dict)
    reason: str | None = None
    error: str | None = None


def _term_samples(term: Term) -> set[str]:
    if isinstance(term, Ratio):
        return {term.numerator.sample, term.denominator.sample}
    if isinstance(term, Total):
        return {part.sample for part in term.parts}
    return {term.sample}


def _read_names() -> frozenset[str]:
    """Every sample name (counters by base name) some engine table reads."""
    names: set[str] = set()
    for table in TABLES.values():
        for alternatives in table.quantities.values():
            for term in alternatives:
                names |= _term_samples(term)
        for total in table.outcomes.values():
            names |= _term_samples(total)
        for families in (*table.latencies.values(), *table.requests.values()):
            names |= {f + suffix for f in families for suffix in ("_bucket", "_sum")}
    return frozenset(names)


READ_NAMES = _read_names()
