"""Plotly figure builders for the notebooks. Each returns a ``go.Figure`` computed from the core's objects.

Every figure is a pure function of its arguments (noise comes from a seed), so the interactive panels in
``widgets.py`` rebuild a figure for the new control values and copy it into their ``FigureWidget``: what a
slider shows is exactly what the static builder draws, and the tests check one against the other.

Conventions: 2-D action plots use fixed axes [-1.5, 1.5] with equal scales, the four modes of
``MultimodalBehavior`` keep one colour everywhere (``MODE_COLORS``, Okabe–Ito: colour-blind safe), and
diffusion steps are 1-based as in the paper (i = 0 is the clean action, i = N pure noise).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..data.toy import MultimodalBehavior
from ..diffusion.analysis import gaussian_chain_moments, gaussian_chain_path, paper_printed_betas
from ..diffusion.schedule import VPSchedule

__all__ = [
    "ACTION_RANGE", "MODE_COLORS", "ELSEWHERE", "TEMPLATE",
    "fixed_noise", "mode_labels", "schedule_figure", "noising_figure", "terminal_noise_figure",
    "trajectory_figure", "policy_comparison_figure", "mode_fraction_table", "loss_figure",
    "discretisation_figure",
]

ACTION_RANGE = (-1.5, 1.5)
ELSEWHERE = "elsewhere"
MODE_COLORS = {"NE": "#0072B2", "NW": "#E69F00", "SW": "#009E73", "SE": "#CC79A7", ELSEWHERE: "#8C8C8C"}
_EXTRA_COLORS = ("#D55E00", "#56B4E9", "#F0E442", "#000000")
TEMPLATE = "plotly_white"
_SCHEDULE_COLORS = {"beta": "#0072B2", "printed": "#D55E00", "alpha_bar": "#000000", "signal": "#009E73",
                    "noise": "#E69F00", "alpha": "#CC79A7"}
_ACTION_HOVER = "a<sub>1</sub>=%{x:.2f}, a<sub>2</sub>=%{y:.2f}<br>%{text}<extra>%{fullData.name}</extra>"


# --- small shared pieces -------------------------------------------------------------------------------

def _numpy(x: object) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _color(label: str, position: int) -> str:
    return MODE_COLORS.get(label, _EXTRA_COLORS[position % len(_EXTRA_COLORS)])


def fixed_noise(n: int, dim: int = 2, seed: int = 0) -> torch.Tensor:
    """ε ~ N(0, I) of shape (n, dim) from ``torch.Generator().manual_seed(seed)``: the noise the noising
    figures reuse at every step, so a slider moves each point along its own path instead of redrawing."""
    return torch.randn((n, dim), generator=torch.Generator().manual_seed(seed))


def mode_labels(toy: MultimodalBehavior, actions: object) -> np.ndarray:
    """The name of the mode each action lies on (``toy.nearest_mode``), or ``"elsewhere"``."""
    modes = toy.nearest_mode(_numpy(actions))
    names = np.array([*toy.mode_names, ELSEWHERE])
    return names[modes]  # -1 (on no mode) picks the last name


def _label_order(labels: np.ndarray, toy: MultimodalBehavior | None) -> list[str]:
    if toy is not None:
        return [*toy.mode_names, ELSEWHERE]
    seen = [str(x) for x in pd.unique(labels)]
    known = [m for m in MODE_COLORS if m in seen]
    return known + sorted(x for x in seen if x not in known)


def _cloud_traces(points: np.ndarray, labels: np.ndarray | None, order: Sequence[str], hover: str,
                  name: str, size: int = 5, opacity: float = 0.6) -> list[go.Scatter]:
    """One scatter trace per label (fixed order, empty ones kept so trace indices never change)."""
    if labels is None:
        return [go.Scatter(x=points[:, 0], y=points[:, 1], mode="markers", name=name,
                           text=[hover] * len(points), hovertemplate=_ACTION_HOVER,
                           marker=dict(size=size, opacity=opacity, color="#0072B2"))]
    traces = []
    for position, label in enumerate(order):
        rows = labels == label
        traces.append(go.Scatter(
            x=points[rows, 0], y=points[rows, 1], mode="markers", name=f"{hover} {label}",
            text=[f"{hover} {label}"] * int(rows.sum()), hovertemplate=_ACTION_HOVER, legendgroup=label,
            marker=dict(size=size, opacity=opacity, color=_color(label, position)), showlegend=bool(rows.any()),
        ))
    return traces


def _first_in_legend(trace: go.Scatter, shown: set[str]) -> bool:
    """Across panels, list each non-empty series once in the legend (clicking it toggles all panels)."""
    if trace.x is None or len(trace.x) == 0 or trace.name in shown:
        return False
    shown.add(trace.name)
    trace.legendgroup = trace.name
    return True


def _action_axes(fig: go.Figure, n_cols: int) -> None:
    """Fixed [-1.5, 1.5] square axes on every panel of a 1 × n_cols grid."""
    for col in range(1, n_cols + 1):
        anchor = "x" if col == 1 else f"x{col}"
        fig.update_xaxes(range=list(ACTION_RANGE), title_text="a<sub>1</sub>", zeroline=True,
                         constrain="domain", row=1, col=col)
        fig.update_yaxes(range=list(ACTION_RANGE), title_text="a<sub>2</sub>" if col == 1 else None,
                         zeroline=True, scaleanchor=anchor, scaleratio=1, constrain="domain", row=1, col=col)


def _mode_circles(fig: go.Figure, toy: MultimodalBehavior, user: int | None, n_cols: int) -> None:
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


def _unit_circles(fig: go.Figure, n_cols: int) -> None:
    """Dotted circles of radius 1 and 2: where N(0, I) puts 39% and 86% of its mass in 2-D."""
    for col in range(1, n_cols + 1):
        for r in (1.0, 2.0):
            fig.add_shape(type="circle", x0=-r, x1=r, y0=-r, y1=r, layer="below",
                          line=dict(color="#999999", width=1, dash="dot"), row=1, col=col)


# --- notebook 01: the schedule and the forward process -------------------------------------------------

def schedule_figure(schedule: VPSchedule, show_printed: bool = True) -> go.Figure:
    """Left: the per-step noise β_i (and, dashed, β_i with the sign the paper prints). Right: what is left
    after i steps: ᾱ_i, √ᾱ_i (weight of the clean action in a^i), √(1-ᾱ_i) (weight of the noise) and,
    dotted, the one-step α_i that Eq. 8 and 12–14 print where ᾱ_i is meant."""
    steps = np.arange(1, schedule.n_steps + 1)
    alpha_bar = schedule.alphas_cumprod.double().cpu().numpy()
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "Per-step noise variance β<sub>i</sub>",
        "After i steps: a<sup>i</sup> = √ᾱ<sub>i</sub> a<sup>0</sup> + √(1-ᾱ<sub>i</sub>) ε"))
    fig.add_trace(go.Scatter(x=steps, y=schedule.betas.cpu().numpy(), name="β<sub>i</sub> (corrected)",
                             mode="lines", line=dict(color=_SCHEDULE_COLORS["beta"], width=3),
                             hovertemplate="i=%{x}<br>β<sub>i</sub>=%{y:.5f}<extra></extra>"), row=1, col=1)
    if show_printed:
        printed = paper_printed_betas(schedule.n_steps, schedule.beta_min, schedule.beta_max).numpy()
        fig.add_trace(go.Scatter(x=steps, y=printed, name="β<sub>i</sub> as printed (sign typo)", mode="lines",
                                 line=dict(color=_SCHEDULE_COLORS["printed"], width=2, dash="dash"),
                                 hovertemplate="i=%{x}<br>printed β<sub>i</sub>=%{y:.5f}<extra></extra>"),
                      row=1, col=1)
    curves = [
        ("alpha_bar", "ᾱ<sub>i</sub> (signal power left)", alpha_bar, "solid"),
        ("signal", "√ᾱ<sub>i</sub> (weight of a<sup>0</sup>)", np.sqrt(alpha_bar), "solid"),
        ("noise", "√(1-ᾱ<sub>i</sub>) (weight of ε)", np.sqrt(1 - alpha_bar), "solid"),
        ("alpha", "α<sub>i</sub> (one step only, not ᾱ<sub>i</sub>)", schedule.alphas.cpu().numpy(), "dot"),
    ]
    for key, name, values, dash in curves:
        fig.add_trace(go.Scatter(x=steps, y=values, name=name, mode="lines",
                                 line=dict(color=_SCHEDULE_COLORS[key], width=2, dash=dash),
                                 hovertemplate="i=%{x}<br>%{y:.4f}<extra>" + name + "</extra>"), row=1, col=2)
    fig.add_hline(y=0, line=dict(color="#444444", width=1), row=1, col=1)
    fig.update_xaxes(title_text="diffusion step i", range=[0.5, schedule.n_steps + 0.5])
    fig.update_yaxes(title_text="β<sub>i</sub>", row=1, col=1)
    fig.update_yaxes(title_text="value", range=[-0.02, 1.05], row=1, col=2)
    fig.update_layout(
        template=TEMPLATE, height=430, margin=dict(t=90, l=60, r=20, b=50),
        title=dict(text=(f"VP schedule: N = {schedule.n_steps}, β<sub>min</sub> = {schedule.beta_min:g}, "
                         f"β<sub>max</sub> = {schedule.beta_max:g}  →  ᾱ<sub>N</sub> = {alpha_bar[-1]:.4f}"),
                   x=0.01),
        legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
        hovermode="x unified",
    )
    return fig


def _noised(actions: torch.Tensor, schedule: VPSchedule, step: int, noise: torch.Tensor) -> np.ndarray:
    if step == 0:
        return actions.numpy()
    return schedule.q_sample(actions, step, noise).numpy()


def noising_figure(
    actions: object,
    schedule: VPSchedule,
    step: int,
    labels: object | None = None,
    seed: int = 0,
    toy: MultimodalBehavior | None = None,
) -> go.Figure:
    """The clean actions a^0 noised to step i in one jump, a^i = q_sample(a^0, i, ε) (Eq. 1/13), with the
    same ε (from ``seed``) at every step. ``step`` = 0 shows the clean actions.

    ``labels`` (one per action, e.g. ``mode_labels(toy, actions)``) colour each point by where it came from;
    with ``toy`` the mode circles are drawn and the labels default to the mode of origin. Dotted circles
    of radius 1 and 2 show where N(0, I), the end of the forward process, lives."""
    a0 = torch.as_tensor(_numpy(actions), dtype=torch.float32)
    if not 0 <= step <= schedule.n_steps:
        raise ValueError(f"step must be in 0..{schedule.n_steps} (0 = clean actions), got {step}.")
    if labels is None and toy is not None:
        labels = mode_labels(toy, a0)
    labels = None if labels is None else np.asarray(labels).astype(str)
    points = _noised(a0, schedule, step, fixed_noise(len(a0), a0.shape[1], seed))
    alpha_bar = 1.0 if step == 0 else float(schedule.alphas_cumprod[step - 1])
    fig = make_subplots(rows=1, cols=1)
    order = _label_order(labels, toy) if labels is not None else []
    for trace in _cloud_traces(points, labels, order, "from", "a<sup>i</sup>"):
        fig.add_trace(trace)
    if toy is not None:
        _mode_circles(fig, toy, None, 1)
    _unit_circles(fig, 1)
    _action_axes(fig, 1)
    fig.update_layout(
        template=TEMPLATE, height=560, margin=dict(t=80, l=60, r=20, b=50),
        title=dict(text=(f"Forward process at step i = {step} of {schedule.n_steps}<br><sup>"
                         f"a<sup>i</sup> = {np.sqrt(alpha_bar):.3f}·a<sup>0</sup> + {np.sqrt(1 - alpha_bar):.3f}·ε"
                         "   (√ᾱ<sub>i</sub> and √(1-ᾱ<sub>i</sub>); dotted: radius 1 and 2 of N(0, I))</sup>"),
                   x=0.01),
        legend=dict(title="colour = mode of origin" if labels is not None else None, itemsizing="constant"),
    )
    return fig


def terminal_noise_figure(
    actions: object,
    schedules: Sequence[VPSchedule],
    labels: object | None = None,
    seed: int = 0,
    toy: MultimodalBehavior | None = None,
) -> go.Figure:
    """a^N under each schedule, next to fresh N(0, I) draws: the distribution sampling starts from.

    Each panel's title gives ᾱ_N and the share of points still in the quadrant their clean action was in
    (25% means a^N has forgotten the data; more means sampling from N(0, I) starts in the wrong place)."""
    a0 = torch.as_tensor(_numpy(actions), dtype=torch.float32)
    if labels is None and toy is not None:
        labels = mode_labels(toy, a0)
    labels = None if labels is None else np.asarray(labels).astype(str)
    order = _label_order(labels, toy) if labels is not None else []
    noise = fixed_noise(len(a0), a0.shape[1], seed)
    titles = []
    clouds = []
    for schedule in schedules:
        a_n = _noised(a0, schedule, schedule.n_steps, noise)
        same_quadrant = float(np.mean(np.all(np.sign(a_n) == np.sign(a0.numpy()), axis=1)))
        alpha_bar_n = float(schedule.alphas_cumprod[-1])
        titles.append(f"<b>β<sub>max</sub> = {schedule.beta_max:g}</b>: ᾱ<sub>N</sub> = {alpha_bar_n:.3f}<br>"
                      f"{same_quadrant:.0%} in own quadrant")
        clouds.append(a_n)
    titles.append("<b>N(0, I)</b>: where<br>sampling starts")
    clouds.append(fixed_noise(len(a0), a0.shape[1], seed + 1).numpy())
    n_cols = len(clouds)
    fig = make_subplots(rows=1, cols=n_cols, subplot_titles=titles, horizontal_spacing=0.05)
    fig.update_annotations(font_size=13)
    shown: set[str] = set()
    for col, cloud in enumerate(clouds, start=1):
        is_reference = col == n_cols
        traces = _cloud_traces(cloud, None if is_reference else labels, order, "from",
                               "N(0, I) draw" if is_reference else "a<sup>N</sup>", size=4)
        for trace in traces:
            trace.showlegend = _first_in_legend(trace, shown)
            if is_reference:
                trace.marker.color = "#444444"
            fig.add_trace(trace, row=1, col=col)
    _unit_circles(fig, n_cols)
    _action_axes(fig, n_cols)
    steps = sorted({s.n_steps for s in schedules})
    fig.update_layout(template=TEMPLATE, height=440, margin=dict(t=110, l=50, r=20, b=40),
                      title=dict(text=f"a<sup>N</sup> at the end of the forward process "
                                      f"(N = {', '.join(map(str, steps))}): is it pure noise?", x=0.01, y=0.97),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0, itemsizing="constant"))
    return fig


# --- notebook 02: the reverse chain as a policy ---------------------------------------------------------

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
    traj = _numpy(trajectory)
    n_steps = traj.shape[0] - 1
    if not 0 <= step <= n_steps:
        raise ValueError(f"step must be in 0..{n_steps}, got {step}.")
    cloud = traj[n_steps - step]
    labels = mode_labels(toy, traj[-1]) if toy is not None else None
    order = _label_order(labels, toy) if toy is not None else []
    fig = make_subplots(rows=1, cols=1)
    for trace in _cloud_traces(cloud, labels, order, "ends on", "a<sup>i</sup>"):
        fig.add_trace(trace)
    travelled = traj[: n_steps - step + 1, :n_paths]  # a^N ... a^i for the first n_paths samples
    xs, ys = [], []
    for k in range(travelled.shape[1]):
        xs += [*travelled[:, k, 0], None]
        ys += [*travelled[:, k, 1], None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines",
                             name=f"paths of {travelled.shape[1]} chains, a<sup>N</sup> → a<sup>i</sup>",
                             line=dict(color="#222222", width=1), opacity=0.45, hoverinfo="skip", legendgroup="paths"))
    fig.add_trace(go.Scatter(x=travelled[-1, :, 0], y=travelled[-1, :, 1], mode="markers",
                             name="where those chains are now",
                             marker=dict(size=10, color="#222222", symbol="circle-open", line=dict(width=2.5)),
                             hovertemplate=_ACTION_HOVER, text=[f"chain {k}" for k in range(travelled.shape[1])],
                             legendgroup="paths"))
    if toy is not None:
        _mode_circles(fig, toy, user, 1)
    _action_axes(fig, 1)
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
    panels = {} if data_actions is None else {"logged data": _numpy(data_actions)}
    panels["diffusion policy"] = _numpy(diffusion_actions)
    panels["Gaussian policy"] = _numpy(gaussian_actions)
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
        for trace in _cloud_traces(actions, labels, order, "on", "action", size=4, opacity=0.5):
            trace.showlegend = _first_in_legend(trace, shown)
            fig.add_trace(trace, row=1, col=col)
    _mode_circles(fig, toy, user, n_cols)
    _action_axes(fig, n_cols)
    liked_names = ", ".join(toy.mode_names[m] for m in toy.likes[user])
    fig.update_layout(template=TEMPLATE, height=460, margin=dict(t=110, l=50, r=20, b=40),
                      title=dict(y=0.97, x=0.01,
                                 text=f"User {user} likes {liked_names}: whose actions land on those items?"),
                      legend=dict(title="lands on", orientation="h", yanchor="top", y=-0.2, x=0, itemsizing="constant"))
    return fig


def mode_fraction_table(
    toy: MultimodalBehavior, actions_by_policy: Mapping[str, Mapping[int, object]]
) -> pd.DataFrame:
    """Percent of each policy's actions on each liked mode and elsewhere, one row per (policy, user).

    ``actions_by_policy`` maps a policy name to {user: actions (n, 2)}. Modes the user does not like are
    left empty (an action there counts as "elsewhere")."""
    rows = []
    for policy, per_user in actions_by_policy.items():
        for user, actions in per_user.items():
            fractions = toy.mode_fractions(_numpy(actions), user)
            rows.append({"policy": policy, "user": user, **{k: 100 * v for k, v in fractions.items()}})
    table = pd.DataFrame(rows).set_index(["policy", "user"])
    return table[[*[m for m in toy.mode_names if m in table.columns], ELSEWHERE]].round(1)


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


# --- notebook 05: energy guidance (Sec. 3.3, Eq. 21–25) ---------------------------------------------------
# Appended for notebook 05; the corner bandit's blobs keep the mode colours of the same names (NE, NW, SW, SE).

from ..data.toy import CornerBandit  # noqa: E402  (imports of this appended block)
from ..guidance_studies import grid_axis  # noqa: E402

__all__ += ["energy_heatmap_figure", "guided_trajectory_figure", "guidance_scale_figure", "reward_spread_figure"]

_GUIDANCE_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#000000")
_REFERENCE_COLOR = "#8C8C8C"


def _blob_labels(bandit: CornerBandit, actions: np.ndarray) -> np.ndarray:
    """The blob each action lies on (``bandit.blob_of``) by name, or ``"elsewhere"``."""
    names = np.array([*bandit.blob_names, ELSEWHERE])
    return names[bandit.blob_of(actions)]  # -1 (on no blob) picks the last name


def _blob_circles(fig: go.Figure, bandit: CornerBandit, n_cols: int, context: int = 0, row: int = 1) -> None:
    """The bandit's blobs as circles of radius ``bandit.radius``, labelled with their mean reward; the best
    blob of ``context`` is drawn thick."""
    best = bandit.best_blob(context)
    for col in range(1, n_cols + 1):
        for k, ((cx, cy), name, mean) in enumerate(zip(bandit.centres, bandit.blob_names, bandit.blob_means(context))):
            r = bandit.radius
            fig.add_shape(type="circle", x0=cx - r, x1=cx + r, y0=cy - r, y1=cy + r, layer="above",
                          line=dict(color=MODE_COLORS.get(name, "#444444"), width=3 if k == best else 1.5),
                          row=row, col=col)
            fig.add_annotation(x=cx, y=cy + r + 0.13, text=f"{name}: r = {mean:g}", showarrow=False,
                               bgcolor="rgba(255, 255, 255, 0.75)", borderpad=1,
                               font=dict(size=11, color=MODE_COLORS.get(name, "#444444")), row=row, col=col)


def _gradient_arrows(grid: np.ndarray, axis: np.ndarray, every: int, unit: float, max_length: float) -> go.Scatter:
    """Arrows along ∇f (finite differences of the grid) at every ``every``-th grid point: length ``unit`` × |∇f|,
    capped at ``max_length`` so that a cliff in f does not hide every other arrow."""
    spacing = float(axis[1] - axis[0])
    d_rows, d_cols = np.gradient(grid, spacing)  # rows follow a₂, columns a₁
    xs, ys, sizes = [], [], []
    for r in range(every // 2, len(axis), every):
        for c in range(every // 2, len(axis), every):
            dx, dy = unit * d_cols[r, c], unit * d_rows[r, c]
            shrink = min(1.0, max_length / max(float(np.hypot(dx, dy)), 1e-12))
            xs += [axis[c], axis[c] + shrink * dx, None]
            ys += [axis[r], axis[r] + shrink * dy, None]
            sizes += [0, 7 if np.hypot(dx, dy) > 0.15 * max_length else 0, 0]
    return go.Scatter(x=xs, y=ys, mode="lines+markers", name="∇<sub>a</sub>f: where guidance pushes a<sup>i</sup>",
                      line=dict(color="white", width=1.5), hoverinfo="skip", legendgroup="gradient",
                      marker=dict(symbol="arrow", angleref="previous", size=sizes, color="white"))


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
        _blob_circles(fig, bandit, n_cols, context)
    _action_axes(fig, n_cols)
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
    trajs = {name: _numpy(t) for name, t in trajectories.items()}
    n_steps = next(iter(trajs.values())).shape[0] - 1
    if not 0 <= step <= n_steps:
        raise ValueError(f"step must be in 0..{n_steps}, got {step}.")
    best_name = bandit.blob_names[bandit.best_blob(context)]
    labels = {name: _blob_labels(bandit, t[-1]) for name, t in trajs.items()}
    titles = [f"<b>{name}</b><br>{np.mean(labels[name] == best_name):.0%} of chains end on {best_name}"
              for name in trajs]
    n_cols = len(trajs)
    fig = make_subplots(rows=1, cols=n_cols, subplot_titles=titles, horizontal_spacing=0.05)
    fig.update_annotations(font_size=13)
    order = [*bandit.blob_names, ELSEWHERE]
    shown: set[str] = set()
    for col, (name, traj) in enumerate(trajs.items(), start=1):
        for trace in _cloud_traces(traj[n_steps - step], labels[name], order, "ends on", "a<sup>i</sup>", size=4):
            trace.showlegend = _first_in_legend(trace, shown)
            fig.add_trace(trace, row=1, col=col)
        travelled = traj[: n_steps - step + 1, :n_paths]
        xs, ys = [], []
        for k in range(travelled.shape[1]):
            xs += [*travelled[:, k, 0], None]
            ys += [*travelled[:, k, 1], None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"paths of {travelled.shape[1]} chains",
                                 line=dict(color="#222222", width=1), opacity=0.5, hoverinfo="skip",
                                 legendgroup="paths", showlegend=col == 1), row=1, col=col)
        fig.add_trace(go.Scatter(x=travelled[-1, :, 0], y=travelled[-1, :, 1], mode="markers",
                                 name="where those chains are now", legendgroup="paths", showlegend=col == 1,
                                 marker=dict(size=10, color="#222222", symbol="circle-open", line=dict(width=2.5)),
                                 hovertemplate=_ACTION_HOVER, text=[f"chain {k}" for k in range(travelled.shape[1])]),
                      row=1, col=col)
    _blob_circles(fig, bandit, n_cols, context)
    _action_axes(fig, n_cols)
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
    acts = {name: _numpy(actions[name]) for name in names}
    obs = bandit.observations(context, len(next(iter(acts.values()))))
    best_name = bandit.blob_names[bandit.best_blob(context)]
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.08, column_widths=[0.34, 0.33, 0.33], subplot_titles=(
        f"<b>{names[-1]}</b>: actions", "Q<sub>φ</sub>(s, a) of the samples", "share of samples per blob"))
    fig.update_annotations(font_size=13)
    order = [*bandit.blob_names, ELSEWHERE]
    for trace in _cloud_traces(acts[names[-1]], _blob_labels(bandit, acts[names[-1]]), order, "on", "action",
                               size=4, opacity=0.5):
        trace.showlegend = False
        fig.add_trace(trace, row=1, col=1)
    _blob_circles(fig, bandit, 1, context)
    _action_axes(fig, 1)
    all_q = np.concatenate([_numpy(q_values[name]).reshape(-1) for name in names])
    bins = dict(start=float(all_q.min()) - 0.05, end=float(all_q.max()) + 0.05,
                size=max(float(np.ptp(all_q)) / 30, 1e-3))
    categories = [*bandit.blob_names, "off blobs"]
    for position, name in enumerate(names):
        color = _REFERENCE_COLOR if position == 0 else _GUIDANCE_COLORS[(position - 1) % len(_GUIDANCE_COLORS)]
        fig.add_trace(go.Histogram(x=_numpy(q_values[name]).reshape(-1), xbins=bins, name=name, legendgroup=name,
                                   marker_color=color, opacity=0.55, histnorm="probability"), row=1, col=2)
        labels = _blob_labels(bandit, acts[name])
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
            labels = _blob_labels(bandit, acts[name])
            reward = float(bandit.true_reward(obs, acts[name]).mean())
            parts.append(f"{name}: {np.mean(labels == best_name):.0%} on {best_name}, mean reward {reward:.2f}")
        title = parts[-1] + (f"<br><sup>{' · '.join(parts[:-1])}</sup>" if len(parts) > 1 else "")
    fig.update_layout(template=TEMPLATE, height=470, margin=dict(t=110, l=50, r=20, b=40), bargap=0.15,
                      title=dict(x=0.01, y=0.97, text=title), barmode="group",
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0.36))
    return fig


def reward_spread_figure(tables: Mapping[str, pd.DataFrame] | pd.DataFrame) -> go.Figure:
    """The variance-reduction picture from ``reward_spread_by_scale``: against the guidance scale, the mean true
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
                                 hovertemplate="scale %{x}<br>mean reward %{y:.3f}<extra>" + name + "</extra>",
                                 **common), row=1, col=1)
        fig.add_trace(go.Scatter(x=table["scale"], y=table["std_of_mean_reward"], showlegend=False,
                                 hovertemplate="scale %{x}<br>std over seeds %{y:.4f}<extra>" + name + "</extra>",
                                 **common), row=1, col=2)
        fig.add_trace(go.Scatter(x=table["scale"], y=table["best_blob"], showlegend=False,
                                 hovertemplate="scale %{x}<br>best blob %{y:.1%}<extra>" + name + "</extra>",
                                 **common), row=1, col=3)
    fig.update_xaxes(title_text="guidance scale")
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", row=1, col=3)
    fig.update_layout(template=TEMPLATE, height=400, margin=dict(t=60, l=50, r=20, b=50),
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0))
    return fig



