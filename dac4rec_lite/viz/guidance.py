"""Notebook 05: energy guidance (Sec. 3.3, Eq. 21–25) on the corner bandit, as figures and slider panels.

``energy_heatmap_figure`` / ``energy_explorer`` draw the intermediate energy f(s, a^i, i) and its gradient;
``score_decomposition_figure`` the three terms of Eq. 24 on one grid, ∇ log μ_i + ω ∇f = ∇ log π_i;
``guided_trajectory_figure`` / ``guided_trajectory_explorer`` unguided against guided chains;
``guidance_scale_figure`` / ``guidance_scale_explorer`` and ``reward_spread_figure`` what the guidance scale
ω does to where actions land. Symbols follow docs/notation.md: ω is the guidance scale (the argument
``scale``; the plots' legends and sliders say "scale"), κ the inverse temperature of the energy's tilt e^{κQ}
(``beta=`` of ``train_energy``). The numbers come from ``dac4rec_lite.experiments.guidance`` and
``experiments.analysis``."""
from __future__ import annotations

from typing import Callable, Mapping

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..data.toy import CornerBandit
from ..diffusion.policy import DiffusionPolicy
from ..diffusion.schedule import VPSchedule
from ..experiments.analysis import guided_score_field
from ..experiments.guidance import energy_grid, grid_axis, guided_sample, q_values
from .style import (
    ELSEWHERE,
    TEMPLATE,
    action_axes,
    arrow_trace,
    as_numpy,
    blob_circles,
    blob_labels,
    cloud_traces,
    first_in_legend,
    path_traces,
)
from .widgets import Explorer, info_html, make_explorer, play_button, step_slider

__all__ = ["energy_heatmap_figure", "score_decomposition_figure", "guided_trajectory_figure", "guidance_scale_figure",
           "reward_spread_figure", "score_decomposition_explorer", "energy_explorer", "guided_trajectory_explorer",
           "guidance_scale_explorer"]

_GUIDANCE_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#000000")
_REFERENCE_COLOR = "#8C8C8C"


