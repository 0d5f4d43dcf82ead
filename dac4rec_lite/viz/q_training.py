"""Notebook 04: Q-guided training of the diffusion policy (Sec. 3.2, Eq. 15–20) on the corner bandit.

``training_curves_figure`` draws ``agent.fit``'s log; ``bandit_policy_figure`` where the policy's actions land
beside what the critic believes; ``q_gradient_figure`` the critic's ∂Q/∂a as arrows on its heatmap (where the
Q term pushes actions); ``contextual_policy_figure`` and ``q_weight_sweep_figure`` compare contexts and
weights λ; ``training_animation_figure`` plays the samples of direct / elbo / awr over training updates;
``q_training_panel`` trains from a button. The numbers come from ``dac4rec_lite.experiments.analysis``."""
from __future__ import annotations

import dataclasses
import time
from typing import Mapping

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..agents.base import TrainingDivergedError
from ..agents.dac4rec import POLICY_IMPROVEMENTS, DAC4Rec
from ..data.dataset import OfflineDataset
from ..data.toy import CornerBandit
from ..experiments.analysis import bandit_outcome, bandit_samples, critic_action_gradient, critic_grid
from .style import (
    ACTION_RANGE,
    ELSEWHERE,
    RUN_COLORS,
    TEMPLATE,
    action_axes,
    action_box,
    arrow_trace,
    blob_circles,
    blob_labels,
    cloud_traces,
    first_in_legend,
)
from .widgets import Explorer, copy_into, error_html, info_html

__all__ = ["training_curves_figure", "bandit_policy_figure", "contextual_policy_figure", "q_weight_sweep_figure",
           "q_gradient_figure", "training_animation_figure", "q_training_panel", "Q_WEIGHTS"]

_TRAINING_METRICS = {
    "critic_loss": "critic TD loss (Eq. 10 / 20)",
    "q_mean": "mean Q(s, a) on the batch",
    "bc_loss": "L<sub>d</sub> (Eq. 8)",
    "q_loss": "L<sub>q</sub> (Eq. 15 / 18 / 19)",
    "value_loss": "V(s) expectile loss",
}


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
        color = RUN_COLORS[position % len(RUN_COLORS)]
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


def _landing_traces(actions: np.ndarray, bandit: CornerBandit, size: int, opacity: float) -> list[go.Scatter]:
    """Actions coloured by the blob they land on, one trace per blob ("lands on NE", ...) and one for the
    actions on no blob ("lands off the data"), in that fixed order."""
    traces = cloud_traces(actions, blob_labels(bandit, actions), [*bandit.blob_names, ELSEWHERE], "lands on",
                           "action", size=size, opacity=opacity)
    traces[-1].name = "lands off the data"
    traces[-1].text = ["lands off the data"] * len(traces[-1].x)
    return traces


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
    blob_circles(fig, bandit, 2, context)
    action_box(fig, 2)
    action_axes(fig, 2)
    if title is None:
        outcome = bandit_outcome(bandit, actions, context)
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
            trace.showlegend = first_in_legend(trace, shown)
            fig.add_trace(trace, row=1, col=col)
        blob_circles(fig, bandit, [col], context)
    action_box(fig, n_cols)
    action_axes(fig, n_cols)
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
        outcome = bandit_outcome(bandit, actions, context)
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
        outcome = bandit_outcome(bandit, actions, context)
        panels[f"<b>{name}</b><br>reward {outcome['mean true reward']:.2f} · best {outcome['% on best']:.0f}% · "
               f"off {outcome['% off data']:.0f}%"] = (actions, context)
    return _sample_panels(panels, bandit, "Where the actions land as the Q term gets more weight")


