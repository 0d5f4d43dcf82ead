"""Notebook 02: the reverse chain as a policy, as figures and slider panels.

``trajectory_figure`` / ``trajectory_explorer`` follow the reverse chain (Eq. 5/7) from noise to actions;
``score_field_figure`` / ``score_field_explorer`` draw the learned score ∇ log μ_i = −ε_θ / √(1 − ᾱ_i) as
arrows over the action plane beside the chain's samples; ``policy_comparison_figure`` sets the diffusion
policy beside a Gaussian one; ``loss_figure``, ``discretisation_figure`` and ``sampler_tradeoff_figure``
show training, the exact discretisation error and the fast samplers' trade-off."""
from __future__ import annotations

from typing import Mapping, Sequence

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..data.toy import MultimodalBehavior
from ..diffusion.analysis import gaussian_chain_moments, gaussian_chain_path
from ..diffusion.policy import DiffusionPolicy
from ..diffusion.schedule import VPSchedule
from ..experiments.analysis import score_field
from .style import (
    ELSEWHERE,
    TEMPLATE,
    action_axes,
    arrow_trace,
    as_numpy,
    cloud_traces,
    first_in_legend,
    label_order,
    mode_circles,
    mode_labels,
    path_traces,
)
from .widgets import Explorer, info_html, make_explorer, play_button, step_slider

__all__ = ["trajectory_figure", "policy_comparison_figure", "loss_figure", "discretisation_figure",
           "SAMPLER_COLORS", "sampler_tradeoff_figure", "trajectory_explorer", "score_field_figure",
           "score_field_explorer"]


def trajectory_figure(
    trajectory: object,
    step: int,
    toy: MultimodalBehavior | None = None,
    user: int | None = None,
    n_paths: int = 4,
    title: str | None = None,
) -> go.Figure:
    """The reverse chain (Eq. 5/7) at step i: the cloud of a^i and the paths of ``n_paths`` samples from
    a^N to a^i.

    ``trajectory`` is ``DiffusionPolicy.sample(..., return_trajectory=True)[1]``, (N+1, B, 2) with
    ``trajectory[0]`` = a^N and ``trajectory[-1]`` = a^0, so step i is ``trajectory[N - i]``. With ``toy``,
    points are coloured by the mode their chain ends on (so at i = N you see which noise goes where) and
    the modes ``user`` likes are drawn solid."""
    traj = as_numpy(trajectory)
    n_steps = traj.shape[0] - 1
    if not 0 <= step <= n_steps:
        raise ValueError(f"step must be in 0..{n_steps}, got {step}.")
    cloud = traj[n_steps - step]
    labels = mode_labels(toy, traj[-1]) if toy is not None else None
    order = label_order(labels, toy) if toy is not None else []
    fig = make_subplots(rows=1, cols=1)
    for trace in cloud_traces(cloud, labels, order, "ends on", "a<sup>i</sup>"):
        fig.add_trace(trace)
    for trace in path_traces(traj, step, n_paths):
        fig.add_trace(trace)
    if toy is not None:
        mode_circles(fig, toy, user, 1)
    action_axes(fig, 1)
    if title is None:
        who = "" if user is None else f" for user {user}"
        title = f"Reverse chain{who}: step i = {step} ({n_steps - step} of {n_steps} denoising steps done)"
    subtitle = ""
    if toy is not None and user is not None:
        fractions = toy.mode_fractions(traj[-1], user)
        ends = ", ".join(f"{k} {v:.0%}" for k, v in fractions.items())
        subtitle = f"<br><sup>where the chains end (i = 0): {ends}</sup>"
    fig.update_layout(template=TEMPLATE, height=560, margin=dict(t=80, l=60, r=20, b=50),
                      title=dict(text=title + subtitle, x=0.01),
                      legend=dict(title="colour = mode the chain ends on" if toy is not None else None,
                                  itemsizing="constant"))
    return fig