def _gradient_arrows(grid: np.ndarray, axis: np.ndarray, every: int, unit: float, max_length: float) -> go.Scatter:
    """Arrows along ∇f (finite differences of the grid) at every ``every``-th grid point: length ``unit`` × |∇f|,
    capped at ``max_length`` so that a cliff in f does not hide every other arrow."""
    spacing = float(axis[1] - axis[0])
    d_rows, d_cols = np.gradient(grid, spacing)  # rows follow a₂, columns a₁
    picked = np.arange(every // 2, len(axis), every)
    rows, cols = np.meshgrid(picked, picked, indexing="ij")
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    vectors = unit * np.stack([d_cols[rows, cols], d_rows[rows, cols]], axis=1)
    length = np.hypot(vectors[:, 0], vectors[:, 1])
    vectors *= np.minimum(1.0, max_length / np.maximum(length, 1e-12))[:, None]
    starts = np.stack([axis[cols], axis[rows]], axis=1)
    return arrow_trace(starts, vectors, "∇<sub>a</sub>f: where guidance pushes a<sup>i</sup>", color="white",
                       min_head=0.15 * max_length).update(legendgroup="gradient")

def energy_heatmap_figure(
    grids: Mapping[str, np.ndarray],
    step: int,
    n_steps: int,
    bandit: CornerBandit | None = None,
    bound: float = 1.5,
    alpha_bar: float | None = None,
    arrows: bool = True,
    context: int = 0,
) -> go.Figure:
    """The intermediate energy (Eq. 23) over the action square at step i, one panel per grid.

    ``grids`` maps a name to ``energy_grid(energy, state, step, resolution, bound)`` (rows a₂, columns a₁).
    Each panel shows f − max f: the energy is only defined up to a constant per (s, i), which the guidance
    ∇_a f does not see, so every panel's best action is 0 and the colour scale is shared. ``arrows`` draws
    ∇_a f (finite differences of the grid), the direction guidance pushes a^i, on one length scale for all
    panels (capped, so that a cliff in f does not shrink every other arrow). With ``bandit`` the blobs and
    their mean rewards are drawn."""
    names = list(grids)
    shifted = {name: np.asarray(grids[name], dtype=float) - np.max(grids[name]) for name in names}
    resolution = next(iter(shifted.values())).shape[0]
    axis = grid_axis(resolution, bound)
    zmin = min(float(z.min()) for z in shifted.values())
    zmin = zmin if zmin < 0 else -1e-6
    titles = [f"<b>{name}</b><br>max f − min f = {float(np.ptp(z)):.2f}" for name, z in shifted.items()]
    n_cols = len(names)
    fig = make_subplots(rows=1, cols=n_cols, subplot_titles=titles, horizontal_spacing=0.06)
    fig.update_annotations(font_size=13)
    spacing = float(axis[1] - axis[0])
    every = max(1, resolution // 9)
    max_length = 0.8 * every * spacing
    typical = np.percentile(np.concatenate([np.hypot(*np.gradient(z, spacing)).ravel() for z in shifted.values()]), 90)
    unit = max_length / max(float(typical), 1e-12)
    for col, (name, z) in enumerate(shifted.items(), start=1):
        fig.add_trace(go.Heatmap(
            z=z, x=axis, y=axis, zmin=zmin, zmax=0, colorscale="Viridis", zsmooth="best", name=name,
            showscale=col == n_cols, colorbar=dict(title="f − max f", len=0.8),
            hovertemplate=("a<sub>1</sub>=%{x:.2f}, a<sub>2</sub>=%{y:.2f}<br>f − max f = %{z:.3f}<extra>"
                           + name + "</extra>"),
        ), row=1, col=col)
        if arrows:
            arrows_trace = _gradient_arrows(z, axis, every, unit, max_length).update(showlegend=col == 1)
            fig.add_trace(arrows_trace, row=1, col=col)
    if bandit is not None:
        blob_circles(fig, bandit, n_cols, context)
    action_axes(fig, n_cols)
    ab = "" if alpha_bar is None else f", √ᾱ<sub>i</sub> = {np.sqrt(alpha_bar):.3f}"
    fig.update_layout(
        template=TEMPLATE, height=460, margin=dict(t=115, l=50, r=20, b=40),
        title=dict(x=0.01, y=0.97, text=(
            f"Intermediate energy f(s, a<sup>i</sup>, i) at step i = {step} of {n_steps}{ab}<br><sup>shown: "
            "f − max f (a constant per (s, i) is invisible to ∇f); arrows: ∇<sub>a</sub>f on one length scale "
            "for all panels, capped</sup>")),
        legend=dict(orientation="h", yanchor="top", y=-0.12, x=0),
    )
    return fig


_TERMS = (("prior", "∇log μ<sub>i</sub>: the behaviour (−ε<sub>θ</sub> / √(1−ᾱ<sub>i</sub>))", "#0072B2"),
          ("energy", "+ ω·∇f: the energy's push (ω = scale)", "#D55E00"),
          ("guided", "= ∇log π<sub>i</sub>: what the sampler follows", "#009E73"))


def score_decomposition_figure(
    policy: DiffusionPolicy,
    energy: Callable,
    state: object,
    step: int,
    scale: float = 1.0,
    bandit: CornerBandit | None = None,
    resolution: int = 11,
    bound: float = 1.5,
    context: int = 0,
) -> go.Figure:
    """Notebook 05: energy guidance as a sum of arrows at step i, ∇ log μ_i + ω ∇f = ∇ log π_i (Eq. 24),
    on one grid of a^i for one ``state``, three panels.

    Left: the behaviour's score from the trained ε-network, −ε_θ(s, a, i) / √(1 − ᾱ_i). Middle: the push
    ``EnergyGuidance(energy, scale)`` adds, ω ∇_a f(s, a, i) with ω = ``scale``, over the energy f − max f as a
    faint heatmap (its trace is named "scale·∇f"). Right: their sum, the score of the guided policy π_i that the
    sampler follows (it uses ε̃ = ε_θ − ω √(1 − ᾱ_i) ∇f). The numbers are ``guided_score_field(...)``; all three
    panels share one length scale (the longest arrow of the three spans 0.9 of a grid cell), so the right panel's
    arrows are the left and middle ones added tip to tail. Arguments: ``policy`` the behaviour ``DiffusionPolicy``,
    ``energy`` an ``EnergyModel`` or any ``energy(state, a_i, i)`` (e.g. ``bandit_energy(...)``), ``state``
    one state of the policy (the bandit's observation for ``context``), ``step`` i in 1..N; with ``bandit``
    the blobs and their rewards in ``context`` are drawn."""
    field = guided_score_field(policy, energy, state, step, scale, resolution, bound)
    starts = field[["a1", "a2"]].to_numpy()
    vectors = {term: field[[f"{term}1", f"{term}2"]].to_numpy() for term, _, _ in _TERMS}
    spacing = 2 * bound / (resolution - 1)
    longest = max(float(np.hypot(v[:, 0], v[:, 1]).max()) for v in vectors.values())
    unit = 0.9 * spacing / max(longest, 1e-12)
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.05, subplot_titles=[title for _, title, _ in _TERMS])
    fig.update_annotations(font_size=13)
    axis = grid_axis(resolution, bound)
    f = field["f"].to_numpy().reshape(resolution, resolution)
    fig.add_trace(go.Heatmap(z=f - f.max(), x=axis, y=axis, colorscale="Greys", reversescale=True, opacity=0.45,
                             zsmooth="best", showscale=False, name="f − max f",
                             hovertemplate="a<sub>1</sub>=%{x:.2f}, a<sub>2</sub>=%{y:.2f}<br>f − max f = %{z:.3f}<extra></extra>"),
                  row=1, col=2)
    for col, (term, title, color) in enumerate(_TERMS, start=1):
        name = {"prior": "∇log μ<sub>i</sub>", "energy": "scale·∇f", "guided": "∇log π<sub>i</sub>"}[term]
        fig.add_trace(arrow_trace(starts, unit * vectors[term], name, color=color, min_head=0.15 * spacing),
                      row=1, col=col)
    if bandit is not None:
        blob_circles(fig, bandit, 3, context)
    action_axes(fig, 3, bound)
    alpha_bar = field.attrs["alpha_bar"]
    fig.update_layout(
        template=TEMPLATE, height=470, margin=dict(t=120, l=50, r=20, b=40),
        title=dict(x=0.01, y=0.97, text=(
            f"Energy guidance at step i = {step} of {policy.n_steps}, ω = {scale:g} (Eq. 24): "
            f"∇log μ<sub>i</sub> + ω·∇f = ∇log π<sub>i</sub><br><sup>√(1−ᾱ<sub>i</sub>) = {np.sqrt(1 - alpha_bar):.3f}; "
            f"one length scale for the three panels: the longest arrow ({longest:.3g}) spans 0.9 of a grid cell</sup>")),
        legend=dict(orientation="h", yanchor="top", y=-0.12, x=0),
    )
    return fig


def guided_trajectory_figure(
    trajectories: Mapping[str, object],
    step: int,
    bandit: CornerBandit,
    n_paths: int = 4,
    context: int = 0,
) -> go.Figure:
    """Reverse chains side by side at step i, e.g. unguided and energy-guided from the same generator seed.

    ``trajectories`` maps a name to ``policy.sample(..., return_trajectory=True)[1]`` ((N+1, B, 2), ``[0]`` =
    a^N); step i is ``trajectory[N - i]``. Points are coloured by the blob their chain ends on; a few chains
    are followed as lines. Each title gives the share of chains that end on the best blob."""
    trajs = {name: as_numpy(t) for name, t in trajectories.items()}
    n_steps = next(iter(trajs.values())).shape[0] - 1
    if not 0 <= step <= n_steps:
        raise ValueError(f"step must be in 0..{n_steps}, got {step}.")
    best_name = bandit.blob_names[bandit.best_blob(context)]
    labels = {name: blob_labels(bandit, t[-1]) for name, t in trajs.items()}
    titles = [f"<b>{name}</b><br>{np.mean(labels[name] == best_name):.0%} of chains end on {best_name}"
              for name in trajs]
    n_cols = len(trajs)
    fig = make_subplots(rows=1, cols=n_cols, subplot_titles=titles, horizontal_spacing=0.05)
    fig.update_annotations(font_size=13)
    order = [*bandit.blob_names, ELSEWHERE]
    shown: set[str] = set()
    for col, (name, traj) in enumerate(trajs.items(), start=1):
        for trace in cloud_traces(traj[n_steps - step], labels[name], order, "ends on", "a<sup>i</sup>", size=4):
            trace.showlegend = first_in_legend(trace, shown)
            fig.add_trace(trace, row=1, col=col)
        for trace in path_traces(traj, step, n_paths, showlegend=col == 1):
            fig.add_trace(trace, row=1, col=col)
    blob_circles(fig, bandit, n_cols, context)
    action_axes(fig, n_cols)
    fig.update_layout(template=TEMPLATE, height=500, margin=dict(t=115, l=50, r=20, b=40),
                      title=dict(x=0.01, y=0.97, text=(
                          f"Reverse chains at step i = {step} ({n_steps - step} of {n_steps} denoising steps done)"
                          "<br><sup>same starting noise and same random numbers in every panel</sup>")),
                      legend=dict(title="colour = blob the chain ends on", orientation="h", yanchor="top", y=-0.12,
                                  x=0, itemsizing="constant"))
    return fig


def guidance_scale_figure(
    actions: Mapping[str, object],
    q_values: Mapping[str, object],
    bandit: CornerBandit,
    context: int = 0,
    title: str | None = None,
) -> go.Figure:
    """Where sampled actions land and what the critic thinks of them, for several sets of samples.

    ``actions`` maps a name to (n, 2) actions and ``q_values`` the same names to Q(s, a) of those actions.
    Left: the last set on the action plane (coloured by blob). Middle: histograms of Q for every set (the
    first one grey, as the reference). Right: the share of each set on each blob and off all blobs."""
    names = list(actions)
    acts = {name: as_numpy(actions[name]) for name in names}
    obs = bandit.observations(context, len(next(iter(acts.values()))))
    best_name = bandit.blob_names[bandit.best_blob(context)]
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.08, column_widths=[0.34, 0.33, 0.33], subplot_titles=(
        f"<b>{names[-1]}</b>: actions", "Q<sub>φ</sub>(s, a) of the samples", "share of samples per blob"))
    fig.update_annotations(font_size=13)
    order = [*bandit.blob_names, ELSEWHERE]
    for trace in cloud_traces(acts[names[-1]], blob_labels(bandit, acts[names[-1]]), order, "on", "action",
                               size=4, opacity=0.5):
        trace.showlegend = False
        fig.add_trace(trace, row=1, col=1)
    blob_circles(fig, bandit, 1, context)
    action_axes(fig, 1)
    all_q = np.concatenate([as_numpy(q_values[name]).reshape(-1) for name in names])
    bins = dict(start=float(all_q.min()) - 0.05, end=float(all_q.max()) + 0.05,
                size=max(float(np.ptp(all_q)) / 30, 1e-3))
    categories = [*bandit.blob_names, "off blobs"]
    for position, name in enumerate(names):
        color = _REFERENCE_COLOR if position == 0 else _GUIDANCE_COLORS[(position - 1) % len(_GUIDANCE_COLORS)]
        fig.add_trace(go.Histogram(x=as_numpy(q_values[name]).reshape(-1), xbins=bins, name=name, legendgroup=name,
                                   marker_color=color, opacity=0.55, histnorm="probability"), row=1, col=2)
        labels = blob_labels(bandit, acts[name])
        shares = [float(np.mean(labels == b)) for b in bandit.blob_names] + [float(np.mean(labels == ELSEWHERE))]
        fig.add_trace(go.Bar(x=categories, y=shares, name=name, legendgroup=name, showlegend=False, marker_color=color,
                             text=[f"{s:.0%}" for s in shares], textposition="outside",
                             hovertemplate="%{x}: %{y:.1%}<extra>" + name + "</extra>"), row=1, col=3)
    fig.update_xaxes(title_text="Q<sub>φ</sub>(s, a)", row=1, col=2)
    fig.update_yaxes(title_text="share of samples", row=1, col=2)
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%", row=1, col=3)
    if title is None:
        parts = []
        for name in names:
            labels = blob_labels(bandit, acts[name])
            reward = float(bandit.true_reward(obs, acts[name]).mean())
            parts.append(f"{name}: {np.mean(labels == best_name):.0%} on {best_name}, mean reward {reward:.2f}")
        title = parts[-1] + (f"<br><sup>{' · '.join(parts[:-1])}</sup>" if len(parts) > 1 else "")
    fig.update_layout(template=TEMPLATE, height=470, margin=dict(t=110, l=50, r=20, b=40), bargap=0.15,
                      title=dict(x=0.01, y=0.97, text=title), barmode="group",
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0.36))
    return fig


