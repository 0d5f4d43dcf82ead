"""dac4rec_lite: a teaching kit for DAC4Rec (diffusion policies, Q-guided training, energy-guided sampling).

Everything public is importable from here: ``import dac4rec_lite as dl``.

``import dac4rec_lite`` loads the core (diffusion, agents, critics, energy, datasets) and registers the gymnasium
ids ``dac4rec_lite/RecSim-v0`` and ``dac4rec_lite/Logged-v0`` (with entry-point strings: nothing of the
simulators is loaded yet). The environments, rollouts and metrics (:mod:`~dac4rec_lite.evaluation`), the
logged-data loaders, the exercises and the other submodules (``viz``, ``studies``, ``experiments`` …) are
loaded on first use of one of their names, ``dl.evaluate`` or ``dl.viz`` say (PEP 562 module ``__getattr__``).
"""
from __future__ import annotations

from ._lazy import lazy_attributes

__version__ = "0.1.0"

from .agents import DAC4Rec, DAC4RecConfig, OfflineAgent, TrainingDivergedError
from .agents import DDPG, SAC, TD3, TD3BC, BehaviorCloning, DecisionTransformer, TrajectoryWindows
from .critics import TwinQ, ValueNetwork, soft_update
from .data import CornerBandit, MultimodalBehavior, OfflineDataset
from .encoders import GRUEncoder, IdentityEncoder, MLPEncoder, SASRecEncoder
from . import envs  # light: registers the gymnasium ids; the simulators load on first use
from .observation import ObsLayout
from .energy import EnergyGuidance, EnergyModel, support_actions, train_energy
from .diffusion import (
    DiffusionPolicy, EpsilonMLP, Guidance, SinusoidalTimeEmbedding, VPSchedule,
    gaussian_chain_moments, gaussian_chain_path, paper_printed_betas, terminal_alpha_bar,
)
from .gaussian import GaussianPolicy
from . import presets, recipes
from .training import train_behavior_cloning
from .utils import PRESETS, default_device, environment_report, resolve_preset, set_seed

# public name -> the module that defines it, imported on first access
_LAZY_NAMES = {
    "RecSimConfig": ".envs.recsim", "RecSimEnv": ".envs.recsim",
    "LoggedEnv": ".envs.logged_env", "logged_dataset": ".envs.logged_env",
    "collect": ".evaluation", "collect_mixture": ".evaluation", "evaluate": ".evaluation",
    "evaluate_logged": ".evaluation", "random_policy_rollout": ".evaluation",
    "LoggedData": ".data.logged", "coat_or_synthetic": ".data.logged", "find_dataset": ".data.logged",
    "load_logged": ".data.logged", "write_synthetic_coat": ".data.logged",
    "LoggedWorld": ".data.logged_world", "build_world": ".data.logged_world",
}
# submodules reachable as dl.<name> without an import statement (loaded on first access)
_LAZY_MODULES = ("exercises", "timing", "evaluation", "studies", "viz", "experiments", "cli", "io", "cep_bias",
                 "guidance_studies", "observation", "agents", "data", "diffusion", "energy", "critics", "encoders",
                 "gaussian", "training", "utils")

__all__ = [
    "VPSchedule", "EpsilonMLP", "gaussian_chain_moments", "gaussian_chain_path", "paper_printed_betas",
    "terminal_alpha_bar", "SinusoidalTimeEmbedding", "DiffusionPolicy", "Guidance",
    "GaussianPolicy", "MultimodalBehavior", "CornerBandit", "OfflineDataset",
    "TwinQ", "ValueNetwork", "soft_update", "IdentityEncoder", "MLPEncoder", "GRUEncoder", "SASRecEncoder",
    "envs", "presets", "recipes", "ObsLayout", "RecSimConfig", "RecSimEnv", "collect", "collect_mixture", "evaluate",
    "LoggedData", "coat_or_synthetic", "find_dataset", "load_logged", "write_synthetic_coat", "LoggedWorld", "build_world",
    "LoggedEnv", "logged_dataset", "evaluate_logged", "random_policy_rollout",
    "DAC4Rec", "DAC4RecConfig", "EnergyModel", "EnergyGuidance", "train_energy", "support_actions", "OfflineAgent", "TrainingDivergedError", "train_behavior_cloning",
    "DDPG", "TD3", "SAC", "BehaviorCloning", "TD3BC", "DecisionTransformer", "TrajectoryWindows",
    "PRESETS", "resolve_preset", "set_seed", "default_device", "environment_report", "exercises",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY_NAMES, _LAZY_MODULES, globals())