def policy_comparison_figure(
    diffusion_actions: object,
    gaussian_actions: object,
    toy: MultimodalBehavior,
    user: int,
    data_actions: object | None = None,
) -> go.Figure:
    """Side-by-side scatter of actions for one user: (the logged data,) the diffusion policy, the Gaussian
    policy. Points are coloured by the mode they land on (grey: on no liked mode); each title gives the
    share that lands on a mode the user likes."""
    panels = {} if data_actions is None else {"logged data": as_numpy(data_actions)}
    panels["diffusion policy"] = as_numpy(diffusion_actions)
    panels["Gaussian policy"] = as_numpy(gaussian_actions)
    liked = {toy.mode_names[m] for m in toy.likes[user]}
    titles = []
    for name, actions in panels.items():
        on_liked = 1 - toy.mode_fractions(actions, user)[ELSEWHERE]
        titles.append(f"<b>{name}</b><br>{on_liked:.0%} on liked modes")
    n_cols = len(panels)
    fig = make_subplots(rows=1, cols=n_cols, subplot_titles=titles, horizontal_spacing=0.05)
    fig.update_annotations(font_size=13)
    order = [*toy.mode_names, ELSEWHERE]
    shown: set[str] = set()
    for col, actions in enumerate(panels.values(), start=1):
        labels = mode_labels(toy, actions)
        labels = np.where(np.isin(labels, list(liked)), labels, ELSEWHERE)
        for trace in cloud_traces(actions, labels, order, "on", "action", size=4, opacity=0.5):
            trace.showlegend = first_in_legend(trace, shown)
            fig.add_trace(trace, row=1, col=col)
    mode_circles(fig, toy, user, n_cols)
    action_axes(fig, n_cols)
    liked_names = ", ".join(toy.mode_names[m] for m in toy.likes[user])
    fig.update_layout(template=TEMPLATE, height=460, margin=dict(t=110, l=50, r=20, b=40),
                      title=dict(y=0.97, x=0.01,
                                 text=f"User {user} likes {liked_names}: whose actions land on those items?"),
                      legend=dict(title="lands on", orientation="h", yanchor="top", y=-0.2, x=0, itemsizing="constant"))
    return fig


def loss_figure(histories: Mapping[str, pd.DataFrame] | pd.DataFrame, smooth: int = 10) -> go.Figure:
    """Training curves from ``train_behavior_cloning``: one panel per run (their losses have different
    units), the logged minibatch loss faint and its rolling mean over ``smooth`` logs solid."""
    if isinstance(histories, pd.DataFrame):
        histories = {"loss": histories}
    names = list(histories)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.1)
    for col, name in enumerate(names, start=1):
        history = histories[name]
        fig.add_trace(go.Scatter(x=history["step"], y=history["loss"], mode="lines", name=f"{name}: minibatch",
                                 line=dict(color="#56B4E9", width=1), opacity=0.6,
                                 hovertemplate="step %{x}<br>loss %{y:.4f}<extra></extra>"), row=1, col=col)
        fig.add_trace(go.Scatter(x=history["step"], y=history["loss"].rolling(smooth, min_periods=1).mean(),
                                 mode="lines", name=f"{name}: rolling mean", line=dict(color="#0072B2", width=2.5),
                                 hovertemplate="step %{x}<br>mean %{y:.4f}<extra></extra>"), row=1, col=col)
        fig.update_xaxes(title_text="training step", row=1, col=col)
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_layout(template=TEMPLATE, height=360, showlegend=False, margin=dict(t=60, l=60, r=20, b=50))
    return fig