def reward_spread_figure(tables: Mapping[str, pd.DataFrame] | pd.DataFrame) -> go.Figure:
    """The variance-reduction picture from ``reward_spread_by_scale``: against the guidance scale ω, the mean true
    reward (error bars: its std over seeds), the std of the mean reward over seeds, and the best-blob share;
    one line per table."""
    if isinstance(tables, pd.DataFrame):
        tables = {"guided": tables}
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.08, subplot_titles=(
        "mean true reward (± std over seeds)", "std of the mean reward over seeds", "share on the best blob"))
    fig.update_annotations(font_size=13)
    for position, (name, table) in enumerate(tables.items()):
        color = _GUIDANCE_COLORS[position % len(_GUIDANCE_COLORS)]
        common = dict(mode="lines+markers", name=name, legendgroup=name, line=dict(color=color, width=2.5))
        fig.add_trace(go.Scatter(x=table["scale"], y=table["mean_reward"], showlegend=True,
                                 error_y=dict(type="data", array=table["std_of_mean_reward"], visible=True),
                                 hovertemplate="ω = %{x}<br>mean reward %{y:.3f}<extra>" + name + "</extra>",
                                 **common), row=1, col=1)
        fig.add_trace(go.Scatter(x=table["scale"], y=table["std_of_mean_reward"], showlegend=False,
                                 hovertemplate="ω = %{x}<br>std over seeds %{y:.4f}<extra>" + name + "</extra>",
                                 **common), row=1, col=2)
        fig.add_trace(go.Scatter(x=table["scale"], y=table["best_blob"], showlegend=False,
                                 hovertemplate="ω = %{x}<br>best blob %{y:.1%}<extra>" + name + "</extra>",
                                 **common), row=1, col=3)
    fig.update_xaxes(title_text="guidance scale ω")
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", row=1, col=3)
    fig.update_layout(template=TEMPLATE, height=400, margin=dict(t=60, l=50, r=20, b=50),
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0))
    return fig


