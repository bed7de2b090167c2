"""Building blocks the dashboard sources share: variables, panels with units, a grid layout.

Every panel is a time series (or a heatmap, for histograms) with a unit and the
``${datasource}`` variable as its data source; every query filters on the dashboard's variables,
so one dashboard serves every cluster.

Every panel has a description: given, or else the catalog's help text of each metric its
queries name, so the ``i`` on a panel says what the series mean. :func:`family_panel` draws
catalog families as they are (a gauge as is, a counter as a per-second rate, a histogram as its
P99) with the unit the catalog gives.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafanalib.core import (
    Annotations,
    Dashboard,
    GridPos,
    Heatmap,
    Panel,
    RowPanel,
    Target,
    Template,
    Templating,
    TimeSeries,
)

from tuneloop import catalog
from tuneloop.catalog.base import MetricSpec
from tuneloop.generate.promql import metric_names, sample_index

DATASOURCE = "${datasource}"
PANEL_WIDTH = 12
PANEL_HEIGHT = 8
MAX_QUERIES = 26  # one refId letter each
HEATMAP_PLUGIN_VERSION = "11.0.0"
# Catalog unit -> Grafana unit, for a gauge's value or a counter's per-second rate.
GAUGE_UNITS = {
    "bytes": "bytes",
    "seconds": "s",
    "ratio": "percentunit",
    "celsius": "celsius",
    "watts": "watt",
    "hertz": "hertz",
    "joules": "joule",
    "bytes_per_second": "Bps",
    "requests_per_second": "reqps",
}
RATE_UNITS = {"bytes": "Bps", "joules": "watt", "seconds": "percentunit", "": "cps"}


def datasource_variable() -> Template:
    """The Prometheus data source picker."""
    return Template(
        name="datasource", label="Data source", query="prometheus", type="datasource", default=""
    )


def label_variable(
    name: str, metric: str, selector: str = "", label: str | None = None
) -> Template:
    """A multi-value variable over the values of ``label`` (default ``name``) of ``metric``."""
    label = label or name
    return Template(
        name=name,
        label=name.replace("_", " ").capitalize(),
        query=f"label_values({metric}{{{selector}}}, {label})",
        dataSource=DATASOURCE,
        includeAll=True,
        multi=True,
        allValue=".*",
        refresh=2,
        sort=1,
        default="All",
    )


def describe(*exprs: str) -> str:
    """The catalog's help text of every metric the expressions name, one line each."""
    index = sample_index()
    specs: dict[str, MetricSpec] = {}
    for expr in exprs:
        for name in sorted(metric_names(expr)):
            if name in index:
                specs.setdefault(index[name].name, index[name])
    return "\n".join(f"{spec.name}: {spec.help}" for spec in specs.values())


def _targets(queries: Sequence[tuple[str, str]], fmt: str = "time_series") -> list[Target]:
    if len(queries) > MAX_QUERIES:
        raise ValueError(f"a panel holds at most {MAX_QUERIES} queries, got {len(queries)}")
    return [
        Target(
            expr=expr,
            legendFormat=legend,
            refId=chr(ord("A") + i),
            datasource=DATASOURCE,
            format=fmt,
        )
        for i, (expr, legend) in enumerate(queries)
    ]


def _description(title: str, given: str, queries: Sequence[tuple[str, str]]) -> str:
    text = given or describe(*(expr for expr, _ in queries))
    if not text:
        raise ValueError(
            f"panel {title!r}: give a description (its queries name no catalog metric)"
        )
    return text


def panel(
    title: str, unit: str, *queries: tuple[str, str], description: str = "", stack: bool = False
) -> TimeSeries:
    """A time series panel; ``queries`` are ``(expr, legend)`` pairs."""
    return TimeSeries(
        title=title,
        description=_description(title, description, queries),
        dataSource=DATASOURCE,
        targets=_targets(queries),
        unit=unit,
        stacking={"mode": "normal", "group": "A"} if stack else {"mode": "none", "group": "A"},
    )


def bucket_rate(metric: str, selector: str, by: str = "", common: bool = False) -> str:
    """The per-second rate of a histogram's buckets, summed by ``by`` and ``le``.

    With ``common``, only the bucket boundaries that every series of a model reports are summed:
    replicas whose engines bucket differently (vLLM's length buckets follow each replica's
    context length; SGLang's and vLLM's time buckets differ) then add up to a true, coarser
    histogram, where a boundary that some replicas lack would make the sum non-cumulative.
    """
    group = f"{by}, le" if by else "le"
    rate = f"rate({metric}_bucket{{{selector}}}[$__rate_interval])"
    if common:
        shared = (
            f"count by (model, le) ({metric}_bucket{{{selector}}}) == on (model) group_left () "
            f"count by (model) ({metric}_count{{{selector}}})"
        )
        rate = f"({rate} and on (model, le) ({shared}))"
    return f"sum by ({group}) ({rate})"


