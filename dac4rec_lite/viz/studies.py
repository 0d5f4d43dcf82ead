"""Figures of the paper's studies in the paper's shapes, and a self-contained HTML report of them."""
from __future__ import annotations

import html
import os
from typing import Mapping

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go
from IPython.display import HTML
from plotly.subplots import make_subplots

from ..io import atomic_write_text
from ..experiments.results import format_summary
from .widgets import make_explorer

__all__ = ["study_figure", "rq1_figure", "rq2_figure", "rq3_figure", "rq4_figure", "rq5_figure", "energy_figure",
           "write_report",
           "PAPER_SHAPES", "side_by_side", "beside_figure", "comparison_explorer"]

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f", "#bcbd22")
PAPER_SHAPES = {"rq1": "Tables 1–2: R_cumu, R_avg, Length, CTR per method and encoder",
                "rq2": "Table 3: CTR by interaction length", "rq3": "Fig. 3b: the number of diffusion steps N",
                "rq4": "Fig. 3c: ablations −E and −A", "rq5": "Table 4: backbones × plug-ins",
                "energy": "the kit's energy study: return against the guidance scale, per behaviour log"}


def _bars(fig: go.Figure, summary: pd.DataFrame, x: str, metric: str, name: str, color: str, row: int = 1,
          col: int = 1, showlegend: bool = True) -> None:
    fig.add_trace(go.Bar(x=summary[x], y=summary[f"{metric}_mean"], name=name, marker_color=color,
                         error_y=dict(type="data", array=summary[f"{metric}_std"]), legendgroup=name,
                         showlegend=showlegend, hovertemplate=f"{name}<br>%{{x}}: %{{y:.3g}}<extra></extra>"),
                  row=row, col=col)


def rq1_figure(summary: pd.DataFrame) -> go.Figure:
    """Four panels (R_cumu, R_avg, Length, CTR), methods on x, one bar colour per encoder (mean ± std)."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=("R_cumu", "R_avg", "Length", "CTR"), vertical_spacing=0.2)
    for k, (encoder, part) in enumerate(summary.groupby("encoder", sort=False)):
        for j, metric in enumerate(("R_cumu", "R_avg", "Length", "CTR")):
            _bars(fig, part, "method", metric, f"encoder: {encoder}", COLORS[k % len(COLORS)], j // 2 + 1, j % 2 + 1, j == 0)
    fig.update_layout(barmode="group", height=620, margin=dict(l=40, r=20, t=50, b=40))
    return fig


def rq2_figure(table: pd.DataFrame) -> go.Figure:
    """CTR per length bucket (x), one bar per method, mean ± std over seeds (Table 3)."""
    fig = go.Figure()
    for k, (method, part) in enumerate(table.groupby("method", sort=False)):
        fig.add_trace(go.Bar(x=part["length_bucket"], y=part["CTR_mean"], name=method,
                             marker_color=COLORS[k % len(COLORS)], error_y=dict(type="data", array=part["CTR_std"]),
                             customdata=part["n_episodes"],
                             hovertemplate=f"{method}<br>%{{x}}: CTR %{{y:.3f}} (%{{customdata}} sessions)<extra></extra>"))
    fig.update_layout(barmode="group", height=380, xaxis_title="interaction length (pages)", yaxis_title="CTR",
                      margin=dict(l=50, r=20, t=30, b=40))
    return fig


def rq3_figure(summary: pd.DataFrame) -> go.Figure:
    """R_cumu and Length against N (Fig. 3b), mean ± std over seeds."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("R_cumu", "Length"))
    for col, metric in enumerate(("R_cumu", "Length"), start=1):
        fig.add_trace(go.Scatter(x=summary["n_steps"], y=summary[f"{metric}_mean"], mode="lines+markers",
                                 error_y=dict(type="data", array=summary[f"{metric}_std"]), showlegend=False,
                                 line=dict(color=COLORS[0])), row=1, col=col)
        fig.update_xaxes(title_text="diffusion steps N", type="log", row=1, col=col)
    fig.update_layout(height=360, margin=dict(l=40, r=20, t=50, b=40))
    return fig


def _method_bars(summary: pd.DataFrame, metrics: tuple[str, ...] = ("R_cumu", "Length", "CTR")) -> go.Figure:
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=metrics)
    colors = [COLORS[k % len(COLORS)] for k in range(len(summary))]
    for col, metric in enumerate(metrics, start=1):
        fig.add_trace(go.Bar(x=summary["method"], y=summary[f"{metric}_mean"], marker_color=colors, showlegend=False,
                             error_y=dict(type="data", array=summary[f"{metric}_std"]),
                             hovertemplate="%{x}: %{y:.3g}<extra></extra>"), row=1, col=col)
    fig.update_layout(height=380, margin=dict(l=40, r=20, t=50, b=80))
    return fig