def energy_explorer(
    energies: dict[str, Callable],
    state: object,
    schedule: VPSchedule,
    bandit: CornerBandit | None = None,
    resolution: int = 41,
    bound: float = 1.5,
    step: int = 1,
    context: int = 0,
) -> Explorer:
    """A slider over the step i (1 … N) driving ``energy_heatmap_figure`` for several energies side by side
    (e.g. {"CEP": f_cep, "MSE": f_mse, "exact": ℰ}), all for one ``state``; ▶ walks i from N down to 1 as
    sampling does. Grids are computed with ``energy_grid`` once per step and cached
    (``explorer.grids_at(i)`` returns them)."""
    cache: dict[int, dict[str, np.ndarray]] = {}

    def grids_at(i: int) -> dict[str, np.ndarray]:
        if i not in cache:
            cache[i] = {name: energy_grid(e, state, i, resolution, bound) for name, e in energies.items()}
        return cache[i]

    slider = step_slider(step, 1, schedule.n_steps)
    explorer = make_explorer(
        {"step": slider, "play": play_button(slider, reverse=True)},
        lambda: energy_heatmap_figure(grids_at(slider.value), slider.value, schedule.n_steps, bandit=bandit,
                                      bound=bound, alpha_bar=float(schedule.alphas_cumprod[slider.value - 1]),
                                      context=context),
        watch=("step",),
    )
    explorer.grids_at = grids_at
    explorer.message.value = info_html(
        "Large i: a<sup>i</sup> is mostly noise, so f is a smooth, gentle slope towards the good corner. Small i: "
        "f has the shape of the reward itself (Eq. 23 with ℰ<sub>0</sub> = κQ). The white lines are the guidance ∇f."
    )
    return explorer