def heatmap(
    title: str, metric: str, selector: str, description: str = "", common: bool = False
) -> Heatmap:
    """A heatmap of a histogram's buckets per second (Grafana's current heatmap panel); with
    ``common``, over the bucket boundaries every replica of a model shares (:func:`bucket_rate`).
    """
    spec = catalog.get(metric)
    if spec.type != "histogram":
        raise ValueError(f"heatmap {title!r}: {metric} is a {spec.type}, not a histogram")
    unit = GAUGE_UNITS.get(spec.unit, "short")
    query = (bucket_rate(metric, selector, common=common), "{{le}}")
    return Heatmap(
        title=title,
        description=description or f"{spec.name}: {spec.help}",
        dataSource=DATASOURCE,
        targets=_targets([query], fmt="heatmap"),
        dataFormat="tsbuckets",
        extraJson={
            # a plugin version stops Grafana migrating the legacy heatmap fields over these
            "pluginVersion": HEATMAP_PLUGIN_VERSION,
            "fieldConfig": {"defaults": {"unit": unit}},
            "options": {
                "calculate": False,
                "cellGap": 1,
                "color": {
                    "mode": "scheme",
                    "scheme": "Oranges",
                    "scale": "exponential",
                    "exponent": 0.5,
                    "steps": 64,
                    "fill": "dark-orange",
                    "reverse": False,
                },
                "filterValues": {"le": 1e-9},
                "legend": {"show": True},
                "rowsFrame": {"layout": "auto"},
                "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": False},
                "yAxis": {"axisPlacement": "left", "unit": unit, "reverse": False},
            },
        },
    )


def family_query(spec: MetricSpec, selector: str) -> str:
    """How a family is drawn: a gauge as is, a counter as a rate, a histogram as its P99."""
    if spec.type == "counter":
        return f"rate({spec.name}{{{selector}}}[$__rate_interval])"
    if spec.type == "histogram":
        return (
            f"histogram_quantile(0.99, sum by (le) "
            f"(rate({spec.name}_bucket{{{selector}}}[$__rate_interval])))"
        )
    return f"{spec.name}{{{selector}}}"


def family_unit(spec: MetricSpec) -> str:
    """The Grafana unit of :func:`family_query`'s answer."""
    if spec.type == "counter":
        return RATE_UNITS.get(spec.unit, "cps")
    return GAUGE_UNITS.get(spec.unit, "short")


def short_name(spec: MetricSpec, prefix: str) -> str:
    """The metric's name without ``prefix`` and ``_total``, for legends."""
    name = spec.name.removeprefix(prefix)
    return name.removesuffix("_total")


def family_panel(
    title: str,
    specs: Sequence[MetricSpec],
    selector: str,
    legend: str,
    *,
    prefix: str = "tuneloop_",
    unit: str | None = None,
) -> TimeSeries:
    """One panel drawing each of ``specs``; the legend starts with the family's short name."""
    queries = [
        (family_query(spec, selector), f"{short_name(spec, prefix)} {legend}".strip())
        for spec in specs
    ]
    return panel(title, unit or family_unit(specs[0]), *queries)


def rows(*sections: tuple[str, Sequence[Panel]]) -> list[Panel]:
    """Lay out titled rows of panels, two per line, with fixed grid positions."""
    out: list[Panel] = []
    y = 0
    for title, panels in sections:
        out.append(RowPanel(title=title, gridPos=GridPos(h=1, w=24, x=0, y=y)))
        y += 1
        for i, p in enumerate(panels):
            p.gridPos = GridPos(
                h=PANEL_HEIGHT,
                w=PANEL_WIDTH,
                x=(i % 2) * PANEL_WIDTH,
                y=y + (i // 2) * PANEL_HEIGHT,
            )
            out.append(p)
        y += ((len(panels) + 1) // 2) * PANEL_HEIGHT
    return out


def dashboard(
    title: str,
    description: str,
    variables: Sequence[Template],
    panels: Sequence[Panel],
    tags: Sequence[str] = (),
    annotations: Sequence[dict[str, object]] = (),
) -> Dashboard:
    """A dashboard with stable panel ids; the generator sets its uid from the file name."""
    return Dashboard(
        title=title,
        description=description,
        tags=["tuneloop", *tags],
        templating=Templating(list=[datasource_variable(), *variables]),
        annotations=Annotations(list=list(annotations)),
        panels=list(panels),
        timezone="utc",
        refresh="30s",
    ).auto_panel_ids()
