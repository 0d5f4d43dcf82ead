"""Environments: the built-in RecSim-v0 simulator (registered with gymnasium on import) and its scripted
reference policies."""
from gymnasium.envs.registration import register, registry

from ..observation import ObsLayout
from .policies import SCRIPTED_POLICIES, LongTermExpert, MyopicPolicy, NoisyExpert, RandomPolicy
from .recsim import RecSimConfig, RecSimEnv, RecSimulator, UserBatch

__all__ = ["ObsLayout", "RecSimConfig", "RecSimEnv", "RecSimulator", "UserBatch", "RandomPolicy", "MyopicPolicy",
           "LongTermExpert", "NoisyExpert", "SCRIPTED_POLICIES"]

if "dac4rec_lite/RecSim-v0" not in registry:
    register(id="dac4rec_lite/RecSim-v0", entry_point="dac4rec_lite.envs.recsim:RecSimEnv")

from .logged_env import LoggedEnv, register_logged_env  # noqa: E402
from .virtualtaobao import VirtualTaobao  # noqa: E402

__all__ += ["LoggedEnv", "VirtualTaobao", "register_logged_env"]
register_logged_env()
