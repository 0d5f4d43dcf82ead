"""The look every notebook figure shares: colours, axes, the toy's modes and the bandit's blobs, arrows.

Conventions: 2-D action plots use fixed axes [-1.5, 1.5] with equal scales (``action_axes``); the four modes
of ``MultimodalBehavior`` and the four blobs of ``CornerBandit`` (NE, NW, SW, SE) keep one colour everywhere
(``MODE_COLORS``, Okabe–Ito: colour-blind safe); diffusion steps are 1-based as in the paper (i = 0 is the
clean action, i = N pure noise). Every topic module (``schedule``, ``policy``, ``approximation``,
``q_training``, ``guidance``) draws with these pieces, so the same thing looks the same in every notebook.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from ..data.toy import CornerBandit, MultimodalBehavior

__all__ = [
    "ACTION_RANGE", "MODE_COLORS", "ELSEWHERE", "TEMPLATE", "EXTRA_COLORS", "RUN_COLORS", "ACTION_HOVER",
    "as_numpy", "color_of", "fixed_noise", "mode_labels", "blob_labels", "label_order", "cloud_traces",
    "first_in_legend", "action_axes", "mode_circles", "unit_circles", "blob_circles", "action_box",
    "path_traces", "arrow_trace",
]

ACTION_RANGE = (-1.5, 1.5)
ELSEWHERE = "elsewhere"
MODE_COLORS = {"NE": "#0072B2", "NW": "#E69F00", "SW": "#009E73", "SE": "#CC79A7", ELSEWHERE: "#8C8C8C"}
EXTRA_COLORS = ("#D55E00", "#56B4E9", "#F0E442", "#000000")
RUN_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#000000")
TEMPLATE = "plotly_white"
ACTION_HOVER = "a<sub>1</sub>=%{x:.2f}, a<sub>2</sub>=%{y:.2f}<br>%{text}<extra>%{fullData.name}</extra>"


def as_numpy(x: object) -> np.ndarray:
    """A tensor (any device) or array-like as a numpy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def color_of(label: str, position: int) -> str:
    """The mode's colour for a mode name, else the ``position``-th extra colour."""
    return MODE_COLORS.get(label, EXTRA_COLORS[position % len(EXTRA_COLORS)])


def fixed_noise(n: int, dim: int = 2, seed: int = 0) -> torch.Tensor:
    """ε ~ N(0, I) of shape (n, dim) from ``torch.Generator().manual_seed(seed)``: the noise the noising
    figures reuse at every step, so a slider moves each point along its own path instead of redrawing."""
    return torch.randn((n, dim), generator=torch.Generator().manual_seed(seed))


def mode_labels(toy: MultimodalBehavior, actions: object) -> np.ndarray:
    """The name of the mode each action lies on (``toy.nearest_mode``), or ``"elsewhere"``."""
    names = np.array([*toy.mode_names, ELSEWHERE])
    return names[toy.nearest_mode(as_numpy(actions))]  # -1 (on no mode) picks the last name


def blob_labels(bandit: CornerBandit, actions: object) -> np.ndarray:
    """The blob each action lies on (``bandit.blob_of``) by name, or ``"elsewhere"``."""
    names = np.array([*bandit.blob_names, ELSEWHERE])
    return names[bandit.blob_of(as_numpy(actions))]  # -1 (on no blob) picks the last name


def label_order(labels: np.ndarray, toy: MultimodalBehavior | None) -> list[str]:
    """The legend order of a cloud's labels: the toy's modes then "elsewhere", or known colours first."""
    if toy is not None:
        return [*toy.mode_names, ELSEWHERE]
    seen = [str(x) for x in pd.unique(labels)]
    known = [m for m in MODE_COLORS if m in seen]
    return known + sorted(x for x in seen if x not in known)