def discretisation_figure(
    n_steps_list: Sequence[int] = (2, 5, 10, 20, 50, 100, 200, 500, 1000),
    stds: Sequence[float] = (0.02, 0.06, 0.2),
    mean: float = 0.6,
    path_n_steps: int = 50,
    beta_min: float = 0.1,
    beta_max: float = 10.0,
) -> go.Figure:
    """Discretisation error of the N-step reverse chain with a perfect ε, for data N(mean, σ²).

    Left: final standard deviation / σ against N (log axis) for several σ, with the posterior variance β̃_i
    (solid) and β_i (dashed); 1 is the data's spread. Right: the variance of a^i along one chain
    (N = ``path_n_steps``, σ = the middle of ``stds``) divided by that of the forward marginal q(a^i) it
    should match: it stays at 1 until the last step, which returns E[a^0 | a^1] with no noise added.
    Everything is exact (``gaussian_chain_moments``), so any gap is the sampler's, not training's."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "Output spread / data spread σ",
        f"Along one chain (N = {path_n_steps}, σ = {stds[len(stds) // 2]:g})"))
    colours = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00"]
    for position, std in enumerate(stds):
        for variance, dash in (("posterior", "solid"), ("beta", "dash")):
            ratios = []
            for n in n_steps_list:
                _, var = gaussian_chain_moments(VPSchedule(n, beta_min, beta_max), mean, std, variance)
                ratios.append(np.sqrt(var) / std)
            label = "β̃<sub>i</sub> (posterior)" if variance == "posterior" else "β<sub>i</sub>"
            fig.add_trace(go.Scatter(
                x=list(n_steps_list), y=ratios, mode="lines+markers", name=f"σ = {std:g}, {label}",
                line=dict(color=colours[position % len(colours)], dash=dash, width=2),
                hovertemplate="N=%{x}<br>std / σ = %{y:.3f}<extra>" + f"σ = {std:g}, {variance}</extra>",
            ), row=1, col=1)
    fig.add_hline(y=1, line=dict(color="#444444", width=1, dash="dot"), row=1, col=1)
    std = stds[len(stds) // 2]
    schedule = VPSchedule(path_n_steps, beta_min, beta_max)
    for variance, dash in (("posterior", "solid"), ("beta", "dash")):
        path = gaussian_chain_path(schedule, mean, std, variance)
        label = "β̃<sub>i</sub> (posterior)" if variance == "posterior" else "β<sub>i</sub>"
        fig.add_trace(go.Scatter(
            x=path["step"], y=np.sqrt(path["variance"] / path["target_variance"]), mode="lines+markers",
            name=f"along the chain, {label}", line=dict(color="#000000", dash=dash, width=2), marker=dict(size=4),
            customdata=np.stack([path["variance"], path["target_variance"]], axis=1),
            hovertemplate=("i=%{x}<br>std ratio %{y:.3f}<br>Var a<sup>i</sup> = %{customdata[0]:.5f}"
                           "<br>target %{customdata[1]:.5f}<extra>" + variance + "</extra>"),
        ), row=1, col=2)
    fig.add_hline(y=1, line=dict(color="#444444", width=1, dash="dot"), row=1, col=2)
    fig.update_xaxes(type="log", title_text="number of diffusion steps N", row=1, col=1)
    fig.update_yaxes(title_text="std of a<sup>0</sup> / σ", range=[0, 1.2], row=1, col=1)
    fig.update_xaxes(title_text="diffusion step i (sampling runs left to right, N → 0)",
                     range=[path_n_steps + 0.02 * path_n_steps + 0.5, -0.02 * path_n_steps - 0.5], row=1, col=2)
    fig.update_yaxes(title_text="std of a<sup>i</sup> / std of q(a<sup>i</sup>)", rangemode="tozero", row=1, col=2)
    fig.update_layout(template=TEMPLATE, height=470, margin=dict(t=70, l=60, r=20, b=50),
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0))
    return fig


SAMPLER_COLORS = {"ddpm": "#000000", "ddim": "#0072B2", "dpm": "#D55E00"}


def sampler_tradeoff_figure(table: pd.DataFrame, metric_name: str) -> go.Figure:
    """``dl.timing.time_samplers``' table as two panels sharing the x axis (ε-network passes): the metric and
    the seconds, one line per sampler."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(metric_name, "seconds per batch"), horizontal_spacing=0.12)
    for sampler, rows in table.sort_values("eps_calls").groupby("sampler", sort=False):
        color = SAMPLER_COLORS.get(sampler, "#999999")
        for col, column in ((1, "metric"), (2, "seconds")):
            fig.add_trace(go.Scatter(
                x=rows["eps_calls"], y=rows[column], mode="lines+markers", name=sampler, legendgroup=sampler,
                showlegend=col == 1, line=dict(color=color), marker=dict(size=9),
                hovertemplate=f"{sampler}: %{{x}} ε passes<br>{column} %{{y:.4g}}<extra></extra>"), row=1, col=col)
        for col in (1, 2):
            fig.update_xaxes(title_text="ε-network passes per sample", type="log", row=1, col=col)
    fig.update_layout(template=TEMPLATE, height=380, margin=dict(t=60, l=60, r=20, b=60),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0))
    return fig


def trajectory_explorer(
    policy: DiffusionPolicy,
    toy: MultimodalBehavior,
    n: int = 500,
    seed: int = 0,
    variance: str = "posterior",
    n_paths: int = 4,
    user: int = 0,
) -> Explorer:
    """A user dropdown and a slider over i driving ``trajectory_figure``: ``n`` reverse chains of
    ``policy`` for that user's state, drawn once per user with ``torch.Generator().manual_seed(seed)``
    (so every user is shown with the same starting noise a^N). ▶ runs the chain from i = N down to 0.
    ``explorer.trajectory_of(user)`` returns that user's cached trajectory (N+1, n, 2)."""
    cache: dict[int, np.ndarray] = {}

    def trajectory_of(u: int) -> np.ndarray:
        if u not in cache:
            cache[u] = _reverse_chain(policy, toy, u, n, seed, variance)
        return cache[u]

    dropdown = _user_dropdown(toy, user)
    slider = step_slider(policy.n_steps, 0, policy.n_steps)
    explorer = make_explorer(
        {"user": dropdown, "step": slider, "play": play_button(slider, reverse=True)},
        lambda: trajectory_figure(trajectory_of(dropdown.value), slider.value, toy=toy, user=dropdown.value,
                                  n_paths=n_paths),
        watch=("user", "step"),
    )
    explorer.trajectory_of = trajectory_of
    explorer.message.value = info_html(
        "Sampling runs from i = N (pure noise) down to i = 0 (the action): drag the slider to the left or "
        "press ▶. Colours say which mode each chain ends on; the open circles and thin lines follow a few chains."
    )
    return explorer


