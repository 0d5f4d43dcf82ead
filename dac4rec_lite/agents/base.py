"""What every agent shares: batches in, metrics out, a progress-bar ``fit``, ``act`` on numpy or tensors,
and checkpoints that carry their config.

A subclass defines ``Config`` (a dataclass of plain values), builds its networks in ``__init__`` from it,
lists them in ``_modules_to_save`` and implements ``update`` and ``_act``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from typing import Any, ClassVar, Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..encoders import as_layout, make_encoder

__all__ = ["OfflineAgent", "TrainingDivergedError", "BATCH_KEYS", "encoder_config", "frozen", "read_checkpoint"]

BATCH_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals")
CHECKPOINT_FORMAT = "dac4rec_lite-agent-v1"
# Config fields added after checkpoints of this format were first written, with the value such files used.
FIELDS_ADDED_LATER = {"eps_activation": "silu"}  # the ε-network's activation was SiLU before the field existed


def read_checkpoint(path: str | os.PathLike[str]) -> dict:
    """The contents of a file written by ``agent.save``, checked to be one (any agent class)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!s}; check the path (save one with agent.save(path)).")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise ValueError(f"{path!s} is not a readable dac4rec_lite checkpoint ({type(err).__name__}: {err}).") from err
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path!s} is not a dac4rec_lite agent checkpoint (no '{CHECKPOINT_FORMAT}' tag).")
    return checkpoint


class TrainingDivergedError(RuntimeError):
    """Raised when a loss or a Q value becomes NaN/inf or |Q| passes its bound: training has blown up."""


