"""Interactive panels: ipywidgets controls driving a plotly ``FigureWidget``.

Each panel is an ``Explorer``: an ``ipywidgets.VBox`` (display it by leaving it last in a cell) that also
exposes ``.figure`` (the ``go.FigureWidget``), ``.controls`` (a dict of its widgets by name) and
``.message`` (an HTML label for readouts and errors). On every control change the panel rebuilds the
static figure from ``figures.py`` for the new values and copies it into ``.figure``, so a panel always
shows exactly what the matching ``*_figure`` function draws.
"""
from __future__ import annotations

import html
from typing import Callable

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch

from ..data.toy import MultimodalBehavior
from ..diffusion.analysis import paper_printed_betas, terminal_alpha_bar
from ..diffusion.policy import DiffusionPolicy
from ..diffusion.schedule import VPSchedule
from .figures import noising_figure, schedule_figure, trajectory_figure

__all__ = ["Explorer", "schedule_explorer", "noising_explorer", "trajectory_explorer"]


class Explorer(widgets.VBox):
    """Controls above a FigureWidget, with a message line below. Attributes: ``figure``, ``controls``,
    ``message``."""

    def __init__(self, controls: dict[str, widgets.Widget], figure: go.FigureWidget, message: widgets.HTML) -> None:
        rows = [widgets.HBox([c for c in controls.values()])]
        super().__init__(rows + [figure, message])
        self.figure = figure
        self.controls = controls
        self.message = message


def _copy_into(target: go.FigureWidget, source: go.Figure) -> None:
    """Make ``target`` show ``source``: same traces (updated in place, so the view does not flicker) and
    the same layout."""
    with target.batch_update():
        if len(target.data) != len(source.data):
            target.data = []
            target.add_traces(list(source.data))
        else:
            for old, new in zip(target.data, source.data):
                old.update(new.to_plotly_json(), overwrite=True)
        target.layout.update(source.layout.to_plotly_json(), overwrite=True)


def _info(text: str) -> str:
    return f"<span style='color:#333'>{text}</span>"


def _error(text: str) -> str:
    return f"<span style='color:#B00020'><b>Not a valid schedule:</b> {html.escape(text)}</span>"


def _explorer(controls: dict[str, widgets.Widget], build: Callable[[], go.Figure], watch: tuple[str, ...]) -> Explorer:
    """An Explorer whose figure is ``build()`` now and again whenever a watched control's value changes."""
    explorer = Explorer(controls, go.FigureWidget(build()), widgets.HTML())

    def refresh(_change: dict | None = None) -> None:
        _copy_into(explorer.figure, build())

    for name in watch:
        controls[name].observe(refresh, names="value")
    return explorer


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
    explorer = Explorer(controls, go.FigureWidget(schedule_figure(schedule)), widgets.HTML())

    def readout(s: VPSchedule) -> str:
        return _info(
            f"ᾱ<sub>N</sub> = {float(s.alphas_cumprod[-1]):.5f}; closed form exp(-β<sub>min</sub> - "
            f"(β<sub>max</sub>-β<sub>min</sub>)/2) = {terminal_alpha_bar(s.beta_min, s.beta_max):.5f} (no N in it). "
            f"First steps: β<sub>1</sub> = {float(s.betas[0]):.5f}, as printed {_printed_first(s):.5f}."
        )

    def refresh(_change: dict | None = None) -> None:
        try:
            new = VPSchedule(controls["n_steps"].value, controls["beta_min"].value, controls["beta_max"].value)
        except ValueError as err:
            explorer.message.value = _error(str(err))
            return
        _copy_into(explorer.figure, schedule_figure(new))
        explorer.message.value = readout(new)

    explorer.message.value = readout(schedule)
    for control in controls.values():
        control.observe(refresh, names="value")
    return explorer


def _printed_first(schedule: VPSchedule) -> float:
    return float(paper_printed_betas(schedule.n_steps, schedule.beta_min, schedule.beta_max)[0])


def _play_for(slider: widgets.IntSlider, reverse: bool = False, interval_ms: int = 120) -> widgets.Play:
    """A ▶ button that walks ``slider`` from one end to the other (from max down to min when ``reverse``)."""
    span = slider.max - slider.min
    play = widgets.Play(value=0, min=0, max=span, step=1, interval=interval_ms, description="play",
                        show_repeat=False)

    def move(change: dict) -> None:
        slider.value = slider.max - change["new"] if reverse else slider.min + change["new"]

    play.observe(move, names="value")
    return play


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
    explorer = _explorer(
        {"step": slider, "play": _play_for(slider)},
        lambda: noising_figure(actions, schedule, slider.value, labels=labels, seed=seed, toy=toy),
        watch=("step",),
    )
    explorer.message.value = _info(
        "Drag the slider (or press ▶) to noise the actions: every point keeps its own ε, so it slides from "
        "its clean position a<sup>0</sup> towards ε as √ᾱ<sub>i</sub> shrinks."
    )
    return explorer


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
    n_steps = policy.n_steps
    cache: dict[int, np.ndarray] = {}

    def trajectory_of(u: int) -> np.ndarray:
        if u not in cache:
            states = torch.as_tensor(toy.states_for(u, n), device=policy.device)
            generator = torch.Generator(device=policy.device).manual_seed(seed)
            with torch.no_grad():
                _, trajectory = policy.sample(states, generator=generator, return_trajectory=True, variance=variance)
            cache[u] = trajectory.cpu().numpy()
        return cache[u]

    options = [(f"user {u}: likes {', '.join(toy.mode_names[m] for m in toy.likes[u])}", u) for u in range(toy.n_users)]
    dropdown = widgets.Dropdown(options=options, value=user, description="state s",
                                layout=widgets.Layout(width="260px"))
    slider = widgets.IntSlider(value=n_steps, min=0, max=n_steps, description="step i",
                               layout=widgets.Layout(width="420px"))
    explorer = _explorer(
        {"user": dropdown, "step": slider, "play": _play_for(slider, reverse=True)},
        lambda: trajectory_figure(trajectory_of(dropdown.value), slider.value, toy=toy, user=dropdown.value,
                                  n_paths=n_paths),
        watch=("user", "step"),
    )
    explorer.trajectory_of = trajectory_of
    explorer.message.value = _info(
        "Sampling runs from i = N (pure noise) down to i = 0 (the action): drag the slider to the left or "
        "press ▶. Colours say which mode each chain ends on; the open circles and thin lines follow a few chains."
    )
    return explorer
