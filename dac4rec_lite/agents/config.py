"""Agent configurations: the fields every agent shares, validated once, and the field groups of the two
plug-ins (the diffusion actor and the energy model).

A config is a dataclass of plain values saved beside the weights. ``AgentConfig.__post_init__`` checks every
field against its annotation and its range before any network is built:

* a number must be a number: ``"6"`` for ``hidden_dim`` is a ``TypeError`` naming the field; an ``int`` field
  refuses ``bool`` and ``float`` (``seed=1.5``), a ``float`` field refuses ``bool``;
* every float must be finite — NaN passes every ``x < 0`` test, so it is refused by name (``q_weight=NaN``
  would make the weights NaN, ``grad_clip=NaN`` turn clipping silently off);
* ranges and choices come from one table, ``RANGES`` / ``CHOICES``, each with the reason in its message.

Subclasses add their own fields (and cross-field checks after ``super().__post_init__()``); a field in
``RANGES`` is checked wherever it appears.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable

from ..diffusion import ACTIVATIONS, SAMPLERS
from ..energy import ENERGY_METHODS
from .encoding import POLICY_ENCODERS

__all__ = ["AgentConfig", "ActorCriticFields", "DiffusionFields", "EnergyFields", "validate_config", "RANGES", "CHOICES"]

# field → (test, what the value must be). Checked after the type, so the test sees a finite number.
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "obs_dim": (lambda v: v >= 1, ">= 1 (the size of one observation)"),
    "action_dim": (lambda v: v >= 1, ">= 1 (the size of one action)"),
    "hidden_dim": (lambda v: v >= 1, ">= 1 (the width of the hidden layers)"),
    "gamma": (lambda v: 0 <= v < 1, "in [0, 1) (the discount)"),
    "tau": (lambda v: 0 < v <= 1, "in (0, 1] (the Polyak rate of the target networks)"),
    "actor_lr": (lambda v: v > 0, "> 0"), "critic_lr": (lambda v: v > 0, "> 0"), "lr": (lambda v: v > 0, "> 0"),
    "grad_clip": (lambda v: v >= 0, ">= 0 (0 turns clipping off)"),
    "max_action": (lambda v: v > 0, "> 0 or None (no action box)"),
    "q_bound": (lambda v: v > 0, "> 0 or None (automatic: 10 · max|r| / (1 − γ))"),
    "q_weight": (lambda v: v >= 0, ">= 0 (0 is pure behaviour cloning)"),
    "n_steps": (lambda v: v >= 1, ">= 1 (diffusion steps N)"),
    "beta_min": (lambda v: v >= 0, ">= 0"), "beta_max": (lambda v: v > 0, "> 0"),
    "n_next_actions": (lambda v: v >= 1, ">= 1"),
    "awr_temperature": (lambda v: v > 0, "> 0"), "awr_max_weight": (lambda v: v > 0, "> 0"),
    "expectile": (lambda v: 0 < v < 1, "in (0, 1)"),
    "energy_steps": (lambda v: v >= 1, ">= 1"),
    "energy_beta": (lambda v: v > 0, "> 0 (κ, the inverse temperature of exp(κ Q / σ))"),
    "energy_scale": (lambda v: v >= 0, ">= 0 (ω; 0 samples without guidance)"),
    "n_support": (lambda v: v >= 2, ">= 2 (the targets compare supports)"),
    "energy_states": (lambda v: v >= 1, ">= 1 or None (all states)"),
    "energy_candidates": (lambda v: v >= 2, ">= 2 (Eq. 21 selection needs a choice)"),
    "energy_noise": (lambda v: v > 0, "> 0"),
    "policy_noise": (lambda v: v >= 0, ">= 0"), "noise_clip": (lambda v: v >= 0, ">= 0"),
    "policy_delay": (lambda v: v >= 1, ">= 1"),
    "initial_temperature": (lambda v: v > 0, "> 0"), "temperature_lr": (lambda v: v > 0, "> 0"),
    "bc_weight": (lambda v: v > 0, "> 0 (α of TD3+BC)"),
    "context_length": (lambda v: v >= 1, ">= 1"), "max_timestep": (lambda v: v >= 1, ">= 1"),
    "n_layers": (lambda v: v >= 1, ">= 1"), "n_heads": (lambda v: v >= 1, ">= 1"), "embed_dim": (lambda v: v >= 1, ">= 1"),
    "dropout": (lambda v: 0 <= v < 1, "in [0, 1)"), "weight_decay": (lambda v: v >= 0, ">= 0"),
    "return_scale": (lambda v: v > 0, "> 0 or None (from the data)"),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "eps_activation": tuple(sorted(ACTIVATIONS)), "td_sampler": ("auto", *SAMPLERS), "act_sampler": SAMPLERS,
    "energy_method": ENERGY_METHODS, "policy_encoder": POLICY_ENCODERS,
}


def _check_value(name: str, value: Any, kind: Any) -> Any:
    """``value`` checked against one annotation (int, float, bool, str, a tuple of ints, or X | None); returns
    it as a plain value (numpy ints become ints)."""
    options = typing.get_args(kind) if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union else (kind,)
    if value is None:
        if type(None) in options:
            return None
        raise TypeError(f"{name} must not be None.")
    concrete = [k for k in options if k is not type(None)]
    kind = concrete[0] if len(concrete) == 1 else kind
    if kind is bool:
        if not isinstance(value, (bool,)) and type(value).__name__ != "bool_":
            raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__}).")
        return bool(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__}).")
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__}).")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}.")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {value!r} ({type(value).__name__}).")
        return value
    if typing.get_origin(kind) is tuple:  # obs_layout: (profile_dim, window, step_dim)
        if not isinstance(value, (tuple, list)) or len(value) != len(typing.get_args(kind)) or any(
                isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0 for v in value):
            raise TypeError(f"{name} must be a tuple of {len(typing.get_args(kind))} non-negative ints, got {value!r}.")
        return tuple(int(v) for v in value)
    return value  # a type this table does not know: the subclass checks it


def validate_config(config: Any) -> None:
    """Check (and normalise in place) every field of a config dataclass: its type, finiteness, range and
    choice (see the module docstring). Raises ``TypeError`` or ``ValueError`` naming the field."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = _check_value(f.name, getattr(config, f.name), hints.get(f.name, Any))
        object.__setattr__(config, f.name, value)
        if value is None:
            continue
        if f.name in RANGES:
            test, must = RANGES[f.name]
            if not test(value):
                raise ValueError(f"{f.name} must be {must}, got {value!r}.")
        if f.name in CHOICES and value not in CHOICES[f.name]:
            raise ValueError(f"{f.name} must be one of {CHOICES[f.name]}, got {value!r}.")


