"""``import dac4rec_lite`` is light (PEP 562): the simulators, the rollouts, the logged-data loaders, the
exercises and the plotting stack load on first use of one of their names, while every public name still
resolves as ``dl.X`` and the gymnasium ids are registered by the import alone."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Loaded only on first use (the last two only by dac4rec_lite.viz, which the core never imports).
HEAVY = ["dac4rec_lite.envs.recsim", "dac4rec_lite.envs.logged_env", "dac4rec_lite.envs.policies",
         "dac4rec_lite.envs.virtualtaobao", "dac4rec_lite.evaluation", "dac4rec_lite.data.logged",
         "dac4rec_lite.data.logged_world", "dac4rec_lite.exercises", "dac4rec_lite.viz", "plotly", "ipywidgets",
         "ray"]
# dl.<name> as /work/shared/CONTRACT.md writes them (a copy, so that the test does not read outside the repo).
CONTRACT = ["VPSchedule", "DiffusionPolicy", "OfflineDataset", "TwinQ", "DAC4Rec", "DDPG", "TD3", "SAC",
            "BehaviorCloning", "TD3BC", "DecisionTransformer", "EnergyModel", "train_energy", "EnergyGuidance",
            "collect", "evaluate", "logged_dataset", "exercises", "presets"]

PROBE = r"""
import json, sys
heavy = json.loads(sys.argv[1])
import gymnasium as gym
import dac4rec_lite as dl
out = {"loaded_at_import": sorted(m for m in heavy if m in sys.modules), "dir": dir(dl)}
out["registered"] = {i: gym.spec(i).entry_point for i in ("dac4rec_lite/RecSim-v0", "dac4rec_lite/Logged-v0")}
env = gym.make("dac4rec_lite/RecSim-v0", n_items=40, max_pages=3)
obs, info = env.reset(seed=0)
obs2, reward, terminated, truncated, info = env.step(env.action_space.sample())
out["env"] = [type(env.unwrapped).__module__ + "." + type(env.unwrapped).__name__, list(obs.shape), sorted(info)]
names = json.loads(sys.argv[2])
missing = [n for n in names if getattr(dl, n, None) is None]
out["missing"] = missing
out["check_q_sample"] = callable(dl.exercises.check_q_sample)
out["modules"] = {n: getattr(dl, n).__name__ for n in ("evaluation", "viz", "timing", "studies")}
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def probe():
    import dac4rec_lite as dl

    names = sorted(set(dl.__all__) | set(CONTRACT))
    run = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY), json.dumps(names)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    line = [x for x in run.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def test_import_loads_no_simulator_rollout_loader_exercise_nor_plotting(probe):
    assert probe["loaded_at_import"] == []


def test_every_public_and_contract_name_resolves_after_a_bare_import(probe):
    assert probe["missing"] == []
    assert probe["check_q_sample"]
    assert probe["modules"] == {n: f"dac4rec_lite.{n}" for n in ("evaluation", "viz", "timing", "studies")}


def test_the_import_registers_both_ids_and_gym_make_builds_recsim(probe):
    assert probe["registered"] == {"dac4rec_lite/RecSim-v0": "dac4rec_lite.envs.recsim:RecSimEnv",
                                   "dac4rec_lite/Logged-v0": "dac4rec_lite.envs.logged_env:LoggedEnv"}
    kind, shape, info_keys = probe["env"]
    assert kind == "dac4rec_lite.envs.recsim.RecSimEnv"
    assert len(shape) == 1 and shape[0] > 0
    assert {"clicks", "ctr"} <= set(info_keys)


def test_dir_lists_the_lazy_names(probe):
    lazy = {"RecSimEnv", "RecSimConfig", "LoggedEnv", "logged_dataset", "collect", "collect_mixture", "evaluate",
            "evaluate_logged", "random_policy_rollout", "load_logged", "build_world", "exercises", "evaluation"}
    assert lazy <= set(probe["dir"])


def test_lazy_names_are_the_defining_modules_objects():
    import dac4rec_lite as dl
    from dac4rec_lite import evaluation
    from dac4rec_lite.data.logged import load_logged
    from dac4rec_lite.envs import logged_env, recsim
    from dac4rec_lite.envs.policies import MyopicPolicy

    assert dl.evaluate is evaluation.evaluate and dl.collect is evaluation.collect
    assert dl.RecSimEnv is recsim.RecSimEnv is dl.envs.RecSimEnv
    assert dl.logged_dataset is logged_env.logged_dataset and dl.load_logged is load_logged
    assert dl.envs.MyopicPolicy is MyopicPolicy
    assert dl.ObsLayout is dl.envs.ObsLayout
    # the id the package registers is the one the Logged-v0 module names
    assert dl.envs.LOGGED_ID == logged_env.ENV_ID


def test_an_unknown_name_is_an_attribute_error():
    import dac4rec_lite as dl

    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        dl.no_such_name  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'NoSuchEnv'"):
        dl.envs.NoSuchEnv  # noqa: B018
    assert not hasattr(dl, "no_such_name")
