"""Agent checkpoints: one file per agent, written atomically, with a content digest checked on load.

A checkpoint is a dict saved by ``torch.save`` and read back with ``weights_only=True`` (a file can never run
code): ``format`` (the tag below), ``agent`` (class name), ``config`` (plain values), ``n_updates``, ``extra``
(the subclass's counters), ``weights`` ({part: state_dict}), ``optimizers`` ({attribute: state_dict}), ``rng``
(the agent's generator states, so that a resumed ``fit`` continues the random stream instead of replaying it)
and ``digest``: a SHA-256 over weights, optimiser and generator states in a canonical order (entry, part,
tensor name, dtype, shape, bytes). ``read_checkpoint``
recomputes it and refuses a file whose bytes changed since it was written.

Checkpoints written before the digest and the generator states existed still load: without a digest there
is nothing to verify, and without ``rng`` the agent's generators stay freshly seeded.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any

import torch
from torch import nn

from ..io import atomic_write

__all__ = ["CHECKPOINT_FORMAT", "FIELDS_ADDED_LATER", "read_checkpoint", "write_checkpoint", "content_digest",
           "check_part", "check_optimizer", "load_part"]

CHECKPOINT_FORMAT = "dac4rec_lite-agent-v1"
# Config fields added after checkpoints of this format were first written, with the value such files used.
FIELDS_ADDED_LATER = {"eps_activation": "silu"}  # the ε-network's activation was SiLU before the field existed
DIGESTED = ("weights", "optimizers", "rng")  # the entries the digest covers
# Entry → the type it must have (anything else is a damaged or hand-made file).
REQUIRED_ENTRIES: dict[str, type | tuple[type, ...]] = {"agent": str, "config": dict, "n_updates": int,
                                                       "weights": dict}


def _feed(hasher: Any, name: str, value: object) -> None:
    """Hash ``value`` under ``name``: nested dicts in sorted key order, tensors by dtype, shape and raw bytes."""
    hasher.update(name.encode() + b"\0")
    if isinstance(value, torch.Tensor):
        tensor = value.detach().to("cpu").contiguous()
        hasher.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        hasher.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            _feed(hasher, f"{name}/{key}", value[key])
    elif isinstance(value, (list, tuple)):
        for k, item in enumerate(value):
            _feed(hasher, f"{name}[{k}]", item)
    else:  # plain values inside state dicts (rare: e.g. a custom module's extra state)
        hasher.update(repr(value).encode())


def content_digest(checkpoint: dict[str, Any]) -> str:
    """SHA-256 (hex) of a checkpoint's weights, optimiser states and generator states in a canonical order: the
    same tensors give the same digest whatever order the dicts were built in; one flipped bit gives another.
    (The config and counters are plain values: a damaged one fails to unpickle or is caught by the config
    comparison on load.)"""
    hasher = hashlib.sha256()
    for entry in DIGESTED:
        if entry in checkpoint:
            _feed(hasher, entry, checkpoint[entry])
    return hasher.hexdigest()


def write_checkpoint(path: str | os.PathLike[str], checkpoint: dict[str, Any]) -> None:
    """Add the tag and the digest to ``checkpoint`` and write it atomically (``io.atomic_write``): an
    interrupted or failed save leaves the previous file at ``path`` intact."""
    payload = dict(checkpoint, format=CHECKPOINT_FORMAT)
    payload["digest"] = content_digest(payload)
    try:
        atomic_write(path, lambda f: torch.save(payload, f))
    except RuntimeError as err:  # torch reports a failed write (disk full, size limit) as its own error
        cause = err.__context__
        if isinstance(cause, OSError):
            raise OSError(cause.errno, f"could not write the checkpoint {path!s} ({cause.strerror}); the previous "
                                       "file there, if any, is unchanged") from err
        raise


def read_checkpoint(path: str | os.PathLike[str]) -> dict:
    """The contents of a file written by ``agent.save``, checked to be one (any agent class), complete, and
    unchanged since it was written (its digest). Files from before the digest existed load unverified.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (naming the problem) for anything else:
    not a checkpoint, an entry missing or of the wrong type, or weights that do not match their digest."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!s}; check the path (save one with agent.save(path)).")
    if os.path.isdir(path):
        raise ValueError(f"{path!s} is a folder, not a checkpoint file.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise ValueError(f"{path!s} is not a readable dac4rec_lite checkpoint ({type(err).__name__}: {err}).") from err
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path!s} is not a dac4rec_lite agent checkpoint (no '{CHECKPOINT_FORMAT}' tag).")
    for entry, kind in REQUIRED_ENTRIES.items():
        if entry not in checkpoint:
            raise ValueError(f"{path!s} is an incomplete checkpoint: its '{entry}' entry is missing; save it again "
                             f"with agent.save(path).")
        value = checkpoint[entry]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"{path!s} is a damaged checkpoint: its '{entry}' entry is a {type(value).__name__}, "
                             f"expected {getattr(kind, '__name__', kind)}.")
    for entry in ("extra", "rng", "optimizers"):
        if entry in checkpoint and not isinstance(checkpoint[entry], dict):
            raise ValueError(f"{path!s} is a damaged checkpoint: its '{entry}' entry is a "
                             f"{type(checkpoint[entry]).__name__}, expected dict.")
    if "digest" in checkpoint:
        if content_digest(checkpoint) != checkpoint["digest"]:
            raise ValueError(
                f"{path!s} is corrupt: its weights or states do not match the digest stored when it was saved (the "
                "file changed on disk or in transfer). Use another copy, or the last good checkpoint."
            )
    return checkpoint