def rq4_figure(summary: pd.DataFrame) -> go.Figure:
    """DAC4Rec vs −E vs −A (Fig. 3c)."""
    return _method_bars(summary)


def rq5_figure(summary: pd.DataFrame) -> go.Figure:
    """Each backbone's four variants side by side (Table 4)."""
    return _method_bars(summary)


def _interval_trace(x, y, low, high, name: str, color: str, showlegend: bool) -> go.Scatter:
    """Markers and lines with asymmetric error bars from an interval (none where it is infinite: one seed)."""
    y, low, high = (pd.Series(v, dtype=float).reset_index(drop=True) for v in (y, low, high))
    finite = low.abs().lt(float("inf")) & high.abs().lt(float("inf"))
    return go.Scatter(x=list(x), y=y, mode="lines+markers", name=name, legendgroup=name, showlegend=showlegend,
                      line=dict(color=color), error_y=dict(type="data", symmetric=False, array=(high - y).where(finite),
                                                           arrayminus=(y - low).where(finite)),
                      hovertemplate=f"{name}<br>scale %{{x}}: %{{y:.3g}}<extra></extra>")


def energy_figure(table: pd.DataFrame, metric: str = "R_cumu") -> go.Figure:
    """The energy study: one column per behaviour log; top, ``metric`` against the guidance scale (mean over
    seeds with its 95 % interval); bottom, the paired difference from scale 0 (the same agents and users
    unguided) with its 95 % interval and a line at 0. One colour per method."""
    logs = list(dict.fromkeys(table["log"]))
    fig = make_subplots(rows=2, cols=len(logs), shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=[f"{log} log" for log in logs] + [""] * len(logs))
    for k, method in enumerate(dict.fromkeys(table["method"])):
        for col, log in enumerate(logs, start=1):
            part = table[(table["method"] == method) & (table["log"] == log)]
            color = COLORS[k % len(COLORS)]
            fig.add_trace(_interval_trace(part["scale"], part[f"{metric}_mean"], part[f"{metric}_mean_low"],
                                          part[f"{metric}_mean_high"], method, color, col == 1), row=1, col=col)
            fig.add_trace(_interval_trace(part["scale"], part[f"{metric}_diff"], part[f"{metric}_low"],
                                          part[f"{metric}_high"], method, color, False), row=2, col=col)
            fig.add_hline(y=0, line=dict(color="#888", dash="dot"), row=2, col=col)
            fig.update_xaxes(title_text="guidance scale", row=2, col=col)
    fig.update_yaxes(title_text=metric, row=1, col=1)
    fig.update_yaxes(title_text=f"{metric} − unguided", row=2, col=1)
    fig.update_layout(height=560, margin=dict(l=60, r=20, t=50, b=40), legend=dict(orientation="h", y=-0.12))
    return fig


FIGURES = {"rq1": rq1_figure, "rq2": rq2_figure, "rq3": rq3_figure, "rq4": rq4_figure, "rq5": rq5_figure,
           "energy": energy_figure}


def study_figure(name: str, table: pd.DataFrame) -> go.Figure:
    """The figure of study ``name`` (rq1…rq5) for its DataFrame."""
    if name not in FIGURES:
        raise ValueError(f"unknown study {name!r}; choose one of {', '.join(FIGURES)}.")
    return FIGURES[name](table)


def _table_html(name: str, table: pd.DataFrame) -> str:
    shown = format_summary(table)  # mean ± std; rq2 in Table 3's shape; energy with its paired differences
    return shown.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0, classes="results")