def guided_trajectory_explorer(
    policy: DiffusionPolicy,
    energy: Callable,
    bandit: CornerBandit,
    scale: float = 1.0,
    n: int = 300,
    seed: int = 0,
    context: int = 0,
    n_paths: int = 4,
) -> Explorer:
    """Unguided and guided reverse chains side by side (``guided_trajectory_figure``), drawn once with the same
    generator seed, so the two panels start from the same a^N and use the same random numbers; a slider over
    i and ▶ (from N down to 0). ``explorer.trajectories`` holds the two (N+1, n, 2) arrays."""
    states = torch.as_tensor(bandit.observations(context, n), device=policy.device)
    trajectories = {
        "unguided": guided_sample(policy, None, states, seed=seed, return_trajectory=True)[1].cpu().numpy(),
        f"energy-guided, scale {scale:g}": guided_sample(policy, energy, states, scale=scale, seed=seed,
                                                         return_trajectory=True)[1].cpu().numpy(),
    }
    slider = step_slider(policy.n_steps, 0, policy.n_steps)
    explorer = make_explorer(
        {"step": slider, "play": play_button(slider, reverse=True)},
        lambda: guided_trajectory_figure(trajectories, slider.value, bandit, n_paths=n_paths, context=context),
        watch=("step",),
    )
    explorer.trajectories = trajectories
    explorer.message.value = info_html(
        "Press ▶ or drag from i = N to 0. At i = N both panels are the same noise; guidance adds a small push "
        "at every step, so the guided chains drift towards the best blob long before they commit to one."
    )
    return explorer


