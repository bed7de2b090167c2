"""Normalising an inference server's samples: which engine it is, and its queue, KV-cache,
latency, request-histogram and outcome figures in tuneloop's terms, from the tables in
:mod:`agent.collectors.inference_tables` (where the per-engine metric names and the decisions
about them are recorded).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from agent.collectors.inference_parse import ParseError, SampleIndex, parse_samples
from agent.collectors.inference_tables import (
    ENGINES,
    RATIO_QUANTITIES,
    TABLES,
    UNKNOWN_MODEL,
    EngineTable,
    Histogram,
    Labels,
    Ratio,
    Source,
    Term,
    Total,
)

__all__ = [
    "ENGINES",
    "TABLES",
    "Histogram",
    "ParseError",
    "Ratio",
    "Term",
    "Total",
    "detect_engine",
    "has_engine_metrics",
    "latencies",
    "normalise",
    "outcomes",
    "parse_samples",
    "request_histograms",
]


def detect_engine(index: SampleIndex) -> str | None:
    """The engine whose marker prefix the sample names carry, or None when none does."""
    for engine in ENGINES:
        prefixes = TABLES[engine].marker_prefixes
        if any(name.startswith(prefixes) for name in index):
            return engine
    return None


def _model_of(labels: Labels, table: EngineTable, fallback: str) -> str:
    if table.model_label is None:
        return fallback
    return labels.get(table.model_label) or fallback


def _sums(
    index: SampleIndex, source: Source, table: EngineTable, fallback: str
) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, value in index.get(source.sample, ()):
        if source.selects(labels):
            model = _model_of(labels, table, fallback)
            out[model] = out.get(model, 0.0) + value
    return out


def _evaluate(
    index: SampleIndex, term: Term, table: EngineTable, fallback: str, ratio: bool
) -> dict[str, float]:
    if isinstance(term, Ratio):
        num = _sums(index, term.numerator, table, fallback)
        den = _sums(index, term.denominator, table, fallback)
        return {m: num[m] / den[m] for m in num.keys() & den.keys() if den[m] > 0}
    if isinstance(term, Total):
        out: dict[str, float] = {}
        for part in term.parts:
            for model, value in _sums(index, part, table, fallback).items():
                out[model] = out.get(model, 0.0) + value
        return out
    if not ratio:
        return _sums(index, term, table, fallback)
    worst: dict[str, float] = {}
    for labels, value in index.get(term.sample, ()):
        if term.selects(labels):
            model = _model_of(labels, table, fallback)
            worst[model] = max(value, worst.get(model, -math.inf))
    return worst


def normalise(
    index: SampleIndex, engine: str, model: str | None = None
) -> dict[str, dict[str, float]]:
    """Quantity -> model -> value for one target; quantities the engine lacks are absent."""
    table = TABLES[engine]
    fallback = model or UNKNOWN_MODEL
    result: dict[str, dict[str, float]] = {}
    for quantity, alternatives in table.quantities.items():
        chosen: dict[str, float] = {}
        for term in alternatives:
            values = _evaluate(index, term, table, fallback, quantity in RATIO_QUANTITIES)
            for m, v in values.items():
                chosen.setdefault(m, v)
        if chosen:
            result[quantity] = chosen
    return result


def outcomes(
    index: SampleIndex, engine: str, model: str | None = None
) -> dict[str, dict[str, float]]:
    """Outcome -> model -> finished requests for one target; what the engine lacks is absent."""
    table = TABLES[engine]
    fallback = model or UNKNOWN_MODEL
    result: dict[str, dict[str, float]] = {}
    for outcome, total in table.outcomes.items():
        values = _evaluate(index, total, table, fallback, False)
        if values:
            result[outcome] = values
    return result


def _parse_le(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _histograms_of(
    index: SampleIndex, family: str, table: EngineTable, fallback: str
) -> dict[str, Histogram]:
    series: dict[str, dict[tuple[tuple[str, str], ...], dict[float, float]]] = {}
    sums: dict[str, float] = {}
    for labels, value in index.get(family + "_bucket", ()):
        le = _parse_le(labels.get("le"))
        if le is None:
            continue
        identity = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        per_series = series.setdefault(_model_of(labels, table, fallback), {})
        per_series.setdefault(identity, {})[le] = value
    for labels, value in index.get(family + "_sum", ()):
        model = _model_of(labels, table, fallback)
        sums[model] = sums.get(model, 0.0) + value
    out: dict[str, Histogram] = {}
    for model, per_series in series.items():
        bucket_sets = [set(buckets) for buckets in per_series.values()]
        common = set.intersection(*bucket_sets)
        if math.inf not in common or model not in sums:
            continue
        summed = {le: sum(buckets[le] for buckets in per_series.values()) for le in common}
        out[model] = Histogram(tuple(sorted(summed.items())), sums[model])
    return out


def _chosen_histograms(
    index: SampleIndex,
    families: Mapping[str, tuple[str, ...]],
    table: EngineTable,
    fallback: str,
) -> dict[str, dict[str, Histogram]]:
    result: dict[str, dict[str, Histogram]] = {}
    for quantity, alternatives in families.items():
        chosen: dict[str, Histogram] = {}
        for family in alternatives:
            for m, h in _histograms_of(index, family, table, fallback).items():
                chosen.setdefault(m, h)
        if chosen:
            result[quantity] = chosen
    return result


def latencies(
    index: SampleIndex, engine: str, model: str | None = None
) -> dict[str, dict[str, Histogram]]:
    """Latency -> model -> histogram (seconds) for one target; what the engine lacks is absent.

    Series of one model are summed per ``le`` (data-parallel engines, ranks) over the
    boundaries all of them report; a model whose histogram has no +Inf bucket or no ``_sum``
    is malformed and skipped.
    """
    table = TABLES[engine]
    return _chosen_histograms(index, table.latencies, table, model or UNKNOWN_MODEL)


def request_histograms(
    index: SampleIndex, engine: str, model: str | None = None
) -> dict[str, dict[str, Histogram]]:
    """Request length (tokens) and phase time (seconds) histograms, per model, as
    :func:`latencies` reads them; what the engine lacks is absent."""
    table = TABLES[engine]
    return _chosen_histograms(index, table.requests, table, model or UNKNOWN_MODEL)


def has_engine_metrics(index: SampleIndex, engine: str) -> bool:
    """Whether the index holds any series named with the engine's marker prefix."""
    prefixes = TABLES[engine].marker_prefixes
    return any(name.startswith(prefixes) for name in index)