def _reverse_chain(policy: DiffusionPolicy, toy: MultimodalBehavior, user: int, n: int, seed: int,
                   variance: str = "posterior") -> np.ndarray:
    """``n`` reverse chains for ``user``'s state as (N+1, n, 2), ``[0]`` = a^N, from a generator seeded ``seed``."""
    states = torch.as_tensor(toy.states_for(user, n), device=policy.device)
    generator = torch.Generator(device=policy.device).manual_seed(seed)
    with torch.no_grad():
        _, trajectory = policy.sample(states, generator=generator, return_trajectory=True, variance=variance)
    return trajectory.cpu().numpy()


def _user_dropdown(toy: MultimodalBehavior, user: int) -> widgets.Dropdown:
    options = [(f"user {u}: likes {', '.join(toy.mode_names[m] for m in toy.likes[u])}", u) for u in range(toy.n_users)]
    return widgets.Dropdown(options=options, value=user, description="state s", layout=widgets.Layout(width="260px"))


def _denoising_arrows(field: pd.DataFrame) -> np.ndarray:
    """−√(1 − ᾱ_i) ε_θ = (1 − ᾱ_i) ∇ log μ_i at each grid point: the noise part of a^i the network would
    remove, from a^i to √ᾱ_i â⁰ (Eq. 14); it points along the score."""
    return (1 - field.attrs["alpha_bar"]) * field[["score1", "score2"]].to_numpy()


def _arrow_scale(policy: DiffusionPolicy, state: np.ndarray, resolution: int) -> float:
    """The drawing scale that makes the longest arrow at i = N span one grid cell of [-1.5, 1.5]²."""
    longest = np.hypot(*_denoising_arrows(score_field(policy, state, policy.n_steps, resolution)).T).max()
    return 3.0 / (resolution - 1) / max(float(longest), 1e-12)


