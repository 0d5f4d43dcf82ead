"""Every size the kit runs at, in one table: ``presets.table[preset][use]``.

A *preset* says how much compute a run may take: ``tiny`` (CI: seconds, numbers meaningless), ``quick`` (a
classroom: minutes on a laptop CPU), ``standard`` (an evening on 2 cores: the studies at 5 seeds with enough
data and updates to separate methods) and ``full`` (the paper's budget: 3,000 sessions, 20,000 updates,
N = 100). A *use* says what is being sized, because two uses of one preset need different sizes:

``recipe``  one DAC4Rec trained well on the simulator (notebook 06, ``tests/test_recsim_agent.py``,
            ``dl.recipes.recsim_recipe``): more data and updates for one method.
``study``   the paper's studies (notebook 07, ``python -m dac4rec_lite study``): many methods × seeds, so
            each run is smaller (at ``quick``: 400 sessions, N = 10, 1,000 updates against the recipe's 600,
            N = 20, 2,000).

Both uses have ``n_episodes`` (logged sessions in the mixture dataset), ``train_steps`` (updates),
``batch_size``, ``eval_episodes`` (fresh users evaluated) and ``agent`` (keyword arguments every
diffusion/actor-critic agent shares). ``study`` adds ``seeds``, ``energy_steps`` (updates of f_ψ) and
``n_values`` (the N values of RQ3).

Which preset runs (one rule, applied to every part of a run): an explicit choice wins — the CLI's
``--preset`` flag (``resolve_preset(value, explicit=True)``); otherwise the environment variable
``DAC4REC_PRESET`` overrides a notebook's or a function's default; otherwise that default.
"""
from __future__ import annotations

import copy
import os
from typing import Any, Mapping, TypeVar

T = TypeVar("T")

__all__ = ["PRESETS", "USES", "ENV_VAR", "table", "resolve_preset", "settings", "choose"]

PRESETS = ("tiny", "quick", "standard", "full")
USES = ("recipe", "study")
ENV_VAR = "DAC4REC_PRESET"

# The recipe's agent: N = 20 and hidden 128 train several times faster than N = 100 / hidden 256 at the same
# return on the quick mixture; γ = 0.95 because sessions last 10–45 pages; learning rates 1e-3 for a
# 2,000-update budget (the reasons are in ``dac4rec_lite.recipes``, the measurements in docs/backbones.md).
_RECIPE_AGENT = dict(n_steps=20, hidden_dim=128, actor_lr=1e-3, critic_lr=1e-3, gamma=0.95, q_weight=1.0)
_STUDY_AGENT = dict(n_steps=10, hidden_dim=128, actor_lr=1e-3, critic_lr=1e-3, gamma=0.95)
_PAPER_N = (20, 50, 100, 200)  # Fig. 3b's N values

table: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "recipe": dict(n_episodes=60, train_steps=30, batch_size=64, eval_episodes=60,
                       agent=dict(_RECIPE_AGENT, n_steps=5, hidden_dim=32)),
        "study": dict(seeds=(0,), n_episodes=30, train_steps=8, batch_size=32, eval_episodes=20, energy_steps=5,
                      n_values=(3, 5), agent=dict(_STUDY_AGENT, n_steps=3, hidden_dim=16)),
    },
    "quick": {
        "recipe": dict(n_episodes=600, train_steps=2000, batch_size=256, eval_episodes=500, agent=dict(_RECIPE_AGENT)),
        "study": dict(seeds=(0, 1, 2, 3, 4), n_episodes=400, train_steps=1000, batch_size=256, eval_episodes=300,
                      energy_steps=300, n_values=_PAPER_N, agent=dict(_STUDY_AGENT)),
    },
    "standard": {
        "recipe": dict(n_episodes=1000, train_steps=5000, batch_size=256, eval_episodes=1000, agent=dict(_RECIPE_AGENT)),
        "study": dict(seeds=(0, 1, 2, 3, 4), n_episodes=1000, train_steps=3000, batch_size=256, eval_episodes=500,
                      energy_steps=600, n_values=_PAPER_N, agent=dict(_STUDY_AGENT, n_steps=20)),
    },
    "full": {
        "recipe": dict(n_episodes=3000, train_steps=20000, batch_size=256, eval_episodes=2000,
                       agent=dict(_RECIPE_AGENT, n_steps=100, hidden_dim=256, actor_lr=3e-4, critic_lr=3e-4)),
        "study": dict(seeds=(0, 1, 2, 3, 4), n_episodes=3000, train_steps=20000, batch_size=256, eval_episodes=2000,
                      energy_steps=2000, n_values=_PAPER_N,
                      agent=dict(_STUDY_AGENT, n_steps=100, hidden_dim=256, actor_lr=3e-4, critic_lr=3e-4)),
    },
}


def _check_name(value: object, source: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{source} must be a preset name (a string), got {type(value).__name__}.")
    if value not in PRESETS:
        raise ValueError(f"{source}={value!r} is not a preset; choose one of {', '.join(PRESETS)}.")
    return value


def resolve_preset(preset: str, explicit: bool = False) -> str:
    """The preset to run. ``explicit=True`` (the CLI's ``--preset``): ``preset`` itself, whatever
    ``DAC4REC_PRESET`` says. Otherwise (a notebook's or a function's default): ``DAC4REC_PRESET`` when it is
    set and not empty, else ``preset``. A name outside ``PRESETS`` raises ``ValueError`` naming where it
    came from (the variable or the argument)."""
    if explicit:
        return _check_name(preset, "--preset")
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return _check_name(from_env, ENV_VAR)
    return _check_name(preset, "PRESET")


def settings(preset: str, use: str) -> dict[str, Any]:
    """A deep copy of ``table[preset][use]`` (``use`` in ``USES``): change it freely. ``preset`` is taken as
    given (call ``resolve_preset`` first where the environment variable should apply)."""
    _check_name(preset, "preset")
    if use not in USES:
        raise ValueError(f"use={use!r} is not a use of the preset table; choose one of {', '.join(USES)}.")
    return copy.deepcopy(table[preset][use])


def choose(sizes: Mapping[str, T], preset: str) -> T:
    """A notebook's own sizes for ``preset`` from its ``{preset: sizes}`` dict: ``sizes[preset]`` when the dict
    lists it, else the sizes of the largest preset below it that it lists (a notebook without a ``standard``
    entry runs its ``quick`` sizes at ``standard``). ``preset`` must be a preset name; a dict that lists no
    preset at or below it raises ``ValueError`` naming the presets it has."""
    _check_name(preset, "preset")
    unknown = [name for name in sizes if name not in PRESETS]
    if unknown:
        raise ValueError(f"sizes lists {unknown}, which are not presets; use names among {', '.join(PRESETS)}.")
    for name in reversed(PRESETS[:PRESETS.index(preset) + 1]):
        if name in sizes:
            return sizes[name]
    raise ValueError(f"sizes has no entry for {preset!r} or a smaller preset (it has {', '.join(sizes)}).")