@dataclass
class AgentConfig:
    """What every agent's config has: the sizes, the encoder, where it runs, its seed."""

    obs_dim: int
    action_dim: int
    encoder: str | None = None       # None/"identity", "mlp", "gru", "sasrec", or "custom:<Class>" for a module
    obs_layout: tuple[int, int, int] | None = None  # (profile_dim, window, step_dim), needed by gru / sasrec
    device: str = "cpu"
    seed: int = 0

    def __post_init__(self) -> None:
        validate_config(self)


@dataclass
class ActorCriticFields:
    """An actor with critics and target networks (DAC4Rec and the DDPG/TD3/SAC backbones)."""

    gamma: float = 0.99
    tau: float = 0.005               # Polyak rate of every target network (and the target encoder)
    policy_encoder: str = "shared"   # "shared": the policy reads the critic's encoder; "separate": its own (encoding.py)
    hidden_dim: int = 256
    max_action: float | None = 1.0
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    grad_clip: float = 5.0           # max global gradient norm of each optimiser step (0 turns it off)
    critic_layer_norm: bool = False  # LayerNorm in the critics: damps Q's growth off the data
    lr_decay: bool = True            # cosine-decay the learning rates to 0 over each fit() (as Diffusion-QL)
    q_bound: float | None = None     # |Q| above this stops training; None: 10 · max|r| / (1 − γ)