def q_gradient_figure(agent, bandit: CornerBandit, context: int = 0, resolution: int = 41,
                      arrow_resolution: int = 11, n: int = 200, seed: int = 0) -> go.Figure:
    """Notebook 04: the critic's ∂Q/∂a as arrows on its heatmap min(Q₁, Q₂)(s, a), for one context.

    The Q term of the policy loss, −Q(s, â⁰) (Eq. 15), moves the policy's actions along ∂Q/∂a: the arrows
    (``critic_action_gradient``, by autograd, on an ``arrow_resolution`` grid) show that push, on one length
    scale (the longest arrow spans 0.9 of a grid cell), over the heatmap (``critic_grid``). Off the data the
    critic is extrapolating, so arrows there point wherever its guesses rise. With ``n`` > 0, ``n`` of the
    policy's actions (``bandit_samples``, seed ``seed``) are drawn as white dots. Arguments: ``agent`` a
    trained ``DAC4Rec`` (or any agent with ``critic``, ``encoder``, ``act``) on ``bandit``."""
    if arrow_resolution < 2:
        raise ValueError(f"arrow_resolution must be >= 2, got {arrow_resolution}.")
    bound = ACTION_RANGE[1]
    obs = bandit.observations(context, 1)[0]
    axis, q = critic_grid(agent, obs, resolution, bound)
    gradient = critic_action_gradient(agent, obs, arrow_resolution, bound)
    vectors = gradient[["dq1", "dq2"]].to_numpy()
    spacing = 2 * bound / (arrow_resolution - 1)
    longest = float(np.hypot(vectors[:, 0], vectors[:, 1]).max())
    unit = 0.9 * spacing / max(longest, 1e-12)
    fig = make_subplots(rows=1, cols=1)
    fig.add_trace(go.Heatmap(z=q, x=axis, y=axis, colorscale="Viridis", zsmooth="best", name="critic",
                             colorbar=dict(title="Q", len=0.8),
                             hovertemplate="a<sub>1</sub>=%{x:.2f}, a<sub>2</sub>=%{y:.2f}<br>min(Q<sub>1</sub>, Q<sub>2</sub>) = %{z:.2f}<extra></extra>"))
    fig.add_trace(arrow_trace(gradient[["a1", "a2"]].to_numpy(), unit * vectors,
                              "∂Q/∂a: where the Q term pushes an action", color="white", min_head=0.15 * spacing))
    if n > 0:
        actions = bandit_samples(agent, bandit, context, n, seed)
        fig.add_trace(go.Scatter(x=actions[:, 0], y=actions[:, 1], mode="markers", name="the policy's actions",
                                 marker=dict(size=4, color="white", opacity=0.8, line=dict(width=0.5, color="#222222")),
                                 hoverinfo="skip"))
    blob_circles(fig, bandit, 1, context)
    action_box(fig, 1)
    action_axes(fig, 1)
    cfg = agent.config
    fig.update_layout(template=TEMPLATE, height=560, margin=dict(t=90, l=60, r=20, b=40),
                      title=dict(x=0.01, y=0.97, text=(
                          f"What the Q term pushes towards ({cfg.policy_improvement}, λ = {cfg.q_weight:g}"
                          f"{f', context {context}' if bandit.contextual else ''}): ∂Q/∂a on min(Q<sub>1</sub>, Q<sub>2</sub>)"
                          f"<br><sup>arrows on one scale: longest |∂Q/∂a| = {longest:.3g} drawn as 0.9 of a grid cell</sup>")),
                      legend=dict(orientation="h", yanchor="top", y=-0.1, x=0, itemsizing="constant"))
    return fig