def cloud_traces(points: np.ndarray, labels: np.ndarray | None, order: Sequence[str], hover: str,
                 name: str, size: int = 5, opacity: float = 0.6) -> list[go.Scatter]:
    """One scatter trace per label, named ``f"{hover} {label}"`` (fixed order, empty ones kept so trace
    indices never change); a single trace called ``name`` when ``labels`` is None."""
    if labels is None:
        return [go.Scatter(x=points[:, 0], y=points[:, 1], mode="markers", name=name,
                           text=[hover] * len(points), hovertemplate=ACTION_HOVER,
                           marker=dict(size=size, opacity=opacity, color="#0072B2"))]
    traces = []
    for position, label in enumerate(order):
        rows = labels == label
        traces.append(go.Scatter(
            x=points[rows, 0], y=points[rows, 1], mode="markers", name=f"{hover} {label}",
            text=[f"{hover} {label}"] * int(rows.sum()), hovertemplate=ACTION_HOVER, legendgroup=label,
            marker=dict(size=size, opacity=opacity, color=color_of(label, position)), showlegend=bool(rows.any()),
        ))
    return traces


def first_in_legend(trace: go.Scatter, shown: set[str]) -> bool:
    """Across panels, list each non-empty series once in the legend (clicking it toggles all panels)."""
    if trace.x is None or len(trace.x) == 0 or trace.name in shown:
        return False
    shown.add(trace.name)
    trace.legendgroup = trace.name
    return True


def action_axes(fig: go.Figure, n_cols: int, bound: float = ACTION_RANGE[1]) -> None:
    """Fixed [-bound, bound] square axes on every panel of a 1 × n_cols grid."""
    for col in range(1, n_cols + 1):
        anchor = "x" if col == 1 else f"x{col}"
        fig.update_xaxes(range=[-bound, bound], title_text="a<sub>1</sub>", zeroline=True,
                         constrain="domain", row=1, col=col)
        fig.update_yaxes(range=[-bound, bound], title_text="a<sub>2</sub>" if col == 1 else None,
                         zeroline=True, scaleanchor=anchor, scaleratio=1, constrain="domain", row=1, col=col)


def mode_circles(fig: go.Figure, toy: MultimodalBehavior, user: int | None, n_cols: int) -> None:
    """The modes as circles of radius ``toy.radius``: solid in the mode's colour where the user likes it,
    dashed grey where the user does not (all solid when ``user`` is None)."""
    liked = set(range(len(toy.centres))) if user is None else set(toy.likes[user])
    for col in range(1, n_cols + 1):
        for m, ((cx, cy), name) in enumerate(zip(toy.centres, toy.mode_names)):
            is_liked = m in liked
            fig.add_shape(type="circle", x0=cx - toy.radius, x1=cx + toy.radius, y0=cy - toy.radius,
                          y1=cy + toy.radius, layer="below",
                          line=dict(color=MODE_COLORS[name] if is_liked else "#BBBBBB", width=2 if is_liked else 1,
                                    dash="solid" if is_liked else "dash"), row=1, col=col)
            fig.add_annotation(x=cx, y=cy + toy.radius + 0.12, text=name, showarrow=False,
                               font=dict(size=11, color=MODE_COLORS[name] if is_liked else "#999999"),
                               row=1, col=col)


def unit_circles(fig: go.Figure, n_cols: int) -> None:
    """Dotted circles of radius 1 and 2: where N(0, I) puts 39% and 86% of its mass in 2-D."""
    for col in range(1, n_cols + 1):
        for r in (1.0, 2.0):
            fig.add_shape(type="circle", x0=-r, x1=r, y0=-r, y1=r, layer="below",
                          line=dict(color="#999999", width=1, dash="dot"), row=1, col=col)


def blob_circles(fig: go.Figure, bandit: CornerBandit, cols: int | Sequence[int], context: int = 0,
                 row: int = 1) -> None:
    """The bandit's blobs as circles of radius ``bandit.radius`` in the given panel(s) (``cols``: a count n
    for panels 1..n, or a list of panel numbers), labelled with their mean reward in ``context``; the best
    blob of that context is drawn thick with its label in bold."""
    panels = range(1, cols + 1) if isinstance(cols, int) else cols
    best = bandit.best_blob(context)
    r = bandit.radius
    for col in panels:
        for k, ((cx, cy), name, mean) in enumerate(zip(bandit.centres, bandit.blob_names, bandit.blob_means(context))):
            color = MODE_COLORS.get(name, "#444444")
            fig.add_shape(type="circle", x0=cx - r, x1=cx + r, y0=cy - r, y1=cy + r, layer="above",
                          line=dict(color=color, width=3.5 if k == best else 1.5), row=row, col=col)
            label = f"{name}: r = {mean:g}"
            fig.add_annotation(x=cx, y=cy + r + 0.13, text=f"<b>{label}</b>" if k == best else label,
                               showarrow=False, bgcolor="rgba(255, 255, 255, 0.75)", borderpad=1,
                               font=dict(size=11, color=color), row=row, col=col)


