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
import signal
import threading
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar, Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .._checks import check_device, check_generator, multinomial, seeded_init
from ..encoders import as_layout, make_encoder
from .checkpoint import (CHECKPOINT_FORMAT, FIELDS_ADDED_LATER, check_optimizer, check_part, load_part, read_checkpoint,
                         write_checkpoint)

__all__ = ["OfflineAgent", "TrainingDivergedError", "BATCH_KEYS", "encoder_config", "frozen", "read_checkpoint",
           "CHECKPOINT_FORMAT", "FIELDS_ADDED_LATER"]

BATCH_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals")


def _count(value: object, name: str) -> int:
    """``value`` as an int >= 1; ``TypeError`` for a non-integer (2.5, "10", True), ``ValueError`` below 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= 1, got {type(value).__name__} {value!r}.")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}.")
    return int(value)


class _Interrupt:
    requested = False


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[_Interrupt]:
    """Hold a Ctrl-C (SIGINT) until the caller checks ``.requested`` at its next boundary; a second Ctrl-C
    raises ``KeyboardInterrupt`` at once. Outside the main thread (no signals there), or where SIGINT is
    ignored, nothing is installed."""
    interrupt = _Interrupt()

    def hold(signum: int, frame: object) -> None:
        if interrupt.requested:
            raise KeyboardInterrupt
        interrupt.requested = True

    previous = signal.getsignal(signal.SIGINT)
    # Not where SIGINT is ignored (e.g. pool workers whose parent handles Ctrl-C) or cannot be handled.
    install = threading.current_thread() is threading.main_thread() and previous not in (None, signal.SIG_IGN)
    if install:
        signal.signal(signal.SIGINT, hold)
    try:
        yield interrupt
    finally:
        if install:
            signal.signal(signal.SIGINT, previous)


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
        self.device = check_device(config.device)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.n_updates = 0

    # ----- the constructor every agent runs (template method) -----------------------------------------
    def _construct(self, obs_dim: int, action_dim: int, encoder: str | nn.Module | None, kwargs: dict[str, Any]) -> None:
        """Build an agent from its constructor arguments, the same way for every agent: record the ``encoder``
        argument (``encoder_config``), build and validate ``self.Config``, seed the generator, build the
        encoder and then ``_build_networks(state_dim)`` under ``seeded_init`` (so the same seed gives the same
        weights and no global generator moves), then ``_build_targets()`` (copies, no random draws), move
        every saved module to the device, and ``_build_optimizers()``."""
        encoder, custom_encoder = encoder_config(encoder, kwargs)
        OfflineAgent.__init__(self, self.Config(obs_dim, action_dim, encoder=encoder, **kwargs))
        with seeded_init(self.config.seed):  # seeded initialisation that leaves every global generator alone
            self.encoder = self._build_encoder(custom_encoder)
            self._build_networks(self.encoder.out_dim)
        self._build_targets()
        for module in self._modules_to_save().values():
            module.to(self.device)
        self._build_optimizers()

    def _build_networks(self, state_dim: int) -> None:
        """The agent's networks over ``state_dim``-dimensional states (called by ``_construct``)."""
        raise NotImplementedError

    def _build_targets(self) -> None:
        """Target networks and other copies of the networks (called by ``_construct``; none by default)."""

    def _build_optimizers(self) -> None:
        """The optimisers, once the networks are on the device (called by ``_construct``)."""
        raise NotImplementedError

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

    def _named_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser the agent holds, by attribute name (saved so that a resumed ``fit`` continues)."""
        return {name: value for name, value in vars(self).items() if isinstance(value, torch.optim.Optimizer)}

    @property
    def act_generator(self) -> torch.Generator:
        """The generator ``act`` draws from when it is given none: ``torch.Generator(device).manual_seed(seed)``,
        apart from the training stream (acting between fits does not change what ``fit`` draws)."""
        if getattr(self, "_act_generator", None) is None:
            self._act_generator = torch.Generator(device=self.device).manual_seed(self.config.seed)
        return self._act_generator

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write config, weights, optimiser states and the generators' states to one file (``torch.save``;
        loadable with ``weights_only=True``), with a SHA-256 digest of the weights that ``load`` verifies.

        The write is atomic: a temporary file in the same folder, fsynced, then renamed over ``path``, so an
        interrupted or failed save leaves the previous file intact. ``fit(k)``, ``save``, ``load``, ``fit(k)``
        gives the same weights as ``fit(2k)`` (with ``lr_decay=False``: the cosine restarts at each fit)."""
        write_checkpoint(path, {
            "agent": type(self).__name__,
            "config": dataclasses.asdict(self.config),
            "n_updates": self.n_updates,
            "extra": self._extra_state(),
            "weights": {name: m.state_dict() for name, m in self._modules_to_save().items()},
            "optimizers": {name: opt.state_dict() for name, opt in self._named_optimizers().items()},
            "rng": {"device": self.device.type, "generator": self.generator.get_state(),
                    "act_generator": self.act_generator.get_state()},
        })

    @classmethod
    def _read_checkpoint(cls, path: str | os.PathLike[str]) -> dict:
        checkpoint = read_checkpoint(path)  # tag, entries and digest checked
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

        ``overrides`` replace config fields that do not change any network's shape (e.g. ``device``). The file's
        digest is verified first (a changed byte is a ``ValueError``); checkpoints written before digests,
        optimiser and generator states were saved still load, unverified, with fresh optimisers and generators."""
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
        weights, optimizers = checkpoint["weights"], checkpoint.get("optimizers", {})
        for name, module in self._modules_to_save().items():  # check every part before changing any
            if name not in weights:
                raise ValueError(f"{path!s} has no weights for '{name}' (it holds {sorted(weights)}); it is "
                                 "incomplete or was saved by another version of this agent.")
            check_part(module, weights[name], name, path)
        for name, optimizer in self._named_optimizers().items():
            if name in optimizers:  # a file from before optimiser states were saved: fresh optimisers
                check_optimizer(optimizer, optimizers[name], name, path)
        rng = self._usable_rng(checkpoint.get("rng"), path)
        for name, module in self._modules_to_save().items():
            load_part(module, weights[name], name, path)
        for name, optimizer in self._named_optimizers().items():
            if name in optimizers:
                try:
                    optimizer.load_state_dict(optimizers[name])
                except (ValueError, KeyError, TypeError, RuntimeError) as err:
                    raise ValueError(f"{path!s}: the state of optimiser '{name}' does not fit this agent ({err}).") from err
        self.n_updates = int(checkpoint["n_updates"])
        self._load_extra_state(checkpoint.get("extra", {}))
        if rng is not None:
            self.generator.set_state(rng["generator"])
            self.act_generator.set_state(rng["act_generator"])

    def _usable_rng(self, rng: dict | None, path: str | os.PathLike[str]) -> dict | None:
        """The saved generator states if they can continue here; None for an older file (the generators stay
        freshly seeded) or one saved on another kind of device (with a warning). Damaged states raise."""
        if not rng:
            return None
        if rng.get("device") != self.device.type:
            warnings.warn(f"{path!s} saved its random streams on {rng.get('device')}; they cannot continue on "
                          f"{self.device.type}, so this agent's generators restart from seed={self.config.seed}.",
                          stacklevel=3)
            return None
        for name, generator in (("generator", self.generator), ("act_generator", self.act_generator)):
            state = rng.get(name)
            if (not isinstance(state, torch.Tensor) or state.dtype != torch.uint8
                    or state.shape != generator.get_state().shape):
                raise ValueError(f"{path!s}: the saved generator states are damaged ('{name}' is not a state of a "
                                 f"{self.device.type} generator).")
        return rng

    # ----- batches ------------------------------------------------------------------------------------
    def check_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Check a batch from ``OfflineDataset.sample_batch``: keys, shapes (rewards/terminals (B, 1)), finiteness,
        0/1 flags; return its tensors as float32 on the agent's device. ``update`` starts with it; call it before
        an agent's parts (``update_critic``, ``update_policy``, …) when driving them by hand."""
        if not isinstance(batch, dict):
            raise TypeError(f"batch must be a dict of tensors, got {type(batch).__name__}; draw batches with "
                            "OfflineDataset.sample_batch(batch_size).")
        missing = [k for k in BATCH_KEYS if k not in batch]
        if missing:
            raise ValueError(f"batch is missing {missing}; draw batches with OfflineDataset.sample_batch(batch_size).")
        for key in (*BATCH_KEYS, "timeouts"):
            if key in batch and not isinstance(batch[key], torch.Tensor):
                raise TypeError(f"batch[{key!r}] must be a torch.Tensor, got {type(batch[key]).__name__}.")
        n = batch["observations"].shape[0] if batch["observations"].dim() else 0
        if n == 0:
            raise ValueError("the batch is empty (0 transitions); draw at least one, e.g. dataset.sample_batch(256).")
        shapes = {
            "observations": (n, self.config.obs_dim), "next_observations": (n, self.config.obs_dim),
            "actions": (n, self.config.action_dim), "rewards": (n, 1), "terminals": (n, 1),
        }
        if "timeouts" in batch:
            shapes["timeouts"] = (n, 1)
        for key, shape in shapes.items():
            value = batch[key]
            if tuple(value.shape) != shape:
                hint = " (rewards and terminals are (B, 1) columns so they never broadcast against Q)" if shape[1:] == (1,) else ""
                raise ValueError(f"batch[{key!r}] has shape {tuple(value.shape)}, expected {shape}{hint}.")
            if value.is_complex():
                raise TypeError(f"batch[{key!r}] is complex ({value.dtype}); pass real numbers.")
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"batch[{key!r}] contains NaN or inf; clean the dataset (OfflineDataset validates it).")
        for key in ("terminals", "timeouts"):
            if key in batch:
                flags = batch[key]
                bad = (flags != 0) & (flags != 1)
                if bool(bad.any()):
                    row = int(bad.reshape(-1).nonzero()[0, 0])
                    raise ValueError(f"batch[{key!r}] must hold only 0 or 1, found {float(flags.reshape(-1)[row])} at "
                                     f"row {row}; a transition either ends the episode or it does not.")
        return {k: v.to(self.device, torch.float32) for k, v in batch.items() if k in shapes}

    _check_batch = check_batch  # the name it had before it was public

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
        learning rates follow a cosine from their initial value to 0 over these ``steps``.

        Ctrl-C stops training at an update boundary: a Ctrl-C during an update is held until that update has
        finished (a second Ctrl-C interrupts at once), then ``fit`` warns and returns the log so far, with
        ``log.attrs["interrupted"] = True``; ``n_updates`` counts exactly the updates applied, so the agent can
        be saved or trained on."""
        if isinstance(dataset, Mapping):
            raise TypeError("fit expects an OfflineDataset, got a dict; build one with "
                            "dl.OfflineDataset.from_dict(d).")
        if not all(hasattr(dataset, name) for name in ("sample_batch", "obs_dim", "action_dim")):
            raise TypeError(f"fit expects an OfflineDataset, got {type(dataset).__name__}.")
        steps = _count(steps, "steps")
        batch_size = _count(batch_size, "batch_size")
        log_every = _count(log_every, "log_every")
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
        rows, done = [], 0
        bar = tqdm(range(steps), desc=type(self).__name__, disable=not progress, leave=False)
        stopped = False
        with _deferred_interrupt() as interrupt, contextlib.closing(bar):
            for _ in bar:
                if interrupt.requested:
                    stopped = True
                    break
                stream, before = self.generator.get_state(), self._progress_marks()
                try:
                    metrics = self.update(dataset.sample_batch(batch_size, generator=self.generator, device=self.device))
                except KeyboardInterrupt:
                    if self._progress_marks() != before:  # some optimiser stepped: the update is half applied
                        warnings.warn(f"fit was interrupted inside update {self.n_updates + 1}, after part of it was "
                                      "applied: this agent is inconsistent; reload the last checkpoint.", stacklevel=2)
                        raise
                    self.generator.set_state(stream)  # nothing applied: as if the update never started
                    stopped = True
                    break
                done += 1
                for scheduler in schedulers:
                    scheduler.step()
                if self.n_updates % log_every == 0:
                    rows.append({"update": self.n_updates, **metrics})
                    bar.set_postfix({k: f"{v:.3g}" for k, v in list(metrics.items())[:3]})
            else:
                stopped = interrupt.requested  # a Ctrl-C during the last update
        log = pd.DataFrame.from_records(rows)
        log.attrs["interrupted"] = stopped
        if stopped:
            warnings.warn(f"fit stopped by Ctrl-C (KeyboardInterrupt) at an update boundary after {done} of {steps} "
                          f"updates (n_updates={self.n_updates}); the log holds the updates so far and the agent is "
                          "consistent (save it, or fit again to continue).", stacklevel=2)
        return log

    def _progress_marks(self) -> tuple:
        """(n_updates, steps taken by each optimiser): unchanged iff nothing of an update was applied."""
        marks: list[float] = [self.n_updates]
        for optimizer in self._named_optimizers().values():
            states = [state["step"] for state in optimizer.state.values() if "step" in state]
            marks.append(float(states[0]) if states else 0.0)
        return tuple(marks)

    # ----- acting -------------------------------------------------------------------------------------
    def _act(self, obs: torch.Tensor, n_candidates: int, temperature: float | None,
             generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def act(self, obs: np.ndarray | torch.Tensor, n_candidates: int = 1, temperature: float | None = None,
            generator: torch.Generator | None = None) -> np.ndarray | torch.Tensor:
        """Actions for observations (obs_dim,) or (B, obs_dim), numpy or tensor; returns the same kind and
        leading shape. With ``n_candidates`` = K > 1, draws K actions per state and picks by min(Q1, Q2):
        the argmax when ``temperature`` is None, else a draw ∝ exp(Q / temperature) (Eq. 21).

        Without a ``generator`` the draws come from the agent's own ``act_generator``, seeded by the config's
        ``seed``: the same seed gives the same actions in any process (and a checkpoint continues its stream).
        A ``generator`` on another device than the agent (a CPU generator for a CUDA agent) is fine."""
        if isinstance(n_candidates, bool) or not isinstance(n_candidates, int) or n_candidates < 1:
            raise ValueError(f"n_candidates must be an int >= 1, got {n_candidates!r}.")
        generator = check_generator(generator)
        if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))):
            raise TypeError(f"temperature must be a positive number or None, got {type(temperature).__name__}.")
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
            actions = self._act(x, n_candidates, temperature, self.act_generator if generator is None else generator)
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
        choice = multinomial(probs, 1, generator).squeeze(1)
    return candidates.reshape(n_states, k, -1)[torch.arange(n_states, device=q.device), choice]
