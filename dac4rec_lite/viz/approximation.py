"""Notebook 03: the action approximation (Sec. 3.2, Eq. 13–14), as figures and a slider panel.

``approximation_figure`` / ``approximation_explorer`` show dataset actions a⁰, their noised a^i and the
one-step estimates â⁰ at step i; ``approximation_error_figure`` draws ``approximation_errors`` (computed, like
``approximation_pairs``, in ``dac4rec_lite.experiments.analysis``); ``update_time_figure`` the cost of one policy update, approximation
against backpropagating through the chain."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..data.toy import CornerBandit
from ..diffusion.policy import DiffusionPolicy
from ..experiments.analysis import approximation_pairs
from .style import ELSEWHERE, TEMPLATE, action_axes, blob_circles, blob_labels, cloud_traces
from .widgets import Explorer, info_html, make_explorer, play_button, step_slider

__all__ = ["approximation_figure", "approximation_error_figure", "update_time_figure", "approximation_explorer"]

_METHOD_COLORS = {"action approximation": "#0072B2", "through the chain": "#D55E00"}


def approximation_figure(policy: DiffusionPolicy, states: object, actions: object, step: int, seed: int = 0,
                         bandit: CornerBandit | None = None, n_lines: int = 30) -> go.Figure:
    """The action approximation at step i (Eq. 13–14) for a batch of dataset pairs (s, a⁰).

    Each dataset action a⁰ is noised to a^i = √ᾱ_i a⁰ + √(1-ᾱ_i) ε (grey dots) and denoised with one ε call,
    â⁰ = ``policy.approximate_action(s, a⁰, generator=torch.Generator().manual_seed(seed), step=i)``: the same
    ε at every step, so a slider moves each point along its own path. Open circles: a⁰; filled: â⁰; both
    coloured by the blob a⁰ comes from (with ``bandit``). Lines join a⁰ to its â⁰ for ``n_lines`` pairs. The
    title gives E‖â⁰ − a⁰‖² over the batch."""
    n_steps = policy.n_steps
    clean, _, noisy, approx = (x.numpy() for x in approximation_pairs(policy, states, actions, step, seed))
    error = float(np.mean(np.sum((approx - clean) ** 2, axis=1)))
    labels = blob_labels(bandit, clean) if bandit is not None else None
    order = [*bandit.blob_names, ELSEWHERE] if bandit is not None else []
    fig = make_subplots(rows=1, cols=1)
    fig.add_trace(go.Scatter(x=noisy[:, 0], y=noisy[:, 1], mode="markers", name="a<sup>i</sup>: a<sup>0</sup> noised to step i",
                             marker=dict(size=3, color="#AAAAAA", opacity=0.5), hoverinfo="skip"))
    k = min(n_lines, len(clean))
    xs, ys = [], []
    for row in range(k):
        xs += [clean[row, 0], approx[row, 0], None]
        ys += [clean[row, 1], approx[row, 1], None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"a<sup>0</sup> → â<sup>0</sup> for {k} pairs",
                             line=dict(color="#222222", width=1), opacity=0.5, hoverinfo="skip"))
    for trace in cloud_traces(clean, labels, order, "a⁰ from", "a<sup>0</sup> (dataset)", size=8, opacity=0.8):
        trace.marker.symbol = "circle-open"
        fig.add_trace(trace)
    for trace in cloud_traces(approx, labels, order, "â⁰ from", "â<sup>0</sup>", size=5, opacity=0.85):
        fig.add_trace(trace)
    if bandit is not None:
        blob_circles(fig, bandit, 1)
    action_axes(fig, 1)
    alpha_bar = float(policy.schedule.alphas_cumprod[step - 1])
    fig.update_layout(
        template=TEMPLATE, height=580, margin=dict(t=90, l=60, r=20, b=50),
        title=dict(x=0.01, text=(
            f"Action approximation at step i = {step} of {n_steps}: E‖â<sup>0</sup> − a<sup>0</sup>‖² = {error:.4f}<br><sup>"
            f"a<sup>i</sup> = {np.sqrt(alpha_bar):.3f}·a<sup>0</sup> + {np.sqrt(1 - alpha_bar):.3f}·ε,   "
            f"â<sup>0</sup> = (a<sup>i</sup> − {np.sqrt(1 - alpha_bar):.3f}·ε<sub>θ</sub>(s, a<sup>i</sup>, i)) / "
            f"{np.sqrt(alpha_bar):.3f}   (Eq. 13–14 with ᾱ<sub>i</sub>)</sup>")),
        legend=dict(itemsizing="constant", title="open: dataset a<sup>0</sup> · filled: â<sup>0</sup>"),
    )
    return fig


def approximation_error_figure(errors: pd.DataFrame) -> go.Figure:
    """Left: E‖â⁰ − a⁰‖² against the step i (log scale), with the error of guessing the data's mean (dashed).
    Right: its two factors, the network's noise error E‖ε_θ − ε‖² and the schedule's amplification
    (1 − ᾱ_i)/ᾱ_i. ``errors`` is ``approximation_errors(...)``."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "E‖â<sup>0</sup> − a<sup>0</sup>‖²: how far the one-step guess lands",
        "= (1 − ᾱ<sub>i</sub>)/ᾱ<sub>i</sub> × E‖ε<sub>θ</sub> − ε‖²"))
    steps = errors["step"]
    fig.add_trace(go.Scatter(x=steps, y=errors["approximation_error"], mode="lines+markers", name="E‖â⁰ − a⁰‖²",
                             line=dict(color="#0072B2", width=3), marker=dict(size=5),
                             hovertemplate="i=%{x}<br>E‖â⁰ − a⁰‖² = %{y:.4g}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=steps, y=errors["mean_guess_error"], mode="lines",
                             name="always guess the data's mean", line=dict(color="#444444", width=2, dash="dash"),
                             hovertemplate="E‖a⁰ − mean‖² = %{y:.4g}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=steps, y=errors["eps_error"], mode="lines+markers", name="E‖ε<sub>θ</sub> − ε‖² (the network)",
                             line=dict(color="#009E73", width=2.5), marker=dict(size=5),
                             hovertemplate="i=%{x}<br>E‖ε_θ − ε‖² = %{y:.4g}<extra></extra>"), row=1, col=2)
    fig.add_trace(go.Scatter(x=steps, y=errors["amplification"], mode="lines",
                             name="(1 − ᾱ<sub>i</sub>)/ᾱ<sub>i</sub> (the schedule)", line=dict(color="#D55E00", width=2.5),
                             hovertemplate="i=%{x}<br>(1 − ᾱ)/ᾱ = %{y:.4g}<extra></extra>"), row=1, col=2)
    fig.update_xaxes(title_text="diffusion step i of the approximation")
    fig.update_yaxes(type="log", exponentformat="power")
    fig.update_layout(template=TEMPLATE, height=420, margin=dict(t=70, l=60, r=20, b=50),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0))
    return fig