def action_box(fig: go.Figure, n_cols: int) -> None:
    """The action box [-1, 1]², where sampled actions are clipped to."""
    for col in range(1, n_cols + 1):
        fig.add_shape(type="rect", x0=-1, x1=1, y0=-1, y1=1, layer="below",
                      line=dict(color="#666666", width=1, dash="dot"), row=1, col=col)


def path_traces(trajectory: np.ndarray, step: int, n_paths: int, showlegend: bool = True) -> list[go.Scatter]:
    """The paths a^N → a^i of the first ``n_paths`` chains of a (N+1, B, 2) trajectory (``[0]`` = a^N) as
    thin lines, and open circles where those chains are at step i."""
    n_steps = trajectory.shape[0] - 1
    travelled = trajectory[: n_steps - step + 1, :n_paths]
    xs, ys = [], []
    for k in range(travelled.shape[1]):
        xs += [*travelled[:, k, 0], None]
        ys += [*travelled[:, k, 1], None]
    return [
        go.Scatter(x=xs, y=ys, mode="lines", name=f"paths of {travelled.shape[1]} chains, a<sup>N</sup> → a<sup>i</sup>",
                   line=dict(color="#222222", width=1), opacity=0.45, hoverinfo="skip", legendgroup="paths",
                   showlegend=showlegend),
        go.Scatter(x=travelled[-1, :, 0], y=travelled[-1, :, 1], mode="markers", name="where those chains are now",
                   marker=dict(size=10, color="#222222", symbol="circle-open", line=dict(width=2.5)),
                   hovertemplate=ACTION_HOVER, text=[f"chain {k}" for k in range(travelled.shape[1])],
                   legendgroup="paths", showlegend=showlegend),
    ]


def arrow_trace(starts: np.ndarray, vectors: np.ndarray, name: str, color: str = "#222222",
                min_head: float = 0.0, width: float = 1.5, showlegend: bool = True) -> go.Scatter:
    """A quiver as one trace: for each row, a segment from ``starts[k]`` to ``starts[k] + vectors[k]`` and an
    arrow head at its tip. The coordinates come in triples (start, tip, gap), so ``x``/``y`` reshaped to
    (-1, 3) give back each arrow exactly. Heads are hidden on arrows shorter than ``min_head`` (a head on a
    zero-length arrow would point nowhere)."""
    starts, vectors = np.asarray(starts, dtype=float), np.asarray(vectors, dtype=float)
    if starts.shape != vectors.shape or starts.ndim != 2 or starts.shape[1] != 2:
        raise ValueError(f"starts and vectors must both be (n, 2), got {starts.shape} and {vectors.shape}.")
    tips = starts + vectors
    gap = np.full(len(starts), np.nan)
    xs = np.stack([starts[:, 0], tips[:, 0], gap], axis=1).reshape(-1)
    ys = np.stack([starts[:, 1], tips[:, 1], gap], axis=1).reshape(-1)
    length = np.hypot(vectors[:, 0], vectors[:, 1])
    heads = np.where(length > max(min_head, 1e-12), 7, 0)
    sizes = np.stack([np.zeros_like(heads), heads, np.zeros_like(heads)], axis=1).reshape(-1)
    return go.Scatter(x=[None if np.isnan(v) else v for v in xs], y=[None if np.isnan(v) else v for v in ys],
                      mode="lines+markers", name=name, line=dict(color=color, width=width), hoverinfo="skip",
                      legendgroup=name, showlegend=showlegend,
                      marker=dict(symbol="arrow", angleref="previous", size=sizes.tolist(), color=color))