def encoder_config(encoder: str | nn.Module | None, kwargs: dict[str, Any]) -> tuple[str | None, nn.Module | None]:
    """How an agent records its ``encoder`` argument in a config of plain values.

    A name (None, "identity", "mlp", "gru", "sasrec") is kept; a module is recorded as ``"custom:<Class>"``
    and returned apart (a checkpoint then needs the module passed again to load). An ``obs_layout`` in
    ``kwargs`` (an ObsLayout) is replaced, in place, by its plain (profile_dim, window, step_dim) triple.
    Returns ``(encoder name, custom module or None)``; build the module with ``OfflineAgent._build_encoder``."""
    custom_encoder = encoder if isinstance(encoder, nn.Module) else None
    if custom_encoder is not None:  # recorded by name: a checkpoint needs the module passed again to load
        encoder = f"custom:{type(custom_encoder).__name__}"
    if kwargs.get("obs_layout") is not None:  # an ObsLayout is stored as its plain triple
        kwargs["obs_layout"] = dataclasses.astuple(as_layout(kwargs["obs_layout"]))
    return encoder, custom_encoder


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No gradients into ``module``'s weights inside the block: an actor loss backpropagates through the
    critic to the action, and must neither train the critic nor leave gradients on it."""
    module.requires_grad_(False)
    try:
        yield
    finally:
        module.requires_grad_(True)


class OfflineAgent:
    Config: ClassVar[type]
    config: Any

    def __init__(self, config: Any) -> None:
        self.config = config
        self.device = torch.device(config.device)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.n_updates = 0

    # ----- networks and checkpoints ------------------------------------------------------------------
    def _build_encoder(self, custom_encoder: nn.Module | None) -> nn.Module:
        """The observation encoder named by the config (or the custom module from ``encoder_config``)."""
        cfg = self.config
        return make_encoder(custom_encoder if custom_encoder is not None else cfg.encoder, cfg.obs_dim, cfg.obs_layout)

    def _modules_to_save(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        """The optimisers ``fit`` decays when the config has ``lr_decay``."""
        return []

    def _extra_state(self) -> dict[str, int]:
        """Plain counters saved beside the weights (subclasses add theirs)."""
        return {}

    def _load_extra_state(self, state: dict[str, int]) -> None:
        """Restore what ``_extra_state`` saved."""

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write config and weights to one file (``torch.save``; loadable with ``weights_only=True``)."""
        torch.save(
            {
                "format": CHECKPOINT_FORMAT,
                "agent": type(self).__name__,
                "config": dataclasses.asdict(self.config),
                "n_updates": self.n_updates,
                "extra": self._extra_state(),
                "weights": {name: m.state_dict() for name, m in self._modules_to_save().items()},
            },
            path,
        )

    @classmethod
    def _read_checkpoint(cls, path: str | os.PathLike[str]) -> dict:
        checkpoint = read_checkpoint(path)
        if checkpoint["agent"] != cls.__name__:
            raise ValueError(
                f"{path!s} holds a {checkpoint['agent']} checkpoint; load it with dl.{checkpoint['agent']}.load(...)."
            )
        fields = {field.name for field in dataclasses.fields(cls.Config)}
        for name, value in FIELDS_ADDED_LATER.items():  # an older file: the value it was trained with
            if name in fields:
                checkpoint["config"].setdefault(name, value)
        return checkpoint

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu", **overrides: Any):
        """Rebuild the agent from the config stored beside the weights, then load the weights.

        ``overrides`` replace config fields that do not change any network's shape (e.g. ``device``)."""
        checkpoint = cls._read_checkpoint(path)
        config = dict(checkpoint["config"], device=str(device), **overrides)
        agent = cls(**config)
        agent.load_weights(path)
        return agent

    def load_weights(self, path: str | os.PathLike[str]) -> None:
        """Load weights saved by an agent with the same config; a different config raises, naming the fields."""
        checkpoint = self._read_checkpoint(path)
        mine, theirs = dataclasses.asdict(self.config), checkpoint["config"]
        ignore = {"device", "seed"}
        differences = [f"{k}: checkpoint {theirs.get(k)!r} vs this agent {mine.get(k)!r}"
                       for k in sorted(set(mine) | set(theirs)) if k not in ignore and mine.get(k) != theirs.get(k)]
        if differences:
            raise ValueError(
                f"{path!s} was saved by an agent with another config ({'; '.join(differences)}); build the agent "
                f"with the checkpoint's config, e.g. dl.{type(self).__name__}.load(path)."
            )
        for name, module in self._modules_to_save().items():
            module.load_state_dict(checkpoint["weights"][name])
        self.n_updates = int(checkpoint["n_updates"])
        self._load_extra_state(checkpoint.get("extra", {}))

    # ----- batches ------------------------------------------------------------------------------------
    def _check_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Check a batch from ``OfflineDataset.sample``: keys, shapes (rewards/terminals (B, 1)), finiteness."""
        missing = [k for k in BATCH_KEYS if k not in batch]
        if missing:
            raise ValueError(f"batch is missing {missing}; draw batches with OfflineDataset.sample(batch_size).")
        n = batch["observations"].shape[0]
        shapes = {
            "observations": (n, self.config.obs_dim), "next_observations": (n, self.config.obs_dim),
            "actions": (n, self.config.action_dim), "rewards": (n, 1), "terminals": (n, 1),
        }
        if "timeouts" in batch:
            shapes["timeouts"] = (n, 1)
        for key, shape in shapes.items():
            value = batch[key]
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"batch[{key!r}] must be a torch.Tensor, got {type(value).__name__}.")
            if tuple(value.shape) != shape:
                hint = " (rewards and terminals are (B, 1) columns so they never broadcast against Q)" if shape[1:] == (1,) else ""
                raise ValueError(f"batch[{key!r}] has shape {tuple(value.shape)}, expected {shape}{hint}.")
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"batch[{key!r}] contains NaN or inf; clean the dataset (OfflineDataset validates it).")
        return {k: v.to(self.device, torch.float32) for k, v in batch.items() if k in shapes}

    def _guard(self, metrics: dict[str, float], q_bound: float) -> None:
        """Stop training with an explanation when it has diverged (Diffusion-QL's critics can blow up)."""
        for name, value in metrics.items():
            if not math.isfinite(value):
                raise TrainingDivergedError(
                    f"{name} became {value} at update {self.n_updates}. Training diverged: lower the learning "
                    "rates or q_weight, check the reward scale, or keep gradient clipping on (grad_clip)."
                )
        q_max = metrics.get("q_abs_max", 0.0)
        if q_max > q_bound:
            raise TrainingDivergedError(
                f"|Q| reached {q_max:.3g} at update {self.n_updates}, above the bound {q_bound:.3g} "
                "(10 × max|r| / (1 − γ) unless q_bound is set): the critic is over-estimating. Lower q_weight "
                "or the critic learning rate, or raise tau's stability by lowering it."
            )

    # ----- training loop ------------------------------------------------------------------------------
    def _step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: list[torch.Tensor]) -> None:
        """One optimiser step on ``loss``, clipping the gradient norm of ``params`` to ``config.grad_clip``."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        optimizer.step()

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        raise NotImplementedError

    def fit(self, dataset, steps: int, batch_size: int = 256, progress: bool = True, log_every: int = 1) -> pd.DataFrame:
        """Run ``steps`` updates on batches drawn from ``dataset`` (an ``OfflineDataset``); returns one row of
        metrics per ``log_every`` updates, with a tqdm progress bar. With ``lr_decay`` in the config the
        learning rates follow a cosine from their initial value to 0 over these ``steps``."""
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}.")
        if dataset.obs_dim != self.config.obs_dim or dataset.action_dim != self.config.action_dim:
            raise ValueError(
                f"dataset has obs_dim={dataset.obs_dim}, action_dim={dataset.action_dim} but the agent was built for "
                f"obs_dim={self.config.obs_dim}, action_dim={self.config.action_dim}."
            )
        schedulers = []
        if getattr(self.config, "lr_decay", False):
            for opt in self._optimizers():
                for group in opt.param_groups:  # a previous fit() annealed lr to 0: start each fit from the top
                    group["lr"] = group.get("initial_lr", group["lr"])
                schedulers.append(torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps))
        rows = []
        bar = tqdm(range(steps), desc=type(self).__name__, disable=not progress, leave=False)
        for _ in bar:
            metrics = self.update(dataset.sample(batch_size, generator=self.generator, device=self.device))
            for scheduler in schedulers:
                scheduler.step()
            if self.n_updates % log_every == 0:
                rows.append({"update": self.n_updates, **metrics})
                bar.set_postfix({k: f"{v:.3g}" for k, v in list(metrics.items())[:3]})
        return pd.DataFrame.from_records(rows)

    # ----- acting -------------------------------------------------------------------------------------
    def _act(self, obs: torch.Tensor, n_candidates: int, temperature: float | None,
             generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def act(self, obs: np.ndarray | torch.Tensor, n_candidates: int = 1, temperature: float | None = None,
            generator: torch.Generator | None = None) -> np.ndarray | torch.Tensor:
        """Actions for observations (obs_dim,) or (B, obs_dim), numpy or tensor; returns the same kind and
        leading shape. With ``n_candidates`` = K > 1, draws K actions per state and picks by min(Q1, Q2):
        the argmax when ``temperature`` is None, else a draw ∝ exp(Q / temperature) (Eq. 21)."""
        if isinstance(n_candidates, bool) or not isinstance(n_candidates, int) or n_candidates < 1:
            raise ValueError(f"n_candidates must be an int >= 1, got {n_candidates!r}.")
        if temperature is not None and not temperature > 0:
            raise ValueError(f"temperature must be positive or None (argmax), got {temperature}.")
        is_numpy = isinstance(obs, np.ndarray)
        if not is_numpy and not isinstance(obs, torch.Tensor):
            raise TypeError(f"obs must be a numpy array or a torch.Tensor, got {type(obs).__name__}.")
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device) if is_numpy else obs.to(self.device, torch.float32)
        single = x.dim() == 1
        if single:
            x = x.unsqueeze(0)
        if x.dim() != 2 or x.shape[1] != self.config.obs_dim:
            raise ValueError(f"obs must have shape ({self.config.obs_dim},) or (B, {self.config.obs_dim}), got {tuple(obs.shape)}.")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("obs contains NaN or inf.")
        with torch.no_grad():
            actions = self._act(x, n_candidates, temperature, generator)
        if not bool(torch.isfinite(actions).all()):
            raise TrainingDivergedError(
                "the policy produced NaN or inf actions: its weights (or the energy model's) are broken; "
                "retrain, or load a checkpoint saved before training diverged."
            )
        if single:
            actions = actions[0]
        if is_numpy:
            return actions.cpu().numpy()
        return actions.to(obs.device)


def select_candidates(q: torch.Tensor, candidates: torch.Tensor, n_states: int, temperature: float | None,
                      generator: torch.Generator | None) -> torch.Tensor:
    """Pick one of K candidate actions per state (Eq. 21).

    ``q`` (B·K, 1) and ``candidates`` (B·K, d) are grouped state-major (rows k·… of state b are b·K … b·K+K−1,
    as ``repeat_interleave`` makes them). Argmax of Q when ``temperature`` is None, else a draw from
    softmax(Q / temperature) over the K candidates of each state."""
    k = q.shape[0] // n_states
    scores = q.reshape(n_states, k)
    if temperature is None:
        choice = scores.argmax(dim=1)
    else:
        probs = torch.softmax(scores / temperature, dim=1)
        draw_on = probs.device if generator is None else generator.device
        choice = torch.multinomial(probs.to(draw_on), 1, generator=generator).squeeze(1).to(q.device)
    return candidates.reshape(n_states, k, -1)[torch.arange(n_states, device=q.device), choice]
