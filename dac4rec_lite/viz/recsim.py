"""Figures and a step-through panel for the recommendation simulator (notebook 06).

``session_figure`` draws what happened page by page to one user under several policies (the traces of
``dl.evaluation.session_traces``); ``session_explorer`` lets a student pick the user and the page;
``metrics_figure`` and ``ctr_by_length_figure`` compare evaluated policies (their numbers in a table:
``dl.evaluation.metrics_table``). ``session_traces`` and ``metrics_table`` compute rather than draw, so they
live in ``evaluation.py``; ``dl.viz`` re-exports both."""
from __future__ import annotations

from typing import Any, Mapping

import gymnasium as gym
import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..evaluation import session_traces
from .widgets import Explorer, copy_into

__all__ = ["session_figure", "session_explorer", "metrics_figure", "ctr_by_length_figure", "item_map_figure"]

POLICY_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
SESSION_PANELS = (("clicks", "clicks on the page"), ("fatigue", "fatigue b"),
                  ("leave_probability", "P(leave) after the page"), ("interest_vs_preference", "cos(interest h, preference p)"))


def session_figure(traces: Mapping[str, pd.DataFrame], page: int | None = None) -> go.Figure:
    """Four panels over pages — clicks, fatigue, leave probability, how far the short-term interest has
    drifted from the long-term preference — one line per policy, a cross where the user left. ``page``
    draws a vertical marker (the step-through widget's cursor)."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=[title for _, title in SESSION_PANELS],
                        horizontal_spacing=0.1, vertical_spacing=0.16)
    for k, (name, trace) in enumerate(traces.items()):
        color = POLICY_COLORS[k % len(POLICY_COLORS)]
        for j, (column, _) in enumerate(SESSION_PANELS):
            row, col = divmod(j, 2)
            fig.add_trace(go.Scatter(x=trace["page"], y=trace[column], mode="lines+markers", name=name,
                                     legendgroup=name, showlegend=j == 0, line=dict(color=color), marker=dict(size=4),
                                     hovertemplate=f"{name}<br>page %{{x}}<br>{column} %{{y:.3g}}<extra></extra>"),
                          row=row + 1, col=col + 1)
            if len(trace) and bool(trace["left"].iloc[-1]):
                fig.add_trace(go.Scatter(x=[trace["page"].iloc[-1]], y=[trace[column].iloc[-1]], mode="markers",
                                         marker=dict(symbol="x", size=11, color=color), showlegend=False,
                                         legendgroup=name, hovertemplate=f"{name} left after page %{{x}}<extra></extra>"),
                              row=row + 1, col=col + 1)
    if page is not None:
        for j in range(4):
            fig.add_vline(x=page, line=dict(color="#888", dash="dot"), row=j // 2 + 1, col=j % 2 + 1)
    fig.update_xaxes(title_text="page", row=2)
    fig.update_layout(height=560, margin=dict(l=50, r=20, t=50, b=40), legend=dict(orientation="h", y=-0.12))
    return fig


def _page_readout(traces: Mapping[str, pd.DataFrame], page: int) -> str:
    rows = []
    for name, trace in traces.items():
        at = trace[trace["page"] == page]
        if at.empty:
            rows.append(f"<tr><td><b>{name}</b></td><td colspan=5>the user had left after page {len(trace)}</td></tr>")
            continue
        r = at.iloc[0]
        rows.append(f"<tr><td><b>{name}</b></td><td>{r['clicks']} clicks</td><td>fatigue {r['fatigue']:.2f}</td>"
                    f"<td>satisfaction {r['satisfaction']:.2f}</td><td>P(leave) {r['leave_probability']:.2f}</td>"
                    f"<td>items {', '.join(map(str, r['items']))}</td></tr>")
    return f"<b>page {page}</b><table>{''.join(rows)}</table>"


def session_explorer(env: gym.Env, policies: Mapping[str, Any], seed: int = 0, max_user: int = 50) -> Explorer:
    """Pick a user (a seed) and step through the pages: the figure shows the whole session under each policy
    with a cursor at the chosen page; the readout below lists that page's items, clicks, fatigue and leave
    probability for each policy."""
    controls = {"user": widgets.IntSlider(value=seed, min=0, max=max_user, description="user"),
                "page": widgets.IntSlider(value=1, min=1, max=100, description="page")}
    traces = {"current": session_traces(env, policies, seed)}

    def longest() -> int:
        return max(len(t) for t in traces["current"].values())

    controls["page"].max = longest()
    explorer = Explorer(controls, session_figure(traces["current"], page=1), widgets.HTML())
    explorer.message.value = _page_readout(traces["current"], 1)

    def on_user(_change: dict) -> None:
        traces["current"] = session_traces(env, policies, controls["user"].value)
        controls["page"].max = longest()
        controls["page"].value = min(controls["page"].value, controls["page"].max)
        on_page(None)

    def on_page(_change: dict | None) -> None:
        copy_into(explorer.figure, session_figure(traces["current"], page=controls["page"].value))
        explorer.message.value = _page_readout(traces["current"], controls["page"].value)

    controls["user"].observe(on_user, names="value")
    controls["page"].observe(on_page, names="value")
    return explorer


def metrics_figure(results: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """Bars of R_cumu, Length and CTR per policy, with the per-episode standard error on R_cumu and Length."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("R_cumu (clicks per session)", "Length (pages)", "CTR"))
    names = list(results)
    colors = [POLICY_COLORS[k % len(POLICY_COLORS)] for k in range(len(names))]
    for col, (metric, column) in enumerate((("R_cumu", "return"), ("Length", "length"), ("CTR", None)), start=1):
        values = [results[n][metric] for n in names]
        errors = [results[n]["episodes"][column].sem() if column else 0.0 for n in names]
        fig.add_trace(go.Bar(x=names, y=values, marker_color=colors, error_y=dict(type="data", array=errors),
                             showlegend=False, hovertemplate="%{x}: %{y:.3g}<extra></extra>"), row=1, col=col)
    fig.update_layout(height=360, margin=dict(l=40, r=20, t=50, b=40))
    return fig


