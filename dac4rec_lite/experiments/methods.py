"""The methods a study trains, and one run of a study: collect the log → train → evaluate → one flat row.

``METHODS`` maps a method's name to its agent class and keyword arguments at a preset's study sizes
(``dac4rec_lite.presets``, use ``"study"``); ``build_agent`` builds it. A ``Run`` (method, seed, preset and
what else varies) names one independent run; ``execute_run(run)`` does it and returns a flat dict of
scalars — the run's label, R_cumu, R_avg, Length, CTR, the CTR-by-length buckets of Table 3 as flat columns
(``CTR_11_20``, ``episodes_11_20``, ``clicks_11_20``, ``shown_11_20``, …) and the seconds spent — which is
what ``experiments.runner.execute`` appends to a run table. An ``EnergyRun`` trains once and evaluates the
same agent at several guidance scales ω (ω only matters at ``act``), one column set per ω.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from ..agents import DDPG, SAC, TD3BC, BehaviorCloning, DAC4Rec, DecisionTransformer, TD3
from ..evaluation import LENGTH_BUCKETS, METRICS, MIXTURE_COMPONENTS, collect_mixture, evaluate
from ..presets import resolve_preset, table

__all__ = ["METRICS", "STUDY_SETTINGS", "METHODS", "METHOD_BATCH_SIZE", "BEHAVIOUR_LOGS", "batch_size_for",
           "build_agent", "Run", "EnergyRun", "execute_run", "bucket_key", "scale_column"]

# preset → the studies' sizes (the same dicts as ``presets.table[preset]["study"]``)
STUDY_SETTINGS: dict[str, dict[str, Any]] = {preset: uses["study"] for preset, uses in table.items()}

# The behaviour logs the energy study varies: which scripted policies log the sessions, in equal shares
# (``evaluation.collect_mixture``). "mixture" is the default log of every other study.
BEHAVIOUR_LOGS: dict[str, tuple[str, ...]] = {
    "mixture": MIXTURE_COMPONENTS,                                 # myopic, noisy expert, random: ⅓ each
    "more random": (*MIXTURE_COMPONENTS, "random"),                # random logs half the sessions
    "expert + random": ("noisy_expert", "random"),                 # no myopic sessions
}


def _diffusion_kwargs(agent: dict[str, Any], energy_steps: int) -> dict[str, Any]:
    """A diffusion actor with energy guidance, at the agents' default inverse temperature κ (``beta=``): κ is
    unit-free (the agents score supports by κ·Q/σ, σ the supports' pooled spread of Q; docs/notation.md and
    docs/errata.md "Conventions"), so the simulator needs no κ of its own."""
    return dict(agent, energy_steps=energy_steps)


def _plain_kwargs(agent: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in agent.items() if k not in ("n_steps",)}


# method name → (class, keyword arguments from the preset's shared settings)
METHODS: dict[str, Callable[[dict[str, Any], int], tuple[type, dict[str, Any]]]] = {
    "BC": lambda a, e: (BehaviorCloning, dict(hidden_dim=a["hidden_dim"], lr=a["actor_lr"])),
    "TD3+BC": lambda a, e: (TD3BC, _plain_kwargs(a)),
    "DT": lambda a, e: (DecisionTransformer, dict(lr=a["actor_lr"])),
    "DDPG": lambda a, e: (DDPG, _plain_kwargs(a)),
    "TD3": lambda a, e: (TD3, _plain_kwargs(a)),
    "SAC": lambda a, e: (SAC, _plain_kwargs(a)),
    "DDPG+Diffusion": lambda a, e: (DDPG, dict(a, diffusion=True)),
    "SAC+Diffusion": lambda a, e: (SAC, dict(a, diffusion=True)),
    "DDPG+Energy": lambda a, e: (DDPG, dict(_plain_kwargs(a), energy=True)),
    "SAC+Energy": lambda a, e: (SAC, dict(_plain_kwargs(a), energy=True)),
    "DDPG+Diffusion+Energy": lambda a, e: (DDPG, dict(_diffusion_kwargs(a, e), diffusion=True, energy=True)),
    "SAC+Diffusion+Energy": lambda a, e: (SAC, dict(_diffusion_kwargs(a, e), diffusion=True, energy=True)),
    "DAC4Rec": lambda a, e: (DAC4Rec, dict(_diffusion_kwargs(a, e), energy=True)),
    "DAC4Rec −E": lambda a, e: (DAC4Rec, dict(a)),
    "DAC4Rec −A": lambda a, e: (DAC4Rec, dict(_diffusion_kwargs(a, e), energy=True, policy_improvement="chain")),
}

# The Decision Transformer samples windows of K = 10 steps: 64 windows (640 transitions) per batch, the DT
# paper's batch size; 256 windows made it several times dearer than any other method.
METHOD_BATCH_SIZE = {"DT": 64}


def batch_size_for(method: str, preset: str) -> int:
    """The batch size a study trains ``method`` with at ``preset``."""
    return min(METHOD_BATCH_SIZE.get(method, 10**9), STUDY_SETTINGS[preset]["batch_size"])


def build_agent(method: str, obs_dim: int, action_dim: int, preset: str = "quick", seed: int = 0,
                encoder: str | None = None, obs_layout=None, **overrides: Any):
    """The agent a study trains for ``method`` (a key of ``METHODS``) at ``preset``'s sizes (``preset`` as
    given: the caller resolves it)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}.")
    settings = STUDY_SETTINGS[resolve_preset(preset, explicit=True)]
    cls, kwargs = METHODS[method](settings["agent"], settings["energy_steps"])
    kwargs = dict(kwargs, seed=seed, **overrides)
    if encoder is not None:
        kwargs.update(encoder=encoder, obs_layout=obs_layout)
    return cls(obs_dim, action_dim, **kwargs)