def update_time_figure(timings: pd.DataFrame) -> go.Figure:
    """Bars of milliseconds per policy update for each N, one bar per method, from
    ``dac4rec_lite.timing.time_policy_updates``; above each group, how many times slower the chain is."""
    fig = go.Figure()
    for method, rows in timings.groupby("method", sort=False):
        ms = 1000 * rows["seconds"].to_numpy()
        fig.add_trace(go.Bar(
            x=[f"N = {n}" for n in rows["n_steps"]], y=ms, name=method,
            marker_color=_METHOD_COLORS.get(method, "#444444"), text=[f"{v:.1f} ms" for v in ms], textposition="outside",
            hovertemplate="%{x}: %{y:.2f} ms per update<extra>" + method + "</extra>",
        ))
    wide = timings.pivot(index="n_steps", columns="method", values="seconds")
    if set(_METHOD_COLORS) <= set(wide.columns):
        top = 1000 * wide.max(axis=1)
        for n, ratio in (wide["through the chain"] / wide["action approximation"]).items():
            fig.add_annotation(x=f"N = {n}", y=top[n], yshift=32, showarrow=False,
                               text=f"<b>chain × {ratio:.1f}</b>", font=dict(size=13, color=_METHOD_COLORS["through the chain"]))
    fig.update_yaxes(title_text="milliseconds per policy update", rangemode="tozero")
    fig.update_layout(template=TEMPLATE, height=430, barmode="group", margin=dict(t=90, l=60, r=20, b=50),
                      title=dict(x=0.01, text=("One policy update: L<sub>d</sub> + λL<sub>q</sub>, backward pass, Adam step"
                                               "<br><sup>median over repeats on this machine; the critic's step (the same for both) is not included</sup>")),
                      legend=dict(orientation="h", yanchor="top", y=-0.12, x=0))
    return fig


def approximation_explorer(
    policy: DiffusionPolicy,
    states: object,
    actions: object,
    bandit: CornerBandit | None = None,
    seed: int = 0,
    step: int = 1,
    n_lines: int = 30,
) -> Explorer:
    """A slider over the step i (1 … N) of the action approximation driving ``approximation_figure``: the
    dataset actions a⁰, their noised a^i and the one-step estimates â⁰ (Eq. 13–14), with the same ε (from
    ``seed``) at every step; ▶ walks i from 1 up to N."""
    slider = step_slider(step, 1, policy.n_steps)
    explorer = make_explorer(
        {"step": slider, "play": play_button(slider)},
        lambda: approximation_figure(policy, states, actions, slider.value, seed=seed, bandit=bandit, n_lines=n_lines),
        watch=("step",),
    )
    explorer.message.value = info_html(
        "Small i: a<sup>i</sup> is a<sup>0</sup> plus a little noise and one ε call recovers it almost exactly. "
        "Large i: a<sup>i</sup> is mostly noise and â<sup>0</sup> falls back towards what the network expects on "
        "average, between the blobs. Each point moves along its own path (same ε at every step)."
    )
    return explorer