def write_report(results: Mapping[str, pd.DataFrame], path: str | os.PathLike[str], title: str = "dac4rec_lite studies",
                 notes: str = "") -> str:
    """One self-contained HTML file (plotly.js embedded once, no network needed to open it) with each study's
    table and figure. Returns the path written."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if notes:
        parts.append(f"<p>{html.escape(notes)}</p>")
    first = True
    for name, table in results.items():
        parts.append(f"<h2>{name.upper()} — {html.escape(PAPER_SHAPES.get(name, ''))}</h2>")
        parts.append(_table_html(name, table))
        parts.append(study_figure(name, table).to_html(full_html=False, include_plotlyjs="inline" if first else False))
        first = False
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table.results{border-collapse:collapse;margin:1em 0}"
             "table.results td,table.results th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}")
    document = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
    atomic_write_text(path, document)
    return str(path)


# ---------------------------------------------------------------------------------------------------------
# The kit's numbers beside the paper's (notebook 07).

_PALETTE = COLORS + ("#e377c2", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#393b79", "#c49c94", "#9edae5")
HERE_TITLE = "here (RecSim-v0)"
PAPER_TITLE = "paper (VirtualTaobao)"


def side_by_side(tables: Mapping[str, pd.DataFrame]):
    """Tables next to each other, each under its caption (an ``IPython.display.HTML``; leave it last in a
    cell). Wraps onto the next line when the page is narrow."""
    boxes = [f"<div style='display:inline-block;vertical-align:top;margin:0 2em 1em 0'>"
             f"<div style='font-weight:bold;margin-bottom:.3em'>{html.escape(caption)}</div>"
             f"{table.to_html(index=False, border=0, classes='results')}</div>" for caption, table in tables.items()]
    style = ("<style>table.results{border-collapse:collapse}table.results td,table.results th"
             "{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}</style>")
    return HTML(style + "<div>" + "".join(boxes) + "</div>")


def _panel_bars(fig: go.Figure, table: pd.DataFrame | None, x: str, metric: str, color: str | None, col: int,
                scale: bool, colors: dict[str, str], legend: set[str]) -> None:
    """Bars of ``metric`` per ``x`` in panel ``col``, one trace per ``color`` group (coloured by
    ``colors[group]``, so a method keeps its colour in both panels); a note where the table has no such
    metric. ``scale`` divides the panel by its largest mean (best = 1)."""
    if table is None or f"{metric}_mean" not in table.columns or not table[f"{metric}_mean"].notna().any():
        domain = fig.layout[f"xaxis{col if col > 1 else ''}"].domain
        fig.add_annotation(text=f"{metric}: not reported", showarrow=False, font=dict(color="#777", size=14),
                           xref="paper", yref="paper", x=(domain[0] + domain[1]) / 2, y=0.5)
        return
    top = float(table[f"{metric}_mean"].abs().max()) if scale else 1.0
    top = top if top > 0 else 1.0
    groups = table.groupby(color, sort=False) if color else [(metric, table)]
    for group, part in groups:
        name = str(group)
        std = part[f"{metric}_std"] / top if f"{metric}_std" in part.columns else None
        fig.add_trace(go.Bar(x=part[x].astype(str), y=part[f"{metric}_mean"] / top, name=name, legendgroup=name,
                             marker_color=colors.get(name, COLORS[0]), showlegend=bool(color) and name not in legend,
                             error_y=dict(type="data", array=std) if std is not None else None,
                             hovertemplate=f"{name}<br>%{{x}}: %{{y:.3g}}<extra></extra>"), row=1, col=col)
        legend.add(name)


def beside_figure(ours: pd.DataFrame, paper: pd.DataFrame | None, metric: str, x: str = "method",
                  color: str | None = None, scale: bool = False) -> go.Figure:
    """``metric`` (mean ± std) per ``x`` here (left) and in the paper (right), one bar colour per ``color``
    group; each panel has its own y axis (the simulators' scales differ). ``scale=True`` divides each panel
    by its largest value, so the *shapes* can be compared: who wins, by how much in relative terms."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(HERE_TITLE, PAPER_TITLE), horizontal_spacing=0.08)
    names = [str(g) for t in (ours, paper) if t is not None and color in t.columns for g in t[color]] if color else []
    colors = {name: _PALETTE[k % len(_PALETTE)] for k, name in enumerate(dict.fromkeys(names))}
    legend: set[str] = set()
    for col, table in ((1, ours), (2, paper)):
        _panel_bars(fig, table, x, metric, color, col, scale, colors, legend)
    fig.update_yaxes(title_text=f"{metric} ÷ the panel's best" if scale else metric, row=1, col=1)
    fig.update_layout(barmode="group", height=max(400, 160 + 28 * len(colors)), margin=dict(l=50, r=20, t=50, b=90),
                      legend_title_text=color or "")
    return fig


def comparison_explorer(ours: pd.DataFrame, paper: pd.DataFrame | None,
                        metrics: tuple[str, ...] = ("R_cumu", "R_avg", "Length", "CTR"), x: str = "method",
                        color: str | None = None):
    """A metric dropdown and a "scale each panel to its best = 1" checkbox driving ``beside_figure``, redrawn
    into the panel's output (``viz.widgets.make_explorer``). Returns an ``Explorer`` (``.figure``, ``.controls``, ``.message``)."""
    controls = {"metric": widgets.Dropdown(options=list(metrics), value=metrics[0], description="metric"),
                "scale": widgets.Checkbox(value=False, description="scale each panel to its best = 1", indent=False)}

    def build() -> go.Figure:
        return beside_figure(ours, paper, controls["metric"].value, x, color, controls["scale"].value)

    explorer = make_explorer(controls, build, ("metric", "scale"))
    explorer.message.value = (f"<span style='color:#555'>left: {html.escape(HERE_TITLE)}; right: "
                              f"{html.escape(PAPER_TITLE)}. Different simulators: compare rankings, not values.</span>")
    return explorer