def ctr_by_length_figure(results: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """CTR in the paper's interaction-length buckets (Table 3), one group of bars per policy."""
    fig = go.Figure()
    for k, (name, r) in enumerate(results.items()):
        table = r["ctr_by_length"]
        fig.add_trace(go.Bar(x=table["length_bucket"], y=table["CTR"], name=name,
                             marker_color=POLICY_COLORS[k % len(POLICY_COLORS)],
                             customdata=table["n_episodes"],
                             hovertemplate=f"{name}<br>%{{x}} pages: CTR %{{y:.3f}} (%{{customdata}} sessions)<extra></extra>"))
    fig.update_layout(barmode="group", height=340, xaxis_title="session length (pages)", yaxis_title="CTR",
                      margin=dict(l=50, r=20, t=30, b=40))
    return fig


def item_map_figure(env: gym.Env, n_users: int = 200, seed: int = 0) -> go.Figure:
    """The catalogue and a population of users on the plane of the item features' two principal
    components: grey dots are items, blue the users' long-term preferences p, red their starting short-term
    interests h (a line joins each user's two)."""
    simulator = env.unwrapped.simulator
    items = simulator.item_features
    _, _, components = np.linalg.svd(items - items.mean(axis=0), full_matrices=False)
    plane = components[:2].T
    users = simulator.new_users(n_users, np.random.default_rng(seed))
    p, h, v = users.preference @ plane, users.interest @ plane, items @ plane
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=v[:, 0], y=v[:, 1], mode="markers", name="items", marker=dict(size=4, color="#bbb"),
                             hovertemplate="item %{text}<extra></extra>", text=np.arange(len(items))))
    links_x = np.c_[p[:, 0], h[:, 0], np.full(n_users, np.nan)].ravel()
    links_y = np.c_[p[:, 1], h[:, 1], np.full(n_users, np.nan)].ravel()
    fig.add_trace(go.Scatter(x=links_x, y=links_y, mode="lines", line=dict(color="#ccc", width=1), showlegend=False,
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=p[:, 0], y=p[:, 1], mode="markers", name="long-term preference p",
                             marker=dict(size=6, color=POLICY_COLORS[0])))
    fig.add_trace(go.Scatter(x=h[:, 0], y=h[:, 1], mode="markers", name="short-term interest h (start)",
                             marker=dict(size=6, color=POLICY_COLORS[1], symbol="diamond")))
    fig.update_layout(height=460, xaxis_title="PC 1 of the item features", yaxis_title="PC 2",
                      margin=dict(l=50, r=20, t=30, b=40), yaxis=dict(scaleanchor="x"))
    return fig