def guidance_scale_explorer(
    policy: DiffusionPolicy,
    energies: dict[str, Callable],
    critic: Callable,
    bandit: CornerBandit,
    n: int = 500,
    seed: int = 0,
    context: int = 0,
    scale: float = 1.0,
    max_scale: float = 6.0,
) -> Explorer:
    """A dropdown over ``energies`` and a slider over the guidance scale ω (``scale``) driving
    ``guidance_scale_figure``: ``n`` guided actions against ``n`` unguided ones from the same seed, their Q under
    ``critic`` and their blobs. Samples are drawn when a (energy, ω) pair is first shown and cached
    (``explorer.samples_for(name, scale)``)."""
    states = torch.as_tensor(bandit.observations(context, n), device=policy.device)
    cache: dict[tuple[str | None, float], np.ndarray] = {}

    def samples_for(name: str | None, s: float) -> np.ndarray:
        key = (None, 0.0) if name is None or s == 0 else (name, float(s))
        if key not in cache:
            energy = None if key[0] is None else energies[key[0]]
            cache[key] = guided_sample(policy, energy, states, scale=key[1], seed=seed).cpu().numpy()
        return cache[key]

    dropdown = widgets.Dropdown(options=list(energies), description="energy", layout=widgets.Layout(width="220px"))
    slider = widgets.FloatSlider(value=scale, min=0.0, max=max_scale, step=0.25, description="scale",
                                 continuous_update=False, layout=widgets.Layout(width="420px"))

    def build() -> go.Figure:
        plain = samples_for(None, 0.0)
        guided = samples_for(dropdown.value, slider.value)
        name = f"{dropdown.value}, scale {slider.value:g}"
        return guidance_scale_figure(
            {"unguided": plain, name: guided},
            {"unguided": q_values(critic, states, torch.as_tensor(plain)),
             name: q_values(critic, states, torch.as_tensor(guided))},
            bandit, context=context)

    explorer = make_explorer({"energy": dropdown, "scale": slider}, build, watch=("energy", "scale"))
    explorer.samples_for = samples_for
    explorer.message.value = info_html(
        "Guidance scale ω = 0 (the slider \"scale\") is the behaviour policy; ω = 1 targets π* ∝ exp(κQ) μ "
        "(Eq. 21), κ the energy's inverse temperature; larger ω sharpen it further (roughly a larger κ). Watch the "
        "share on the best blob and the Q histogram move right."
    )
    return explorer


def score_decomposition_explorer(
    policy: DiffusionPolicy,
    energy: Callable,
    state: object,
    bandit: CornerBandit | None = None,
    scale: float = 1.0,
    max_scale: float = 6.0,
    step: int = 1,
    resolution: int = 11,
    context: int = 0,
) -> Explorer:
    """Notebook 05: a slider over the step i (1 … N), ▶ (from N down to 1) and a slider over the guidance
    scale ω (``scale``) driving ``score_decomposition_figure`` for one ``state``: watch the energy's push take
    over from the behaviour's score as i → 1, and grow with ω (ω = 0: the right panel is the left one)."""
    slider = step_slider(step, 1, policy.n_steps)
    scale_slider = widgets.FloatSlider(value=scale, min=0.0, max=max_scale, step=0.25, description="scale",
                                       continuous_update=False, layout=widgets.Layout(width="320px"))
    explorer = make_explorer(
        {"step": slider, "play": play_button(slider, reverse=True), "scale": scale_slider},
        lambda: score_decomposition_figure(policy, energy, state, slider.value, scale=scale_slider.value,
                                           bandit=bandit, resolution=resolution, context=context),
        watch=("step", "scale"),
    )
    explorer.message.value = info_html(
        "Left + middle = right, arrow by arrow (Eq. 24). Large i: the behaviour's score pulls every a<sup>i</sup> to "
        "the middle and the energy's push is a gentle slope. Small i: the push points at the best blob."
    )
    return explorer