def training_animation_figure(snapshots: pd.DataFrame, bandit: CornerBandit, context: int = 0,
                              frame_ms: int = 600) -> go.Figure:
    """Notebook 04: the policy's samples over training, one panel per run (e.g. direct / elbo / awr), as a
    plotly animation with a ▶ button and a slider over the update counts.

    ``snapshots`` is ``dac4rec_lite.experiments.analysis.training_snapshots(...)`` (columns ``run, update,
    a1, a2``): frame k shows every run's samples after the k-th update count, coloured by the blob they land
    on; the title gives each run's share on the best blob of ``context`` and its mean true reward then."""
    missing = {"run", "update", "a1", "a2"} - set(snapshots.columns)
    if missing:
        raise ValueError(f"snapshots lack columns {sorted(missing)}; build them with training_snapshots(...).")
    runs = list(dict.fromkeys(snapshots["run"]))
    updates = sorted(set(int(u) for u in snapshots["update"]))

    def actions_at(run: str, update: int) -> np.ndarray:
        rows = snapshots[(snapshots["run"] == run) & (snapshots["update"] == update)]
        return rows[["a1", "a2"]].to_numpy(dtype=float)

    def title_at(update: int) -> str:
        parts = []
        for run in runs:
            outcome = bandit_outcome(bandit, actions_at(run, update), context)
            parts.append(f"{run}: {outcome['% on best']:.0f}% on {outcome['best blob']}, "
                         f"reward {outcome['mean true reward']:.2f}")
        return f"After {update} updates<br><sup>{' · '.join(parts)}</sup>"

    fig = make_subplots(rows=1, cols=len(runs), subplot_titles=[f"<b>{run}</b>" for run in runs],
                        horizontal_spacing=0.04)
    fig.update_annotations(font_size=13)
    for col, run in enumerate(runs, start=1):
        for trace in _landing_traces(actions_at(run, updates[0]), bandit, size=4, opacity=0.6):
            trace.update(showlegend=col == 1, legendgroup=trace.name)  # every label listed, once, for all frames
            fig.add_trace(trace, row=1, col=col)
    frames = []
    for update in updates:
        data = [trace for run in runs for trace in _landing_traces(actions_at(run, update), bandit, 4, 0.6)]
        frames.append(go.Frame(name=str(update), data=[go.Scatter(x=t.x, y=t.y, text=t.text) for t in data],
                               traces=list(range(len(data))), layout=dict(title=dict(text=title_at(update)))))
    fig.frames = frames
    animate = dict(frame=dict(duration=frame_ms, redraw=True), transition=dict(duration=0), mode="immediate")
    fig.update_layout(
        updatemenus=[dict(type="buttons", direction="left", x=0, y=-0.2, xanchor="left", yanchor="top",
                          buttons=[dict(label="▶ play", method="animate", args=[None, {**animate, "fromcurrent": True}]),
                                   dict(label="❚❚ pause", method="animate",
                                        args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate")])])],
        sliders=[dict(active=0, x=0.18, len=0.82, y=-0.14, currentvalue=dict(prefix="updates: "),
                      steps=[dict(label=str(u), method="animate", args=[[str(u)], animate]) for u in updates])],
    )
    blob_circles(fig, bandit, len(runs), context)
    action_box(fig, len(runs))
    action_axes(fig, len(runs))
    fig.update_layout(template=TEMPLATE, height=560, margin=dict(t=110, l=50, r=20, b=170),
                      title=dict(x=0.01, y=0.97, text=title_at(updates[0])),
                      legend=dict(orientation="h", yanchor="top", y=-0.5, x=0, itemsizing="constant"))
    return fig


Q_WEIGHTS = (0.0, 0.1, 0.3, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)


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

    explorer = Explorer(controls, build(agent), widgets.HTML())
    explorer.output = widgets.Output()
    explorer.children = (*explorer.children, explorer.output)
    explorer.agent, explorer.history = agent, history
    explorer.trained = {(cfg.policy_improvement, float(cfg.q_weight)): (agent, history)}

    def key() -> tuple[str, float]:
        return controls["improvement"].value, float(controls["q_weight"].value)

    def show(shown: DAC4Rec) -> None:
        copy_into(explorer.figure, build(shown))

    def train(_button: widgets.Button | None = None) -> None:
        improvement, q_weight = key()
        if key() not in explorer.trained:
            controls["train"].disabled = True
            explorer.message.value = info_html(f"Training {improvement}, λ = {q_weight:g} for {steps} updates …")
            start = time.perf_counter()
            try:
                new = DAC4Rec(bandit.obs_dim, bandit.action_dim, **{**base, "q_weight": q_weight,
                                                                     "policy_improvement": improvement})
                with explorer.output:
                    explorer.output.clear_output()
                    fitted = new.fit(dataset, steps, batch_size=batch_size, progress=True)
            except TrainingDivergedError as err:
                explorer.message.value = error_html(f"Training diverged ({improvement}, λ = {q_weight:g}):", str(err))
                return
            finally:
                controls["train"].disabled = False
            explorer.trained[key()] = (new, fitted)
            done = f"Trained in {time.perf_counter() - start:.1f} s."
        else:
            done = "Already trained with these settings: shown again."
        explorer.agent, explorer.history = explorer.trained[(improvement, q_weight)]
        show(explorer.agent)
        explorer.message.value = info_html(f"{done} Move λ or the improvement and press Train again to compare.")

    def settings_changed(_change: dict) -> None:
        improvement, q_weight = key()
        ready = " (already trained: Train shows it at once)" if key() in explorer.trained else ""
        explorer.message.value = info_html(f"Press <b>Train</b> to train {improvement} with λ = {q_weight:g}{ready}; "
                                       "the figure still shows the last run.")

    controls["train"].on_click(train)
    controls["q_weight"].observe(settings_changed, names="value")
    controls["improvement"].observe(settings_changed, names="value")
    if "context" in controls:
        controls["context"].observe(lambda _change: show(explorer.agent), names="value")
    explorer.train = train
    explorer.message.value = info_html(
        f"Showing {cfg.policy_improvement}, λ = {cfg.q_weight:g}. Choose λ and the improvement, then press "
        f"<b>Train</b> ({steps} updates; nothing trains while you move the controls)."
    )
    return explorer