# --- notebooks 03 and 04: the action approximation and Q-guided training (Sec. 3.2, 3.4) -----------------
# The corner bandit's plots reuse the blob labels and circles of the notebook-05 block above, so that the
# bandit looks the same in every notebook.

__all__ += [
    "approximation_figure", "approximation_errors", "approximation_error_figure", "update_time_figure",
    "training_curves_figure", "critic_grid", "bandit_samples", "bandit_outcome_table", "critic_probe_table",
    "bandit_policy_figure", "contextual_policy_figure", "q_weight_sweep_figure",
]

_METHOD_COLORS = {"action approximation": "#0072B2", "through the chain": "#D55E00"}
_RUN_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#000000")
_TRAINING_METRICS = {
    "critic_loss": "critic TD loss (Eq. 10 / 20)",
    "q_mean": "mean Q(s, a) on the batch",
    "bc_loss": "L<sub>d</sub> (Eq. 8)",
    "q_loss": "L<sub>q</sub> (Eq. 15 / 18 / 19)",
    "value_loss": "V(s) expectile loss",
}


def _on_device(x: object, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(_numpy(x), dtype=torch.float32, device=device)


def _seeded(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def approximation_figure(policy, states: object, actions: object, step: int, seed: int = 0,
                         bandit: CornerBandit | None = None, n_lines: int = 30) -> go.Figure:
    """The action approximation at step i (Eq. 13–14) for a batch of dataset pairs (s, a⁰).

    Each dataset action a⁰ is noised to a^i = √ᾱ_i a⁰ + √(1-ᾱ_i) ε (grey dots) and denoised with one ε call,
    â⁰ = ``policy.approximate_action(s, a⁰, generator=torch.Generator().manual_seed(seed), step=i)``: the same
    ε at every step, so a slider moves each point along its own path. Open circles: a⁰; filled: â⁰; both
    coloured by the blob a⁰ comes from (with ``bandit``). Lines join a⁰ to its â⁰ for ``n_lines`` pairs. The
    title gives E‖â⁰ − a⁰‖² over the batch."""
    n_steps = policy.n_steps
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 1 <= step <= n_steps:
        raise ValueError(f"step must be an int in 1..{n_steps} (the approximation noises to a step i >= 1), got {step!r}.")
    step = int(step)
    s, a0 = _on_device(states, policy.device), _on_device(actions, policy.device)
    with torch.no_grad():
        noise = torch.randn(a0.shape, generator=_seeded(policy.device, seed), device=policy.device)  # = approximate_action's ε
        noisy = policy.schedule.q_sample(a0, step, noise).cpu().numpy()
        approx = policy.approximate_action(s, a0, generator=_seeded(policy.device, seed), step=step).cpu().numpy()
    clean = a0.cpu().numpy()
    error = float(np.mean(np.sum((approx - clean) ** 2, axis=1)))
    labels = _blob_labels(bandit, clean) if bandit is not None else None
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
    for trace in _cloud_traces(clean, labels, order, "a⁰ from", "a<sup>0</sup> (dataset)", size=8, opacity=0.8):
        trace.marker.symbol = "circle-open"
        fig.add_trace(trace)
    for trace in _cloud_traces(approx, labels, order, "â⁰ from", "â<sup>0</sup>", size=5, opacity=0.85):
        fig.add_trace(trace)
    if bandit is not None:
        _blob_circles(fig, bandit, 1)
    _action_axes(fig, 1)
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


def approximation_errors(policy, states: object, actions: object, seed: int = 0) -> pd.DataFrame:
    """How good is the one-step approximation at each step i? One row per i = 1..N, all on the same ε (from
    ``seed``), averaged over the rows of (states, actions):

    * ``approximation_error`` E‖â⁰ − a⁰‖² with â⁰ from ``policy.approximate_action(..., step=i)``;
    * ``eps_error`` E‖ε_θ(s, a^i, i) − ε‖², the network's error in guessing the noise;
    * ``amplification`` (1 − ᾱ_i) / ᾱ_i: Eq. 14 gives â⁰ − a⁰ = −√((1 − ᾱ_i)/ᾱ_i) (ε_θ − ε), so
      approximation_error = amplification × eps_error exactly;
    * ``mean_guess_error`` E‖a⁰ − mean(a⁰)‖², the error of answering the data's mean for every action
      (the same in every row): an approximation worse than that has forgotten a⁰.
    Columns also ``step`` and ``alpha_bar``."""
    s, a0 = _on_device(states, policy.device), _on_device(actions, policy.device)
    rows = []
    with torch.no_grad():
        noise = torch.randn(a0.shape, generator=_seeded(policy.device, seed), device=policy.device)
        mean_guess = float(((a0 - a0.mean(dim=0)) ** 2).sum(dim=1).mean())
        for i in range(1, policy.n_steps + 1):
            approx = policy.approximate_action(s, a0, generator=_seeded(policy.device, seed), step=i)
            noisy = policy.schedule.q_sample(a0, i, noise)
            eps = policy.eps_model(s, noisy, torch.full((len(a0),), i, dtype=torch.long, device=policy.device))
            alpha_bar = float(policy.schedule.alphas_cumprod[i - 1])
            rows.append({
                "step": i, "alpha_bar": alpha_bar,
                "approximation_error": float(((approx - a0) ** 2).sum(dim=1).mean()),
                "eps_error": float(((eps - noise) ** 2).sum(dim=1).mean()),
                "amplification": (1 - alpha_bar) / alpha_bar,
                "mean_guess_error": mean_guess,
            })
    return pd.DataFrame(rows)


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


def training_curves_figure(histories: Mapping[str, pd.DataFrame] | pd.DataFrame, smooth: int = 20) -> go.Figure:
    """Training curves from ``agent.fit``: one panel per logged metric among critic_loss, q_mean, bc_loss,
    q_loss (and value_loss for awr / elbo), one colour per run; the logged value faint and its rolling mean
    over ``smooth`` logs solid."""
    if isinstance(histories, pd.DataFrame):
        histories = {"training": histories}
    metrics = [m for m in _TRAINING_METRICS if any(m in h.columns for h in histories.values())]
    if not metrics:
        raise ValueError(f"no known metric in the histories; expected columns among {list(_TRAINING_METRICS)}.")
    n_cols = 2 if len(metrics) == 4 else min(len(metrics), 3)
    n_rows = -(-len(metrics) // n_cols)
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=[_TRAINING_METRICS[m] for m in metrics],
                        horizontal_spacing=0.08, vertical_spacing=0.16)
    for position, (name, history) in enumerate(histories.items()):
        color = _RUN_COLORS[position % len(_RUN_COLORS)]
        for k, metric in enumerate(metrics):
            if metric not in history.columns:
                continue
            row, col = k // n_cols + 1, k % n_cols + 1
            fig.add_trace(go.Scatter(x=history["update"], y=history[metric], mode="lines", name=f"{name}: {metric}",
                                     line=dict(color=color, width=1), opacity=0.3, showlegend=False,
                                     legendgroup=name, hoverinfo="skip"), row=row, col=col)
            fig.add_trace(go.Scatter(x=history["update"], y=history[metric].rolling(smooth, min_periods=1).mean(),
                                     mode="lines", name=name, legendgroup=name, showlegend=k == 0,
                                     line=dict(color=color, width=2.5),
                                     hovertemplate="update %{x}<br>" + metric + " %{y:.4g}<extra>" + name + "</extra>"),
                          row=row, col=col)
    fig.update_xaxes(title_text="update")
    fig.update_layout(template=TEMPLATE, height=330 * n_rows, margin=dict(t=60, l=60, r=20, b=50),
                      showlegend=len(histories) > 1, legend=dict(orientation="h", yanchor="bottom", y=1.06, x=0))
    return fig


def critic_grid(agent, observation: object, resolution: int = 41, bound: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """min(Q₁, Q₂)(s, a) of ``agent.critic`` for one observation and every action a on a ``resolution`` ×
    ``resolution`` grid of [-bound, bound]². Returns ``(axis, values)``: ``values[r, c]`` is Q at
    a = (axis[c], axis[r]) (rows follow a₂, columns a₁: the layout of a plotly heatmap's ``z``)."""
    axis = np.linspace(-bound, bound, resolution)
    a2, a1 = np.meshgrid(axis, axis, indexing="ij")
    actions = _on_device(np.stack([a1.reshape(-1), a2.reshape(-1)], axis=1), agent.device)
    obs = _on_device(np.asarray(_numpy(observation), dtype=np.float32).reshape(1, -1), agent.device)
    with torch.no_grad():
        q = agent.critic.q_min(agent.encoder(obs).expand(len(actions), -1), actions)
    return axis, q.reshape(resolution, resolution).cpu().numpy()


def bandit_samples(agent, bandit: CornerBandit, context: int = 0, n: int = 500, seed: int = 0) -> np.ndarray:
    """``agent.act`` for ``n`` copies of the context's observation, drawn with ``torch.Generator().manual_seed(seed)``."""
    return agent.act(bandit.observations(context, n), generator=_seeded(agent.device, seed))


def _outcome(bandit: CornerBandit, actions: np.ndarray, context: int) -> dict[str, float]:
    labels = _blob_labels(bandit, actions)
    best = bandit.blob_names[bandit.best_blob(context)]
    row = {"mean true reward": float(bandit.true_reward(bandit.observations(context, len(actions)), actions).mean()),
           "best blob": best, "% on best": 100 * float(np.mean(labels == best))}
    row.update({f"% {name}": 100 * float(np.mean(labels == name)) for name in bandit.blob_names})
    row["% off data"] = 100 * float(np.mean(labels == ELSEWHERE))
    return row


def bandit_outcome_table(agents: Mapping[str, object], bandit: CornerBandit, n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Where each agent's actions land: one row per (run, context) with the mean true reward of ``n`` samples,
    the share on the context's best blob, on each blob and off every blob (percent). The data's own numbers,
    for comparison, are the behaviour's: 25% per blob and the mean of the four blob means."""
    rows = []
    contexts = range(len(bandit.centres)) if bandit.contextual else [0]
    for name, agent in agents.items():
        for context in contexts:
            rows.append({"run": name, "context": context, **_outcome(bandit, bandit_samples(agent, bandit, context, n, seed), context)})
    table = pd.DataFrame(rows).set_index(["run", "context"] if bandit.contextual else ["run"])
    if not bandit.contextual:
        table = table.drop(columns="context")
    return table.round(2)


def critic_probe_table(agent, bandit: CornerBandit, points: Mapping[str, tuple[float, float]] | None = None,
                       context: int = 0) -> pd.DataFrame:
    """What the critic says at a few actions, next to the truth: Q₁, Q₂, min(Q₁, Q₂) and the bandit's true
    mean reward, and whether the action is on the data (within ``bandit.radius`` of a blob). By default the
    four blob centres, the box corner (1, −1) just beyond the SE blob, the centre (0, 0) and (1, 1)."""
    if points is None:
        points = {f"{name} blob centre": tuple(c) for name, c in zip(bandit.blob_names, bandit.centres)}
        points.update({"corner (1, −1)": (1.0, -1.0), "centre (0, 0)": (0.0, 0.0), "corner (1, 1)": (1.0, 1.0)})
    actions = np.asarray(list(points.values()), dtype=np.float32)
    obs = bandit.observations(context, len(actions))
    with torch.no_grad():
        state = agent.encoder(_on_device(obs, agent.device))
        q1, q2 = agent.critic(state, _on_device(actions, agent.device))
    q1, q2 = q1.squeeze(1).cpu().numpy(), q2.squeeze(1).cpu().numpy()
    q_min = np.minimum(q1, q2)
    truth = bandit.true_reward(obs, actions)
    return pd.DataFrame({
        "action": [f"({a[0]:g}, {a[1]:g})" for a in actions],
        "on the data?": np.where(bandit.blob_of(actions) >= 0, "yes", "no"),
        "true mean reward": truth, "Q₁": q1, "Q₂": q2, "min(Q₁, Q₂)": q_min, "min(Q₁, Q₂) − truth": q_min - truth,
    }, index=pd.Index(list(points), name="point")).round(2)


def _context_blob_circles(fig: go.Figure, bandit: CornerBandit, col: int, context: int) -> None:
    """The blobs in one panel, labelled with their mean reward in ``context``; the best one drawn thick."""
    best = bandit.best_blob(context)
    for k, ((cx, cy), name, mean) in enumerate(zip(bandit.centres, bandit.blob_names, bandit.blob_means(context))):
        r = bandit.radius
        fig.add_shape(type="circle", x0=cx - r, x1=cx + r, y0=cy - r, y1=cy + r, layer="above",
                      line=dict(color=MODE_COLORS.get(name, "#444444"), width=3.5 if k == best else 1.5), row=1, col=col)
        label = f"{name}: r = {mean:g}"
        fig.add_annotation(x=cx, y=cy + r + 0.13, text=f"<b>{label}</b>" if k == best else label,
                           showarrow=False, font=dict(size=11, color=MODE_COLORS.get(name, "#444444")), row=1, col=col)


def _landing_traces(actions: np.ndarray, bandit: CornerBandit, size: int, opacity: float) -> list[go.Scatter]:
    """Actions coloured by the blob they land on, one trace per blob ("lands on NE", ...) and one for the
    actions on no blob ("lands off the data"), in that fixed order."""
    traces = _cloud_traces(actions, _blob_labels(bandit, actions), [*bandit.blob_names, ELSEWHERE], "lands on",
                           "action", size=size, opacity=opacity)
    traces[-1].name = "lands off the data"
    traces[-1].text = ["lands off the data"] * len(traces[-1].x)
    return traces


def _box(fig: go.Figure, n_cols: int) -> None:
    """The action box [-1, 1]², where sampled actions are clipped to."""
    for col in range(1, n_cols + 1):
        fig.add_shape(type="rect", x0=-1, x1=1, y0=-1, y1=1, layer="below",
                      line=dict(color="#666666", width=1, dash="dot"), row=1, col=col)


def bandit_policy_figure(agent, bandit: CornerBandit, context: int = 0, n: int = 500, seed: int = 0,
                         resolution: int = 41, title: str | None = None) -> go.Figure:
    """Left: ``n`` actions of ``agent.act`` for the context (``bandit_samples``), coloured by the blob they
    land on (grey: off every blob). Right: what the critic believes, min(Q₁, Q₂)(s, a) over the square
    (``critic_grid``), with the same actions as white dots. Blobs are labelled with their mean reward, the
    best one thick; the dotted square is the action box. The title says where the actions land."""
    actions = bandit_samples(agent, bandit, context, n, seed)
    axis, q = critic_grid(agent, bandit.observations(context, 1)[0], resolution, ACTION_RANGE[1])
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        "where the policy's actions land", "what the critic believes: min(Q<sub>1</sub>, Q<sub>2</sub>)(s, a)"))
    fig.update_annotations(font_size=13)
    for trace in _landing_traces(actions, bandit, size=5, opacity=0.6):
        fig.add_trace(trace, row=1, col=1)
    fig.add_trace(go.Heatmap(z=q, x=axis, y=axis, colorscale="Viridis", zsmooth="best", name="critic",
                             colorbar=dict(title="Q", len=0.8, x=1.0),
                             hovertemplate="a<sub>1</sub>=%{x:.2f}, a<sub>2</sub>=%{y:.2f}<br>min(Q<sub>1</sub>, Q<sub>2</sub>) = %{z:.2f}<extra></extra>"),
                  row=1, col=2)
    fig.add_trace(go.Scatter(x=actions[:, 0], y=actions[:, 1], mode="markers", name="the policy's actions",
                             marker=dict(size=3, color="white", opacity=0.7, line=dict(width=0.5, color="#222222")),
                             hoverinfo="skip"), row=1, col=2)
    for col in (1, 2):
        _context_blob_circles(fig, bandit, col, context)
    _box(fig, 2)
    _action_axes(fig, 2)
    if title is None:
        outcome = _outcome(bandit, actions, context)
        cfg = agent.config
        where = f"context {context}, " if bandit.contextual else ""
        title = (f"{cfg.policy_improvement}, λ = {cfg.q_weight:g} ({where}{n} actions): mean true reward "
                 f"{outcome['mean true reward']:.2f} · {outcome['% on best']:.0f}% on the best blob "
                 f"({outcome['best blob']}) · {outcome['% off data']:.0f}% off the data")
    fig.update_layout(template=TEMPLATE, height=500, margin=dict(t=100, l=50, r=20, b=40),
                      title=dict(x=0.01, y=0.97, text=title),
                      legend=dict(orientation="h", yanchor="top", y=-0.12, x=0, itemsizing="constant"))
    return fig


def _sample_panels(panels: Mapping[str, tuple[np.ndarray, int]], bandit: CornerBandit, title: str) -> go.Figure:
    """One panel per entry {panel title: (actions, context)}: actions coloured by blob, blobs labelled with
    their reward in that context (best thick)."""
    n_cols = len(panels)
    fig = make_subplots(rows=1, cols=n_cols, subplot_titles=list(panels), horizontal_spacing=0.04)
    fig.update_annotations(font_size=12)
    shown: set[str] = set()
    for col, (actions, context) in enumerate(panels.values(), start=1):
        for trace in _landing_traces(actions, bandit, size=4, opacity=0.55):
            trace.showlegend = _first_in_legend(trace, shown)
            fig.add_trace(trace, row=1, col=col)
        _context_blob_circles(fig, bandit, col, context)
    _box(fig, n_cols)
    _action_axes(fig, n_cols)
    fig.update_layout(template=TEMPLATE, height=420, margin=dict(t=110, l=50, r=20, b=40),
                      title=dict(x=0.01, y=0.97, text=title),
                      legend=dict(orientation="h", yanchor="top", y=-0.15, x=0, itemsizing="constant"))
    return fig


def contextual_policy_figure(agent, bandit: CornerBandit, n: int = 300, seed: int = 0) -> go.Figure:
    """For the contextual bandit: one panel per context with ``n`` of the agent's actions; the rewards
    rotate with the context, and each title gives the share that lands on that context's best blob."""
    panels = {}
    for context in range(len(bandit.centres)):
        actions = bandit_samples(agent, bandit, context, n, seed)
        outcome = _outcome(bandit, actions, context)
        panels[f"<b>context {context}</b>: best {outcome['best blob']}<br>{outcome['% on best']:.0f}% there, "
               f"reward {outcome['mean true reward']:.2f}"] = (actions, context)
    cfg = agent.config
    return _sample_panels(panels, bandit, f"One policy, four contexts ({cfg.policy_improvement}, λ = {cfg.q_weight:g}): "
                                          "does it follow the best corner?")


def q_weight_sweep_figure(agents: Mapping[str, object], bandit: CornerBandit, context: int = 0, n: int = 400,
                          seed: int = 0) -> go.Figure:
    """Side by side, the actions of several trained agents (e.g. the same agent trained with growing λ) in
    one context; each title gives the mean true reward and the share on the best blob and off the data."""
    panels = {}
    for name, agent in agents.items():
        actions = bandit_samples(agent, bandit, context, n, seed)
        outcome = _outcome(bandit, actions, context)
        panels[f"<b>{name}</b><br>reward {outcome['mean true reward']:.2f} · best {outcome['% on best']:.0f}% · "
               f"off {outcome['% off data']:.0f}%"] = (actions, context)
    return _sample_panels(panels, bandit, "Where the actions land as the Q term gets more weight")


# --- fast sampling (notebook 02) ----------------------------------------------------------------------------
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


__all__ += ["SAMPLER_COLORS", "sampler_tradeoff_figure"]
