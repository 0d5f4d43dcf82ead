"""How to train one DAC4Rec well on the built-in simulator: the ``recipe`` rows of ``dac4rec_lite.presets``
(notebook 06 and ``tests/test_recsim_agent.py`` train with them).

Why these values (chosen on the quick mixture dataset, 600 episodes ≈ 8k transitions):

* state = the raw observation (``encoder=None``) by default; notebook 06 uses the GRU encoder (trained by the
  critic alone, see ``encoders.py``), which did well in the recipe's measurement. (An encoder can also hold
  the BC part back, as an MLP encoder did with an earlier, smaller observation: check the encoder when you
  change the observation.)
* N = 20 and hidden 128 instead of N = 100 / hidden 256: several times cheaper to train, at the same return;
* γ = 0.95: sessions last 10–45 pages, so a 20-page horizon sees the cost of tiring a user;
* learning rates 1e-3 for the 2000-update budget.

The returns these settings reach are measured by notebook 06 and ``tests/test_recsim_agent.py``; the
comparisons behind the choices are in docs/backbones.md ("Measurements behind the module docstrings").
"""
from __future__ import annotations

from .presets import PRESETS, resolve_preset, settings, table

__all__ = ["RECSIM_RECIPES", "recsim_recipe"]

# preset → the recipe's sizes (the same dicts as ``presets.table[preset]["recipe"]``)
RECSIM_RECIPES = {preset: table[preset]["recipe"] for preset in PRESETS}


def recsim_recipe(preset: str = "quick") -> dict:
    """The settings of ``preset`` (``DAC4REC_PRESET`` overrides it): dataset size ``n_episodes``,
    ``train_steps``, ``batch_size``, ``eval_episodes`` and the ``agent`` keyword arguments. A fresh copy."""
    return settings(resolve_preset(preset), "recipe")