@dataclass(frozen=True)
class Run:
    """One independent training-and-evaluation run of a study. ``device`` is where it trains (not part of its
    label: the same run on CPU or GPU fills the same row)."""

    method: str
    seed: int
    preset: str
    encoder: str | None = None
    overrides: tuple[tuple[str, Any], ...] = field(default=())  # extra agent settings, e.g. (("n_steps", 50),)
    device: str = "cpu"

    @property
    def label(self) -> dict[str, Any]:
        return {"method": self.method, "encoder": self.encoder or "none", **dict(self.overrides), "seed": self.seed}

    @property
    def components(self) -> tuple[str, ...]:
        return MIXTURE_COMPONENTS


@dataclass(frozen=True)
class EnergyRun(Run):
    """A run of the energy study: trained once with energy guidance on behaviour log ``log`` (a key of
    ``BEHAVIOUR_LOGS``), evaluated on the same users at every guidance scale ω in ``scales``."""

    log: str = "mixture"
    scales: tuple[float, ...] = (0.0, 1.0)

    @property
    def label(self) -> dict[str, Any]:
        return {"log": self.log, **super().label}

    @property
    def components(self) -> tuple[str, ...]:
        return BEHAVIOUR_LOGS[self.log]


def bucket_key(bucket: str) -> str:
    """The column suffix of a Table-3 length bucket: ``"11-20"`` → ``"11_20"``, ``"31+"`` → ``"31plus"``."""
    return bucket.replace("-", "_").replace("+", "plus")


def scale_column(metric: str, scale: float) -> str:
    """The energy study's column of ``metric`` at guidance scale ω = ``scale``: ``"R_cumu@0.5"``."""
    return f"{metric}@{scale:g}"


def _bucket_columns(episodes) -> dict[str, float]:
    """Table 3's buckets as flat columns: per bucket the pooled CTR, the episodes in it and the clicks and
    items shown they add up to (so buckets can be pooled over seeds)."""
    columns: dict[str, float] = {}
    for low, high in LENGTH_BUCKETS:
        inside = (episodes["length"] >= low) & (episodes["length"] <= (high if high is not None else np.inf))
        key = bucket_key(f"{low}-{high}" if high is not None else f"{low}+")
        clicks, shown = float(episodes.loc[inside, "clicks"].sum()), float(episodes.loc[inside, "shown"].sum())
        columns.update({f"CTR_{key}": clicks / shown if shown else math.nan, f"episodes_{key}": int(inside.sum()),
                        f"clicks_{key}": clicks, f"shown_{key}": shown})
    return columns


def execute_run(run: Run) -> dict[str, Any]:
    """Collect → train → evaluate one run; a flat dict of scalars (the runner's ``work``)."""
    settings = STUDY_SETTINGS[run.preset]
    env = gym.make("dac4rec_lite/RecSim-v0")
    dataset = collect_mixture(env, settings["n_episodes"], seed=run.seed, components=run.components, progress=False)
    agent = build_agent(run.method, dataset.obs_dim, dataset.action_dim, run.preset, run.seed, run.encoder,
                        env.unwrapped.obs_layout, device=run.device, **dict(run.overrides))
    start = time.perf_counter()
    agent.fit(dataset, settings["train_steps"], batch_size=batch_size_for(run.method, run.preset), progress=False)
    trained = time.perf_counter()
    eval_seed = 10_000 + run.seed  # fresh users, the same for every method and scale of this seed: paired
    row: dict[str, Any] = dict(run.label)
    if isinstance(run, EnergyRun):
        for scale in run.scales:
            agent.config.energy_scale = float(scale)  # Eq. 24's ω is read at act(); 0 = unguided
            result = evaluate(env, agent, settings["eval_episodes"], seed=eval_seed, progress=False)
            row.update({scale_column(m, scale): float(result[m]) for m in METRICS})
    else:
        result = evaluate(env, agent, settings["eval_episodes"], seed=eval_seed, progress=False)
        row.update({m: float(result[m]) for m in METRICS})
        row.update(_bucket_columns(result["episodes"]))
    row.update(train_seconds=trained - start, eval_seconds=time.perf_counter() - trained)
    return row

