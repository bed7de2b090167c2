"""Building blocks the dashboard sources share: variables, panels with units, a grid layout.

Every panel is a time series with a unit and the ``${datasource}`` variable as its data source;
every query filters on the dashboard's variables, so one dashboard serves every cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafanalib.core import (
    Annotations,
    Dashboard,
    GridPos,
    RowPanel,
    Target,
    Template,
    Templating,
    TimeSeries,
)

DATASOURCE = "${datasource}"
PANEL_WIDTH = 12
PANEL_HEIGHT = 8


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


def panel(
    title: str, unit: str, *queries: tuple[str, str], description: str = "", stack: bool = False
) -> TimeSeries:
    """A time series panel; ``queries`` are ``(expr, legend)`` pairs."""
    targets = [
        Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + i), datasource=DATASOURCE)
        for i, (expr, legend) in enumerate(queries)
    ]
    return TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets,
        unit=unit,
        stacking={"mode": "normal", "group": "A"} if stack else {"mode": "none", "group": "A"},
    )


def rows(*sections: tuple[str, Sequence[TimeSeries]]) -> list[RowPanel | TimeSeries]:
    """Lay out titled rows of panels, two per line, with fixed grid positions."""
    out: list[RowPanel | TimeSeries] = []
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
    panels: Sequence[RowPanel | TimeSeries],
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
