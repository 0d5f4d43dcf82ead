"""Environments: the built-in RecSim-v0 simulator and Logged-v0 (both registered with gymnasium on import),
their batched cores (``RecSimulator``, ``LoggedSimulator``: what ``dl.evaluate`` steps), the scripted reference
policies and the VirtualTaobao adapter. Rollouts and metrics live in :mod:`dac4rec_lite.evaluation`."""
from gymnasium.envs.registration import register, registry

from ..observation import ObsLayout
from .policies import SCRIPTED_POLICIES, LongTermExpert, MyopicPolicy, NoisyExpert, RandomItemPolicy, RandomPolicy
from .recsim import RecSimConfig, RecSimEnv, RecSimulator, UserBatch

__all__ = ["ObsLayout", "RecSimConfig", "RecSimEnv", "RecSimulator", "UserBatch", "RandomPolicy", "MyopicPolicy",
           "LongTermExpert", "NoisyExpert", "RandomItemPolicy", "SCRIPTED_POLICIES"]

if "dac4rec_lite/RecSim-v0" not in registry:
    register(id="dac4rec_lite/RecSim-v0", entry_point="dac4rec_lite.envs.recsim:RecSimEnv")

from .logged_env import LoggedEnv, LoggedSimulator, register_logged_env  # noqa: E402
from .virtualtaobao import VirtualTaobao  # noqa: E402

__all__ += ["LoggedEnv", "LoggedSimulator", "VirtualTaobao", "register_logged_env"]
register_logged_env()
