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


# --- notebook 05: energy guidance (Sec. 3.3, Eq. 21–25) ---------------------------------------------------

from ..data.toy import CornerBandit  # noqa: E402  (imports of this appended block)
from ..guidance_studies import energy_grid, guided_sample, q_values  # noqa: E402
from .figures import energy_heatmap_figure, guidance_scale_figure, guided_trajectory_figure  # noqa: E402

__all__ += ["energy_explorer", "guided_trajectory_explorer", "guidance_scale_explorer"]


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

    slider = widgets.IntSlider(value=step, min=1, max=schedule.n_steps, description="step i",
                               layout=widgets.Layout(width="420px"))
    explorer = _explorer(
        {"step": slider, "play": _play_for(slider, reverse=True)},
        lambda: energy_heatmap_figure(grids_at(slider.value), slider.value, schedule.n_steps, bandit=bandit,
                                      bound=bound, alpha_bar=float(schedule.alphas_cumprod[slider.value - 1]),
                                      context=context),
        watch=("step",),
    )
    explorer.grids_at = grids_at
    explorer.message.value = _info(
        "Large i: a<sup>i</sup> is mostly noise, so f is a smooth, gentle slope towards the good corner. Small i: "
        "f has the shape of the reward itself (Eq. 23 with ℰ<sub>0</sub> = βQ). The white lines are the guidance ∇f."
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
    slider = widgets.IntSlider(value=policy.n_steps, min=0, max=policy.n_steps, description="step i",
                               layout=widgets.Layout(width="420px"))
    explorer = _explorer(
        {"step": slider, "play": _play_for(slider, reverse=True)},
        lambda: guided_trajectory_figure(trajectories, slider.value, bandit, n_paths=n_paths, context=context),
        watch=("step",),
    )
    explorer.trajectories = trajectories
    explorer.message.value = _info(
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
    """A dropdown over ``energies`` and a scale slider driving ``guidance_scale_figure``: ``n`` guided actions
    against ``n`` unguided ones from the same seed, their Q under ``critic`` and their blobs. Samples are
    drawn when a (energy, scale) pair is first shown and cached (``explorer.samples_for(name, scale)``)."""
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

    explorer = _explorer({"energy": dropdown, "scale": slider}, build, watch=("energy", "scale"))
    explorer.samples_for = samples_for
    explorer.message.value = _info(
        "Scale 0 is the behaviour policy; scale 1 targets π* ∝ exp(βQ) μ (Eq. 21); larger scales sharpen it "
        "further (roughly a larger β). Watch the share on the best blob and the Q histogram move right."
    )
    return explorer


# --- notebooks 03 and 04: the action approximation and Q-guided training (Sec. 3.2, 3.4) -----------------

import dataclasses  # noqa: E402  (imports of this appended block)
import time  # noqa: E402

from ..agents.base import TrainingDivergedError  # noqa: E402
from ..agents.dac4rec import POLICY_IMPROVEMENTS, DAC4Rec  # noqa: E402
from ..data.dataset import OfflineDataset  # noqa: E402
from .figures import approximation_figure, bandit_policy_figure  # noqa: E402

__all__ += ["approximation_explorer", "q_training_panel"]

Q_WEIGHTS = (0.0, 0.1, 0.3, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)


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
    slider = widgets.IntSlider(value=step, min=1, max=policy.n_steps, description="step i",
                               layout=widgets.Layout(width="420px"))
    explorer = _explorer(
        {"step": slider, "play": _play_for(slider)},
        lambda: approximation_figure(policy, states, actions, slider.value, seed=seed, bandit=bandit, n_lines=n_lines),
        watch=("step",),
    )
    explorer.message.value = _info(
        "Small i: a<sup>i</sup> is a<sup>0</sup> plus a little noise and one ε call recovers it almost exactly. "
        "Large i: a<sup>i</sup> is mostly noise and â<sup>0</sup> falls back towards what the network expects on "
        "average, between the blobs. Each point moves along its own path (same ε at every step)."
    )
    return explorer


def q_training_panel(
    bandit: CornerBandit,
    dataset: OfflineDataset,
    agent: DAC4Rec,
    steps: int,
    batch_size: int = 256,
    history: object | None = None,
    n: int = 400,
    seed: int = 0,
    q_weights: tuple[float, ...] = Q_WEIGHTS,
) -> Explorer:
    """Train DAC4Rec on the corner bandit from a panel: a λ (``q_weight``) slider, a policy-improvement
    dropdown (direct / elbo / awr), a context dropdown for the contextual bandit, and a **Train** button.

    Moving a control trains nothing; pressing Train builds ``DAC4Rec`` with the settings of ``agent`` (the
    already trained agent shown first) except λ and the improvement, fits it for ``steps`` updates of
    ``batch_size`` (tqdm progress bar below the figure) and redraws ``bandit_policy_figure``. Trained agents
    are kept per (improvement, λ), so going back to a pair shows it at once. A run that diverges shows
    ``TrainingDivergedError``'s explanation instead of a figure.

    Attributes besides ``Explorer``'s: ``agent`` and ``history`` (the agent shown and its ``fit`` DataFrame),
    ``trained`` ({(improvement, λ): (agent, history)}), ``output`` (the progress area) and ``train()`` (what
    the button calls)."""
    cfg = agent.config
    base = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("obs_dim", "action_dim")}
    options = sorted({*map(float, q_weights), float(cfg.q_weight)})
    style = {"description_width": "initial"}
    controls: dict[str, widgets.Widget] = {
        "q_weight": widgets.SelectionSlider(options=[(f"{v:g}", v) for v in options], value=float(cfg.q_weight),
                                            description="λ (q_weight)", style=style, continuous_update=False,
                                            layout=widgets.Layout(width="360px")),
        "improvement": widgets.Dropdown(options=list(POLICY_IMPROVEMENTS), value=cfg.policy_improvement,
                                        description="improvement", style=style, layout=widgets.Layout(width="220px")),
    }
    if bandit.contextual:
        controls["context"] = widgets.Dropdown(options=list(range(len(bandit.centres))), value=0, description="context",
                                               style=style, layout=widgets.Layout(width="150px"))
    controls["train"] = widgets.Button(description="Train", button_style="primary", icon="play",
                                       tooltip=f"train DAC4Rec for {steps} updates with these settings")

    def context() -> int:
        return controls["context"].value if "context" in controls else 0

    def build(shown: DAC4Rec) -> go.Figure:
        return bandit_policy_figure(shown, bandit, context=context(), n=n, seed=seed)

    explorer = Explorer(controls, go.FigureWidget(build(agent)), widgets.HTML())
    explorer.output = widgets.Output()
    explorer.children = (*explorer.children, explorer.output)
    explorer.agent, explorer.history = agent, history
    explorer.trained = {(cfg.policy_improvement, float(cfg.q_weight)): (agent, history)}

    def key() -> tuple[str, float]:
        return controls["improvement"].value, float(controls["q_weight"].value)

    def show(shown: DAC4Rec) -> None:
        _copy_into(explorer.figure, build(shown))

    def train(_button: widgets.Button | None = None) -> None:
        improvement, q_weight = key()
        if key() not in explorer.trained:
            controls["train"].disabled = True
            explorer.message.value = _info(f"Training {improvement}, λ = {q_weight:g} for {steps} updates …")
            start = time.perf_counter()
            try:
                new = DAC4Rec(bandit.obs_dim, bandit.action_dim, **{**base, "q_weight": q_weight,
                                                                     "policy_improvement": improvement})
                with explorer.output:
                    explorer.output.clear_output()
                    fitted = new.fit(dataset, steps, batch_size=batch_size, progress=True)
            except TrainingDivergedError as err:
                explorer.message.value = (f"<span style='color:#B00020'><b>Training diverged</b> "
                                          f"({improvement}, λ = {q_weight:g}): {html.escape(str(err))}</span>")
                return
            finally:
                controls["train"].disabled = False
            explorer.trained[key()] = (new, fitted)
            done = f"Trained in {time.perf_counter() - start:.1f} s."
        else:
            done = "Already trained with these settings: shown again."
        explorer.agent, explorer.history = explorer.trained[(improvement, q_weight)]
        show(explorer.agent)
        explorer.message.value = _info(f"{done} Move λ or the improvement and press Train again to compare.")

    def settings_changed(_change: dict) -> None:
        improvement, q_weight = key()
        ready = " (already trained: Train shows it at once)" if key() in explorer.trained else ""
        explorer.message.value = _info(f"Press <b>Train</b> to train {improvement} with λ = {q_weight:g}{ready}; "
                                       "the figure still shows the last run.")

    controls["train"].on_click(train)
    controls["q_weight"].observe(settings_changed, names="value")
    controls["improvement"].observe(settings_changed, names="value")
    if "context" in controls:
        controls["context"].observe(lambda _change: show(explorer.agent), names="value")
    explorer.train = train
    explorer.message.value = _info(
        f"Showing {cfg.policy_improvement}, λ = {cfg.q_weight:g}. Choose λ and the improvement, then press "
        f"<b>Train</b> ({steps} updates; nothing trains while you move the controls)."
    )
    return explorer
