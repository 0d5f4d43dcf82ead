"""Agents: DAC4Rec (Algorithm 1), the backbones DDPG / TD3 / SAC (each ± diffusion, ± energy), the baselines
(behaviour cloning, TD3+BC, Decision Transformer) and the shared offline-agent interface."""
from .base import OfflineAgent, TrainingDivergedError, read_checkpoint
from .backbones import DDPG, SAC, TD3, BackboneConfig, DDPGConfig, SACConfig, TD3Config
from .baselines import BehaviorCloning, BehaviorCloningConfig, TD3BC, TD3BCConfig
from .dac4rec import DAC4Rec, DAC4RecConfig
from .decision_transformer import DecisionTransformer, DecisionTransformerConfig, TrajectoryWindows
from .diffusion_actor import DiffusionActor

__all__ = ["OfflineAgent", "TrainingDivergedError", "DAC4Rec", "DAC4RecConfig", "DiffusionActor",
           "DDPG", "TD3", "SAC", "BackboneConfig", "DDPGConfig", "TD3Config", "SACConfig",
           "BehaviorCloning", "BehaviorCloningConfig", "TD3BC", "TD3BCConfig",
           "DecisionTransformer", "DecisionTransformerConfig", "TrajectoryWindows", "load_agent"]

AGENT_CLASSES = {cls.__name__: cls for cls in (DAC4Rec, DDPG, TD3, SAC, BehaviorCloning, TD3BC, DecisionTransformer)}


def load_agent(path, device: str = "cpu", **overrides):
    """Any agent from its checkpoint, whatever its class (read from the file): ``dl.agents.load_agent(path)``."""
    name = read_checkpoint(path)["agent"]
    if name not in AGENT_CLASSES:
        raise ValueError(f"{path!s} holds an agent of unknown type {name!r}; known: {', '.join(AGENT_CLASSES)}.")
    return AGENT_CLASSES[name].load(path, device=device, **overrides)