def score_field_figure(
    policy: DiffusionPolicy,
    toy: MultimodalBehavior,
    step: int,
    user: int = 0,
    n: int = 300,
    seed: int = 0,
    resolution: int = 15,
    arrow_scale: float | None = None,
    trajectory: object | None = None,
    same_scale: bool = True,
) -> go.Figure:
    """Notebook 02: what the trained ε-network knows at step i, as arrows over the action plane (left) beside
    the chain's samples a^i at that step (right), for ``user``'s state.

    The network's noise guess is a score: ∇ log μ_i(a) = −ε_θ(s, a, i) / √(1 − ᾱ_i) (``score_field``). Each
    arrow is (1 − ᾱ_i) ∇ log μ_i = −√(1 − ᾱ_i) ε_θ, the noise the network would remove from a^i = a: it
    starts at a, points along the score and ends at √ᾱ_i â⁰. Far from the data (large i) every arrow points
    at the middle of the behaviour; as i → 1 they shrink (little noise is left) and sharpen (each points at
    its nearest mode). Arrows are drawn ``arrow_scale`` × their true length; by default the scale makes the
    longest arrow at i = N span one grid cell, the same for every i of this policy and state, so the arrows
    of different steps can be compared. ``same_scale=False`` instead rescales at every step so that this step's
    longest arrow spans one cell: lengths can no longer be compared across steps, directions can be read at
    every step (small i: each arrow points at its nearest mode).

    ``trajectory`` (``policy.sample(..., return_trajectory=True)[1]`` for ``n`` copies of the state) is
    drawn when not given, with ``torch.Generator().manual_seed(seed)``; pass it to reuse one draw across steps.
    Arguments: ``policy`` a ``DiffusionPolicy`` on ``toy``'s states, ``toy`` the ``MultimodalBehavior``,
    ``step`` i in 1..N, ``resolution`` arrows per side of the grid over [-1.5, 1.5]²."""
    n_steps = policy.n_steps
    state = toy.states_for(user, 1)[0]
    field = score_field(policy, state, step, resolution)
    spacing = 3.0 / (resolution - 1)
    arrows = _denoising_arrows(field)
    lengths = np.hypot(arrows[:, 0], arrows[:, 1])
    if arrow_scale is None:
        arrow_scale = (_arrow_scale(policy, state, resolution) if same_scale
                       else spacing / max(float(lengths.max()), 1e-12))
    if not np.isfinite(arrow_scale) or arrow_scale <= 0:
        raise ValueError(f"arrow_scale must be a positive number, got {arrow_scale}.")
    traj = as_numpy(trajectory) if trajectory is not None else _reverse_chain(policy, toy, user, n, seed)
    if traj.shape[0] != n_steps + 1:
        raise ValueError(f"trajectory must have N + 1 = {n_steps + 1} steps (from policy.sample(..., "
                         f"return_trajectory=True)), got {traj.shape[0]}.")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, subplot_titles=(
        f"−√(1−ᾱ<sub>i</sub>) ε<sub>θ</sub> = (1−ᾱ<sub>i</sub>) ∇log μ<sub>i</sub>, drawn ×{arrow_scale:.2g}",
        "the chains' samples a<sup>i</sup> at this step"))
    fig.update_annotations(font_size=13)
    fig.add_trace(arrow_trace(field[["a1", "a2"]].to_numpy(), arrow_scale * arrows,
                              "score arrows: where denoising moves a<sup>i</sup>", color="#0072B2",
                              min_head=0.15 * spacing), row=1, col=1)
    labels = mode_labels(toy, traj[-1])
    for trace in cloud_traces(traj[n_steps - step], labels, label_order(labels, toy), "ends on", "a<sup>i</sup>",
                              size=4):
        fig.add_trace(trace, row=1, col=2)
    mode_circles(fig, toy, user, 2)
    action_axes(fig, 2)
    alpha_bar = field.attrs["alpha_bar"]
    fig.update_layout(
        template=TEMPLATE, height=520, margin=dict(t=110, l=50, r=20, b=40),
        title=dict(x=0.01, y=0.97, text=(
            f"The learned score at step i = {step} of {n_steps} (user {user}): √(1−ᾱ<sub>i</sub>) = "
            f"{np.sqrt(1 - alpha_bar):.3f}<br><sup>arrow lengths: median {np.median(lengths):.3f}, longest "
            f"{lengths.max():.3f} (true units); they shrink and point at the nearest mode as i → 1</sup>")),
        legend=dict(orientation="h", yanchor="top", y=-0.12, x=0, itemsizing="constant"),
    )
    return fig


def score_field_explorer(
    policy: DiffusionPolicy,
    toy: MultimodalBehavior,
    n: int = 300,
    seed: int = 0,
    resolution: int = 15,
    user: int = 0,
    step: int | None = None,
) -> Explorer:
    """Notebook 02: a user dropdown, a slider over i (1 … N), ▶ (from N down to 1) and a "one arrow scale for
    every step" checkbox driving ``score_field_figure``. The chains are drawn once per user
    (``explorer.trajectory_of(user)``); with the box ticked the arrow scale is fixed per user, so moving the
    slider only changes what the network says at that step (arrows shrink as i → 1); unticked, each step is
    rescaled so that the directions stay readable."""
    trajectories: dict[int, np.ndarray] = {}
    scales: dict[int, float] = {}

    def trajectory_of(u: int) -> np.ndarray:
        if u not in trajectories:
            trajectories[u] = _reverse_chain(policy, toy, u, n, seed)
        return trajectories[u]

    def scale_of(u: int) -> float:
        if u not in scales:
            scales[u] = _arrow_scale(policy, toy.states_for(u, 1)[0], resolution)
        return scales[u]

    dropdown = _user_dropdown(toy, user)
    slider = step_slider(policy.n_steps if step is None else step, 1, policy.n_steps)
    same = widgets.Checkbox(value=True, description="one arrow scale for every step", indent=False)
    explorer = make_explorer(
        {"user": dropdown, "step": slider, "play": play_button(slider, reverse=True), "same_scale": same},
        lambda: score_field_figure(policy, toy, slider.value, user=dropdown.value, resolution=resolution,
                                   arrow_scale=scale_of(dropdown.value) if same.value else None,
                                   trajectory=trajectory_of(dropdown.value), same_scale=same.value),
        watch=("user", "step", "same_scale"),
    )
    explorer.trajectory_of = trajectory_of
    explorer.message.value = info_html(
        "Press ▶ or drag from i = N to 1. Left: at each grid point, the noise the network would remove; right: "
        "where the chains are at that step. Large i: all arrows point to the middle and the cloud is noise. "
        "Small i: short arrows that split towards the modes, and the cloud has split the same way. Untick the "
        "box to rescale each step and read the directions at small i."
    )
    return explorer

