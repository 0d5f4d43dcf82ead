"""Environments: the built-in RecSim-v0 simulator and Logged-v0 (both registered with gymnasium on import),
their batched cores (``RecSimulator``, ``LoggedSimulator``: what ``dl.evaluate`` steps), the scripted reference
policies and the VirtualTaobao adapter. Rollouts and metrics live in :mod:`dac4rec_lite.evaluation`.

Importing this package is light: it registers the two gymnasium ids with entry-point strings (gymnasium
imports the environment's module only when ``gymnasium.make`` builds one) and loads its submodules on first
use of a name (PEP 562), so ``import dac4rec_lite`` does not load the simulators.
"""
from __future__ import annotations

from .._lazy import lazy_attributes

from gymnasium.envs.registration import register, registry

RECSIM_ID = "dac4rec_lite/RecSim-v0"
LOGGED_ID = "dac4rec_lite/Logged-v0"   # the same string as logged_env.ENV_ID (a test checks they agree)

if RECSIM_ID not in registry:
    register(id=RECSIM_ID, entry_point="dac4rec_lite.envs.recsim:RecSimEnv")
if LOGGED_ID not in registry:
    register(id=LOGGED_ID, entry_point="dac4rec_lite.envs.logged_env:LoggedEnv")

# public name -> the submodule that defines it (imported on first access)
_LAZY = {
    "ObsLayout": "dac4rec_lite.observation",
    "RecSimConfig": ".recsim", "RecSimEnv": ".recsim", "RecSimulator": ".recsim", "UserBatch": ".recsim",
    "RandomPolicy": ".policies", "MyopicPolicy": ".policies", "LongTermExpert": ".policies",
    "NoisyExpert": ".policies", "RandomItemPolicy": ".policies", "SCRIPTED_POLICIES": ".policies",
    "LoggedEnv": ".logged_env", "LoggedSimulator": ".logged_env", "register_logged_env": ".logged_env",
    "VirtualTaobao": ".virtualtaobao",
}
_SUBMODULES = ("recsim", "policies", "logged_env", "virtualtaobao", "checks", "layout")

__all__ = ["ObsLayout", "RecSimConfig", "RecSimEnv", "RecSimulator", "UserBatch", "RandomPolicy", "MyopicPolicy",
           "LongTermExpert", "NoisyExpert", "RandomItemPolicy", "SCRIPTED_POLICIES",
           "LoggedEnv", "LoggedSimulator", "VirtualTaobao", "register_logged_env", "RECSIM_ID", "LOGGED_ID"]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, _SUBMODULES, globals())
