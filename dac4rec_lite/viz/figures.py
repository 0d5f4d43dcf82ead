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
