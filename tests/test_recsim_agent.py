"""DAC4Rec on the simulator's mixture dataset (the quick preset): it must beat the behaviour that logged
the data by 10 %, mean over 3 seeds (issue 6). Slow: about 25 s per seed on one CPU thread (quiet machine)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import dac4rec_lite as dl
from dac4rec_lite.recipes import RECSIM_RECIPES, recsim_recipe


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def test_recipes_cover_every_preset_and_are_copies():
    assert set(RECSIM_RECIPES) == set(dl.PRESETS)
    recipe = recsim_recipe("quick")
    recipe["agent"]["n_steps"] = 999
    assert RECSIM_RECIPES["quick"]["agent"]["n_steps"] != 999


@pytest.mark.slow
def test_dac4rec_beats_the_mixture_behaviour_by_ten_percent(monkeypatch):
    monkeypatch.delenv("DAC4REC_PRESET", raising=False)
    recipe = recsim_recipe("quick")
    env = gym.make("dac4rec_lite/RecSim-v0")
    dataset = dl.collect_mixture(env, recipe["n_episodes"], seed=0, progress=False)
    d = dataset.to_dict()
    behaviour = d["rewards"].sum() / (d["terminals"] + d["timeouts"]).sum()  # mean return per logged episode
    returns = []
    for seed in range(3):
        agent = dl.DAC4Rec(dataset.obs_dim, dataset.action_dim, seed=seed, **recipe["agent"])
        agent.fit(dataset, recipe["train_steps"], batch_size=recipe["batch_size"], progress=False)
        returns.append(dl.evaluate(env, agent, recipe["eval_episodes"], seed=100 + seed, progress=False)["R_cumu"])
    assert np.mean(returns) >= 1.1 * behaviour, f"DAC4Rec {returns} vs mixture behaviour {behaviour:.1f}"
