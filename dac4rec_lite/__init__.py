"""dac4rec_lite: a teaching kit for DAC4Rec (diffusion policies, Q-guided training, energy-guided sampling).

Everything public is importable from here: ``import dac4rec_lite as dl``.
"""
__version__ = "0.1.0"

from .agents import DAC4Rec, DAC4RecConfig, OfflineAgent, TrainingDivergedError
from .agents import DDPG, SAC, TD3, TD3BC, BehaviorCloning, DecisionTransformer, TrajectoryWindows
from .critics import TwinQ, ValueNetwork, soft_update
from .data import CornerBandit, MultimodalBehavior, OfflineDataset
from .encoders import GRUEncoder, IdentityEncoder, MLPEncoder, SASRecEncoder
from . import envs
from .envs import ObsLayout, RecSimConfig, RecSimEnv
from .evaluation import collect, collect_mixture, evaluate, evaluate_logged, random_policy_rollout
from .data.logged import LoggedData, coat_or_synthetic, find_dataset, load_logged, write_synthetic_coat
from .data.logged_world import LoggedWorld, build_world
from .envs.logged_env import LoggedEnv, logged_dataset
from .energy import EnergyGuidance, EnergyModel, support_actions, train_energy
from .diffusion import (
    DiffusionPolicy, EpsilonMLP, Guidance, SinusoidalTimeEmbedding, VPSchedule,
    gaussian_chain_moments, gaussian_chain_path, paper_printed_betas, terminal_alpha_bar,
)
from .gaussian import GaussianPolicy
from . import presets, recipes, timing
from . import exercises
from .training import train_behavior_cloning
from .utils import PRESETS, default_device, environment_report, resolve_preset, set_seed

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
