"""Metric names in PromQL text, and their check against the catalog.

A small scanner, not a parser: it drops string literals, label matchers (``{...}``), ranges and
offsets (``[...]``), then takes every identifier that is not a function, keyword or
aggregation modifier, not a label name in a ``by``/``without``/``on``/``ignoring``/
``group_left``/``group_right`` list, and not a recording-rule name (they hold a colon). That is
enough for the expressions tuneloop writes itself, and it errs towards reporting a name.

:data:`EXTERNAL_METRICS` are the few series of other exporters the rules read on purpose
(kube-state-metrics for the agent DaemonSet's pods, Prometheus's own ``up``); nothing else
outside the catalog is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tuneloop.catalog import ALL, MetricSpec

FUNCTIONS = frozenset(
    [
        "abs",
        "absent",
        "absent_over_time",
        "avg_over_time",
        "ceil",
        "changes",
        "clamp",
        "clamp_max",
        "clamp_min",
        "count_over_time",
        "day_of_month",
        "day_of_week",
        "days_in_month",
        "delta",
        "deriv",
        "exp",
        "floor",
        "histogram_quantile",
        "holt_winters",
        "hour",
        "idelta",
        "increase",
        "irate",
        "label_join",
        "label_replace",
        "ln",
        "log2",
        "log10",
        "last_over_time",
        "max_over_time",
        "min_over_time",
        "minute",
        "month",
        "predict_linear",
        "present_over_time",
        "quantile_over_time",
        "rate",
        "resets",
        "round",
        "scalar",
        "sgn",
        "sort",
        "sort_desc",
        "sqrt",
        "stddev_over_time",
        "stdvar_over_time",
        "sum_over_time",
        "time",
        "timestamp",
        "vector",
        "year",
    ]
)
AGGREGATIONS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ]
)
KEYWORDS = frozenset(
    [
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
    ]
)
EXTERNAL_METRICS = frozenset(
    [
        "kube_daemonset_status_desired_number_scheduled",
        "kube_daemonset_status_number_available",
        "kube_pod_info",
        "up",
    ]
)
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_IDENT = re.compile(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?=\s*[{\[(]|\s|\)|,|$)")
_NUMBER_LIKE = re.compile(r"^(inf|nan|Inf|NaN|e\d*)$")


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (recording-rule names with a colon excluded)."""
    text = _STRING.sub('""', expr)
    text = _GROUPING.sub(r"\1 ()", text)
    text = _BRACES.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name = match.group(1)
        if name in FUNCTIONS or name in AGGREGATIONS or name in KEYWORDS:
            continue
        if ":" in name or _NUMBER_LIKE.match(name):
            continue
        names.add(name)
    return names


def sample_index(specs: Iterable[MetricSpec] = ALL.values()) -> dict[str, MetricSpec]:
    """Every exposed sample name (a histogram's three) to its spec."""
    return {sample: spec for spec in specs for sample in spec.sample_names()}


def unknown_names(exprs: Iterable[str]) -> dict[str, set[str]]:
    """Metric names outside the catalog, each with the expressions that use it."""
    index = sample_index()
    unknown: dict[str, set[str]] = {}
    for expr in exprs:
        for name in metric_names(expr):
            if name not in index and name not in EXTERNAL_METRICS:
                unknown.setdefault(name, set()).add(expr)
    return unknown