@dataclass
class DiffusionFields:
    """The diffusion actor μ_θ and how it is trained and sampled (read by ``DiffusionActor``)."""

    n_steps: int = 100
    beta_min: float = 0.1
    beta_max: float = 10.0
    eps_activation: str = "relu"     # of the ε-network: "relu" (measured cheapest), "silu", "mish", "tanh"
    q_weight: float = 1.0            # λ in Algorithm 1: weight of L_q against L_d
    clip_approximation: bool = True  # clip â⁰ to ±max_action before the direct L_q (DiffusionActor.boxed)
    td_sampler: str = "auto"         # TD target's next actions: "auto" (see td_sampling) | "ddpm" (N steps) | "ddim" | "dpm"
    td_sample_steps: int | None = None  # steps of a ddim/dpm td_sampler (None: all N)
    act_sampler: str = "ddpm"        # sampler used by act()
    act_sample_steps: int | None = None

    def check_diffusion(self) -> None:
        """The checks that relate two fields (call after ``validate_config``)."""
        if not self.beta_max > self.beta_min:
            raise ValueError(f"beta_max must be > beta_min, got beta_min={self.beta_min}, beta_max={self.beta_max}.")
        for sampler, steps in (("td_sampler", "td_sample_steps"), ("act_sampler", "act_sample_steps")):
            k = getattr(self, steps)
            if k is not None and (getattr(self, sampler) in ("ddpm", "auto") or not 1 <= k <= self.n_steps):
                raise ValueError(f"{steps}={k} needs {sampler}='ddim' or 'dpm' and a value in 1..n_steps={self.n_steps}.")

    @property
    def td_sampling(self) -> tuple[str, int | None]:
        """(sampler, steps) of the TD target's next actions, as ``DiffusionPolicy.sample`` takes them.

        ``"auto"`` (the default) is DPM-Solver++(2M) in 15 steps when N ≥ 30 and the paper's N-step chain
        otherwise: line 3 of Algorithm 1 is most of an update's cost at large N, and against the full chain the
        15-step solver left the trained policy's return within run-to-run noise at half the training time
        (paired over seeds at N = 100: ``benchmarks/td_sampler.py``, figures in ``results/td_sampler/``); below
        N = 30 it would save less than half the chain. ``td_sampler="ddpm"`` always runs the full chain."""
        if self.td_sampler == "auto":
            return ("dpm", 15) if self.n_steps >= 30 else ("ddpm", None)
        return self.td_sampler, (self.td_sample_steps if self.td_sampler != "ddpm" else None)

    @property
    def td_sample_k(self) -> int | None:
        """The TD sampler's step count as the sampler takes it (None for the full ddpm chain)."""
        return self.td_sampling[1]

    @property
    def act_sample_k(self) -> int | None:
        """The acting sampler's step count as the sampler takes it (None for the full ddpm chain)."""
        return self.act_sample_steps if self.act_sampler != "ddpm" else None


@dataclass
class EnergyFields:
    """Algorithm 1 step 2 (``energy=True``): f_ψ, trained after the policy, guides act() (Eq. 24)."""

    energy: bool = False
    energy_steps: int = 1000         # updates of f_ψ at the end of each fit()
    energy_method: str = "cep"       # "cep" (contrastive) | "mse" (paper-literal Eq. 25)
    energy_beta: float = 3.0         # κ of exp(κ Q / σ) (Eq. 21/23), σ the spread of Q over the supports: unit-free
    energy_scale: float = 1.0        # ω, the guidance scale at act() (Eq. 24)
    n_support: int = 16              # K support actions per state for f_ψ's targets
    energy_states: int | None = 4096  # states that get supports (None: all)
