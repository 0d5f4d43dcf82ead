"""Notebook 01: the VP schedule and the forward process (Eq. 1/13), as figures and slider panels.

``schedule_figure`` draws β_i, ᾱ_i and the weights of a⁰ and ε; ``noising_figure`` noises clean actions to
step i with one fixed ε; ``terminal_noise_figure`` asks whether a^N is pure noise. ``schedule_explorer`` and
``noising_explorer`` drive them with sliders."""
from __future__ import annotations

from typing import Sequence

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..data.toy import MultimodalBehavior
from ..diffusion.analysis import paper_printed_betas, terminal_alpha_bar
from ..diffusion.schedule import VPSchedule
from .style import (
    TEMPLATE,
    action_axes,
    as_numpy,
    cloud_traces,
    first_in_legend,
    fixed_noise,
    label_order,
    mode_circles,
    mode_labels,
    unit_circles,
)
from .widgets import Explorer, copy_into, error_html, info_html, make_explorer, play_button

__all__ = ["schedule_figure", "noising_figure", "terminal_noise_figure", "schedule_explorer", "noising_explorer"]

_SCHEDULE_COLORS = {"beta": "#0072B2", "printed": "#D55E00", "alpha_bar": "#000000", "signal": "#009E73",
                    "noise": "#E69F00", "alpha": "#CC79A7"}


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
    a0 = torch.as_tensor(as_numpy(actions), dtype=torch.float32)
    if not 0 <= step <= schedule.n_steps:
        raise ValueError(f"step must be in 0..{schedule.n_steps} (0 = clean actions), got {step}.")
    if labels is None and toy is not None:
        labels = mode_labels(toy, a0)
    labels = None if labels is None else np.asarray(labels).astype(str)
    points = _noised(a0, schedule, step, fixed_noise(len(a0), a0.shape[1], seed))
    alpha_bar = 1.0 if step == 0 else float(schedule.alphas_cumprod[step - 1])
    fig = make_subplots(rows=1, cols=1)
    order = label_order(labels, toy) if labels is not None else []
    for trace in cloud_traces(points, labels, order, "from", "a<sup>i</sup>"):
        fig.add_trace(trace)
    if toy is not None:
        mode_circles(fig, toy, None, 1)
    unit_circles(fig, 1)
    action_axes(fig, 1)
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
    a0 = torch.as_tensor(as_numpy(actions), dtype=torch.float32)
    if labels is None and toy is not None:
        labels = mode_labels(toy, a0)
    labels = None if labels is None else np.asarray(labels).astype(str)
    order = label_order(labels, toy) if labels is not None else []
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
        traces = cloud_traces(cloud, None if is_reference else labels, order, "from",
                               "N(0, I) draw" if is_reference else "a<sup>N</sup>", size=4)
        for trace in traces:
            trace.showlegend = first_in_legend(trace, shown)
            if is_reference:
                trace.marker.color = "#444444"
            fig.add_trace(trace, row=1, col=col)
    unit_circles(fig, n_cols)
    action_axes(fig, n_cols)
    steps = sorted({s.n_steps for s in schedules})
    fig.update_layout(template=TEMPLATE, height=440, margin=dict(t=110, l=50, r=20, b=40),
                      title=dict(text=f"a<sup>N</sup> at the end of the forward process "
                                      f"(N = {', '.join(map(str, steps))}): is it pure noise?", x=0.01, y=0.97),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0, itemsizing="constant"))
    return fig


def schedule_explorer(n_steps: int = 50, beta_min: float = 0.1, beta_max: float = 10.0) -> Explorer:
    """Sliders for N, β_min and β_max driving ``schedule_figure``. A combination ``VPSchedule`` rejects
    (β_max ≤ β_min) keeps the last valid figure and shows the ValueError's text in ``.message``."""
    style = {"description_width": "initial"}
    controls = {
        "n_steps": widgets.IntSlider(value=n_steps, min=1, max=500, description="N", style=style),
        "beta_min": widgets.FloatSlider(value=beta_min, min=0.0, max=5.0, step=0.05, description="β_min", style=style),
        "beta_max": widgets.FloatSlider(value=beta_max, min=0.0, max=30.0, step=0.1, description="β_max", style=style),
    }
    schedule = VPSchedule(n_steps, beta_min, beta_max)
    explorer = Explorer(controls, schedule_figure(schedule), widgets.HTML())

    def readout(s: VPSchedule) -> str:
        return info_html(
            f"ᾱ<sub>N</sub> = {float(s.alphas_cumprod[-1]):.5f}; closed form exp(-β<sub>min</sub> - "
            f"(β<sub>max</sub>-β<sub>min</sub>)/2) = {terminal_alpha_bar(s.beta_min, s.beta_max):.5f} (no N in it). "
            f"First steps: β<sub>1</sub> = {float(s.betas[0]):.5f}, as printed {_printed_first(s):.5f}."
        )

    def refresh(_change: dict | None = None) -> None:
        try:
            new = VPSchedule(controls["n_steps"].value, controls["beta_min"].value, controls["beta_max"].value)
        except ValueError as err:
            explorer.message.value = error_html("Not a valid schedule:", str(err))
            return
        copy_into(explorer.figure, schedule_figure(new))
        explorer.message.value = readout(new)

    explorer.message.value = readout(schedule)
    for control in controls.values():
        control.observe(refresh, names="value")
    return explorer


def _printed_first(schedule: VPSchedule) -> float:
    return float(paper_printed_betas(schedule.n_steps, schedule.beta_min, schedule.beta_max)[0])


def noising_explorer(
    actions: object,
    schedule: VPSchedule,
    labels: object | None = None,
    seed: int = 0,
    toy: MultimodalBehavior | None = None,
    step: int = 0,
) -> Explorer:
    """A slider over the step i (0 = clean … N = noise) driving ``noising_figure`` with a fixed ε (from
    ``seed``), and a ▶ button that runs the forward process."""
    slider = widgets.IntSlider(value=step, min=0, max=schedule.n_steps, description="step i",
                               continuous_update=True, layout=widgets.Layout(width="420px"))
    explorer = make_explorer(
        {"step": slider, "play": play_button(slider)},
        lambda: noising_figure(actions, schedule, slider.value, labels=labels, seed=seed, toy=toy),
        watch=("step",),
    )
    explorer.message.value = info_html(
        "Drag the slider (or press ▶) to noise the actions: every point keeps its own ε, so it slides from "
        "its clean position a<sup>0</sup> towards ε as √ᾱ<sub>i</sub> shrinks."
    )
    return explorer