def check_part(module: nn.Module, state: object, part: str, path: str | os.PathLike[str]) -> None:
    """Raise a ``ValueError`` naming ``part`` (and the tensor) unless ``state`` would load into ``module``:
    a dict of tensors with the module's names and shapes."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path!s}: the weights of '{part}' are damaged (expected a dict of tensors, got "
                         f"{type(state).__name__}).")
    mine = module.state_dict()
    missing = [k for k in mine if k not in state]
    unexpected = [k for k in state if k not in mine]
    if missing or unexpected:
        raise ValueError(f"{path!s}: the weights of '{part}' do not fit this agent (missing {missing[:4]}"
                         f"{'…' if len(missing) > 4 else ''}, unexpected {unexpected[:4]}"
                         f"{'…' if len(unexpected) > 4 else ''}); load it with the agent class and config that "
                         "saved it.")
    for key, tensor in mine.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ValueError(f"{path!s}: '{part}.{key}' has shape {tuple(state[key].shape)} in the checkpoint but "
                             f"{tuple(tensor.shape)} in this agent; load it with the config that saved it.")


def check_optimizer(optimizer: torch.optim.Optimizer, state: object, name: str, path: str | os.PathLike[str]) -> None:
    """Raise a ``ValueError`` naming the optimiser unless ``state`` has its parameter groups and sizes."""
    groups = state.get("param_groups") if isinstance(state, dict) else None
    if (not isinstance(groups, list) or not isinstance(state.get("state"), dict)
            or [len(g.get("params", ())) if isinstance(g, dict) else -1 for g in groups]
            != [len(g["params"]) for g in optimizer.param_groups]):
        raise ValueError(f"{path!s}: the state of optimiser '{name}' does not fit this agent (other parameter "
                         "groups); load it with the agent class and config that saved it.")


def load_part(module: nn.Module, state: object, part: str, path: str | os.PathLike[str]) -> None:
    """``module.load_state_dict(state)`` after ``check_part``; any other failure is a ``ValueError`` too."""
    check_part(module, state, part, path)
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError) as err:
        raise ValueError(f"{path!s}: the weights of '{part}' could not be loaded ({err}).") from err
