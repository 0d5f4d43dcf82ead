"""Figures of the paper's studies in the paper's shapes, and a self-contained HTML report of them."""
from __future__ import annotations

import html
import os
from typing import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..studies import format_table

__all__ = ["study_figure", "rq1_figure", "rq2_figure", "rq3_figure", "rq4_figure", "rq5_figure", "write_report",
           "PAPER_SHAPES"]

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f", "#bcbd22")
PAPER_SHAPES = {"rq1": "Tables 1–2: R_cumu, R_avg, Length, CTR per method and encoder",
                "rq2": "Table 3: CTR by interaction length", "rq3": "Fig. 3b: the number of diffusion steps N",
                "rq4": "Fig. 3c: ablations −E and −A", "rq5": "Table 4: backbones × plug-ins"}


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


FIGURES = {"rq1": rq1_figure, "rq2": rq2_figure, "rq3": rq3_figure, "rq4": rq4_figure, "rq5": rq5_figure}


def study_figure(name: str, table: pd.DataFrame) -> go.Figure:
    """The figure of study ``name`` (rq1…rq5) for its DataFrame."""
    if name not in FIGURES:
        raise ValueError(f"unknown study {name!r}; choose one of {', '.join(FIGURES)}.")
    return FIGURES[name](table)


def _table_html(name: str, table: pd.DataFrame) -> str:
    shown = table if name == "rq2" else format_table(table)
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
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(document)
    return str(path)
