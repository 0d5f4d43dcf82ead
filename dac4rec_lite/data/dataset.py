"""An in-memory offline RL dataset of transitions, in the D4RL dictionary layout.

A recommendation session is a trajectory: each row is one transition
``(observation, action, reward, next_observation, terminal, timeout)``. A user leaving the
session is a *terminal* (no bootstrapping past it); hitting the turn cap of the simulator is a
*timeout* (the episode was cut, the value of the next state still matters).

Every array is validated once, at construction, so that a bad dataset fails immediately with a
message naming the offending key and how to fix it. Nothing is silently squeezed, broadcast,
clipped or dropped.
"""
from __future__ import annotations

import difflib
import os
import zipfile
from collections.abc import Mapping

import numpy as np
import torch

from .._checks import check_device, check_generator, randint
from ..io import atomic_write

__all__ = ["OfflineDataset"]

REQUIRED_KEYS: tuple[str, ...] = ("observations", "actions", "rewards", "next_observations", "terminals")
OPTIONAL_KEYS: tuple[str, ...] = ("timeouts", "episode_starts")
# Keys returned by ``sample_batch``: every per-transition array that is meaningful for a random draw.
SAMPLE_KEYS: tuple[str, ...] = REQUIRED_KEYS + ("timeouts",)
# Extra entry written by ``save`` (NaN encodes ``max_action=None``).
_MAX_ACTION_KEY = "max_action"


def _describe_expected_keys() -> str:
    return f"required: {', '.join(REQUIRED_KEYS)}; optional: {', '.join(OPTIONAL_KEYS)}"


def _as_numeric(key: str, value: object) -> np.ndarray:
    """Return ``value`` as a real-valued numpy array, or raise ``ValueError`` naming ``key``."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as err:  # e.g. ragged nested lists
        raise ValueError(
            f"{key} could not be converted to a numpy array ({err}); pass a rectangular numpy array."
        ) from err
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"{key} has dtype {array.dtype}, expected a real numeric array (float32 recommended); "
            f"convert it with np.asarray({key}, dtype=np.float32)"
            + (" after dropping the imaginary part." if array.dtype.kind == "c" else ".")
        )
    return array


def _check_ndim(key: str, array: np.ndarray, ndim: int) -> None:
    """Raise ``ValueError`` unless ``array`` has exactly ``ndim`` dimensions (with a reshape hint)."""
    if array.ndim == ndim:
        return
    if ndim == 1:
        fix = f"use {key}.reshape(-1)" if array.ndim == 2 and array.shape[1] == 1 else "pass a 1-D array of shape (n,)"
        raise ValueError(f"{key} must be 1-D with shape (n,), got shape {array.shape}; {fix}.")
    fix = f"use {key}.reshape(-1, 1) if each row holds a single value" if array.ndim == 1 else "flatten each row"
    raise ValueError(f"{key} must be 2-D with shape (n, dim), got shape {array.shape}; {fix}.")


def _to_float32(key: str, array: np.ndarray) -> np.ndarray:
    """Return a float32 copy of ``array``; raise ``ValueError`` naming the first non-finite row.

    Non-finite values are reported whether they were in the input (NaN/inf) or appeared because a
    float64 value is too large for float32.
    """
    with np.errstate(over="ignore"):
        converted = np.array(array, dtype=np.float32, copy=True)
    finite_rows = np.isfinite(converted).reshape(len(converted), -1).all(axis=1)
    if not finite_rows.all():
        row = int(np.flatnonzero(~finite_rows)[0])
        original = np.asarray(array[row], dtype=np.float64)
        if np.isnan(original).any():
            what = "NaN"
        elif np.isinf(original).any():
            what = "inf"
        else:
            what = "a value too large for float32 (max ~3.4e38)"
        raise ValueError(
            f"{key} contains {what} at row {row} ({int((~finite_rows).sum())} bad row(s) in total); "
            f"drop or repair those transitions before building the dataset."
        )
    return converted


def _check_binary(key: str, array: np.ndarray) -> None:
    """Raise ``ValueError`` unless every entry of the float array is exactly 0 or 1."""
    bad = (array != 0.0) & (array != 1.0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{key} must contain only 0/1 (or False/True), found {float(array[row])} at row {row}; "
            f"convert with ({key} != 0) only if every non-zero value really means 'episode ended'."
        )


def _check_max_action(max_action: object) -> float | None:
    """Return ``max_action`` as a float (or None), raising if it is not a positive finite number."""
    if max_action is None:
        return None
    if isinstance(max_action, bool) or not isinstance(max_action, (int, float, np.integer, np.floating)):
        raise TypeError(f"max_action must be a positive float or None, got {type(max_action).__name__}.")
    value = float(max_action)
    if not (np.isfinite(value) and value > 0.0):
        raise ValueError(
            f"max_action must be a positive finite float (or None to disable the action-bound check), got {value}."
        )
    return value


def _check_episode_starts(starts: np.ndarray, terminals: np.ndarray, timeouts: np.ndarray) -> None:
    """Raise ``ValueError`` unless row 0 and every row after a terminal/timeout is marked as a start."""
    if not starts[0]:
        raise ValueError("episode_starts[0] must be 1: the first transition always starts a trajectory.")
    ended = (terminals[:-1] == 1.0) | (timeouts[:-1] == 1.0)
    missing = ended & ~starts[1:]
    if missing.any():
        row = int(np.flatnonzero(missing)[0]) + 1
        raise ValueError(
            f"episode_starts is 0 at row {row}, but row {row - 1} ends an episode (terminal or timeout); "
            f"mark the transition after every episode end as a start ({int(missing.sum())} such row(s))."
        )


def _check_action_bounds(actions: np.ndarray, bound: float) -> None:
    """Raise ``ValueError`` if any action lies outside ``[-bound, bound]``."""
    bad_rows = (np.abs(actions) > bound).any(axis=1)
    if bad_rows.any():
        row = int(np.flatnonzero(bad_rows)[0])
        worst = float(np.abs(actions).max())
        raise ValueError(
            f"actions: {int(bad_rows.sum())} row(s) lie outside [-{bound}, {bound}] (first bad row: {row}, "
            f"values {actions[row].tolist()}; largest |action| = {worst}). Rescale the actions to the "
            f"bound (e.g. actions * {bound} / {worst}) or pass max_action=None to disable this check."
        )


class OfflineDataset:
    """A validated, immutable set of ``n`` transitions, sampled uniformly with replacement.

    Arrays are copied and stored as float32 numpy arrays (``episode_starts`` as bool); the caller's
    arrays are never aliased, so mutating them afterwards cannot bypass validation.

    Args:
        observations: (n, obs_dim) real array.
        actions: (n, action_dim) real array, within ``[-max_action, max_action]`` unless
            ``max_action`` is None.
        rewards: (n,) real array.
        next_observations: (n, obs_dim) real array.
        terminals: (n,) array of 0/1 (bool, int or float): the user left the session.
        timeouts: optional (n,) array of 0/1: the episode was cut by a turn cap. Zeros if omitted.
        max_action: bound on ``|action|`` checked at construction; None disables the check.
        episode_starts: optional (n,) array of 0/1 marking the first transition of each
            trajectory. If given, row 0 must be a start, and so must every row that follows a
            terminal or timeout.

    Raises:
        ValueError: on wrong shapes, mismatched lengths, non-numeric/complex dtypes, NaN/inf,
            non-binary flags, out-of-range actions, inconsistent episode starts or an empty dataset.
        TypeError: if ``max_action`` is neither a number nor None.
    """

    def __init__(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: np.ndarray,
        terminals: np.ndarray,
        timeouts: np.ndarray | None = None,
        max_action: float | None = 1.0,
        episode_starts: np.ndarray | None = None,
    ) -> None:
        self._max_action = _check_max_action(max_action)
        raw = {
            "observations": observations,
            "actions": actions,
            "rewards": rewards,
            "next_observations": next_observations,
            "terminals": terminals,
        }
        if timeouts is not None:
            raw["timeouts"] = timeouts
        if episode_starts is not None:
            raw["episode_starts"] = episode_starts
        arrays = {key: _as_numeric(key, value) for key, value in raw.items()}
        for key, array in arrays.items():
            _check_ndim(key, array, 2 if key in ("observations", "actions", "next_observations") else 1)

        n = len(arrays["observations"])
        for key, array in arrays.items():
            if len(array) != n:
                raise ValueError(
                    f"{key} has {len(array)} rows but observations has {n}; every array must hold one "
                    f"entry per transition (same length n)."
                )
        if n == 0:
            raise ValueError("the dataset is empty (observations has 0 rows); provide at least one transition.")
        if arrays["observations"].shape[1] == 0 or arrays["actions"].shape[1] == 0:
            raise ValueError(
                f"observations and actions need at least one column, got obs_dim="
                f"{arrays['observations'].shape[1]}, action_dim={arrays['actions'].shape[1]}."
            )
        if arrays["next_observations"].shape != arrays["observations"].shape:
            raise ValueError(
                f"next_observations has shape {arrays['next_observations'].shape} but observations has shape "
                f"{arrays['observations'].shape}; they must match (next_observations[k] is the state after row k)."
            )

        floats = {key: _to_float32(key, array) for key, array in arrays.items()}
        for key in ("terminals", "timeouts", "episode_starts"):
            if key in floats:
                _check_binary(key, floats[key])
        self._observations = floats["observations"]
        self._actions = floats["actions"]
        self._rewards = floats["rewards"]
        self._next_observations = floats["next_observations"]
        self._terminals = floats["terminals"]
        self._timeouts = floats.get("timeouts", np.zeros(n, dtype=np.float32))
        self._episode_starts = floats["episode_starts"].astype(bool) if "episode_starts" in floats else None

        if self._episode_starts is not None:
            _check_episode_starts(self._episode_starts, self._terminals, self._timeouts)
        if self._max_action is not None:
            _check_action_bounds(self._actions, self._max_action)

    @classmethod
    def from_dict(cls, d: Mapping[str, np.ndarray], max_action: float | None = 1.0) -> OfflineDataset:
        """Build a dataset from a D4RL-style dict of arrays.

        Required keys: ``observations, actions, rewards, next_observations, terminals``; optional:
        ``timeouts, episode_starts``. Any other key is rejected (so a typo such as ``terminal``
        cannot silently drop data).

        Raises:
            TypeError: if ``d`` is not a mapping.
            ValueError: on missing or unknown keys, or any check of the constructor.
        """
        if not isinstance(d, Mapping):
            raise TypeError(f"from_dict expects a dict of numpy arrays, got {type(d).__name__}.")
        missing = [key for key in REQUIRED_KEYS if key not in d]
        if missing:
            raise ValueError(
                f"missing required key(s) {', '.join(map(repr, missing))}; expected keys: {_describe_expected_keys()}."
            )
        unknown = [key for key in d if key not in REQUIRED_KEYS + OPTIONAL_KEYS]
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(str(key), REQUIRED_KEYS + OPTIONAL_KEYS, n=1)
                hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ValueError(
                f"unknown key(s) {', '.join(hints)}; remove or rename them. Expected keys: {_describe_expected_keys()}."
            )
        return cls(
            observations=d["observations"],
            actions=d["actions"],
            rewards=d["rewards"],
            next_observations=d["next_observations"],
            terminals=d["terminals"],
            timeouts=d.get("timeouts"),
            max_action=max_action,
            episode_starts=d.get("episode_starts"),
        )

    def __len__(self) -> int:
        """Number of transitions."""
        return len(self._observations)

    @property
    def obs_dim(self) -> int:
        """Width of an observation vector."""
        return int(self._observations.shape[1])

    @property
    def action_dim(self) -> int:
        """Width of an action vector."""
        return int(self._actions.shape[1])

    @property
    def max_action(self) -> float | None:
        """The action bound checked at construction (None if the check was disabled)."""
        return self._max_action

    def __repr__(self) -> str:
        return (
            f"OfflineDataset(n={len(self)}, obs_dim={self.obs_dim}, action_dim={self.action_dim}, "
            f"mean_reward={float(self._rewards.mean()):.4g}, terminal_fraction={float(self._terminals.mean()):.4g})"
        )

    def _arrays(self) -> dict[str, np.ndarray]:
        """The stored arrays by key (not copies); ``episode_starts`` only if it was given."""
        arrays = {
            "observations": self._observations,
            "actions": self._actions,
            "rewards": self._rewards,
            "next_observations": self._next_observations,
            "terminals": self._terminals,
            "timeouts": self._timeouts,
        }
        if self._episode_starts is not None:
            arrays["episode_starts"] = self._episode_starts
        return arrays

    def to_dict(self) -> dict[str, np.ndarray]:
        """Return copies of all arrays in the D4RL layout.

        ``rewards``, ``terminals`` and ``timeouts`` are 1-D (n,) float32 (``timeouts`` is zeros if
        none were given); ``episode_starts`` (bool) is included only if it was given. The result is
        accepted by ``from_dict``.
        """
        return {key: array.copy() for key, array in self._arrays().items()}

    def sample_batch(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: str | torch.device = "cpu",
    ) -> dict[str, torch.Tensor]:
        """Draw a mini-batch of ``batch_size`` transitions uniformly at random, with replacement (Algorithm 1
        line 2). (A policy's ``sample`` draws actions; this draws rows of the log.)

        Indices come from ``torch.randint(..., generator=generator)``, so a CPU generator seeded
        the same way gives the same batch.

        Returns:
            float32 tensors on ``device``: ``observations`` (B, obs_dim), ``actions``
            (B, action_dim), ``next_observations`` (B, obs_dim), and ``rewards``, ``terminals``,
            ``timeouts`` of shape (B, 1). Row k of every tensor belongs to the same transition.

        Raises:
            TypeError: if ``batch_size`` is not an int or ``generator`` is not a ``torch.Generator``.
            ValueError: if ``batch_size`` is not positive, ``device`` is not a valid device, or it is a CUDA
                device on a machine without CUDA.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(
                f"batch_size must be a positive int, got {type(batch_size).__name__} {batch_size!r}; "
                f"pass int(batch_size)."
            )
        if batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size}.")
        generator = check_generator(generator)
        target = check_device(device)
        idx = randint(0, len(self), (int(batch_size),), generator, "cpu")
        arrays = self._arrays()
        batch = {}
        for key in SAMPLE_KEYS:
            rows = torch.from_numpy(arrays[key])[idx]
            batch[key] = (rows.unsqueeze(1) if rows.dim() == 1 else rows).to(target)
        return batch

    sample = sample_batch  # the contract's name (``dataset.sample(B)``): the same method, the same draws

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the dataset to ``path`` as an uncompressed ``.npz`` (exactly that path, no suffix added).

        Stores every array of ``to_dict`` plus ``max_action`` (NaN meaning None); ``load`` restores
        an identical dataset. The write is atomic (a temporary file in the same folder, fsynced, then
        renamed): an interrupted or failed save leaves the previous file at ``path`` intact.
        """
        payload = self._arrays()
        payload[_MAX_ACTION_KEY] = np.array(np.nan if self._max_action is None else self._max_action, dtype=np.float64)
        atomic_write(path, lambda f: np.savez(f, **payload))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> OfflineDataset:
        """Read a dataset written by ``save`` (it is validated again).

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: if the file is not an ``.npz`` written by ``OfflineDataset.save``.
        """
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no saved OfflineDataset at {os.fspath(path)!r} (file does not exist).")
        not_ours = f"{os.fspath(path)!r} is not a saved OfflineDataset (written by OfflineDataset.save)"
        try:
            loaded = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{not_ours}: it could not be read as an .npz archive ({err}).") from err
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(f"{not_ours}: it holds a single array, not an .npz archive.")
        try:
            with loaded:
                contents = {key: loaded[key] for key in loaded.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{not_ours}: the .npz archive is corrupt ({err}).") from err
        missing = [key for key in REQUIRED_KEYS + ("timeouts", _MAX_ACTION_KEY) if key not in contents]
        unknown = [key for key in contents if key not in REQUIRED_KEYS + OPTIONAL_KEYS + (_MAX_ACTION_KEY,)]
        if missing or unknown:
            raise ValueError(
                f"{not_ours}: missing key(s) {missing}, unexpected key(s) {unknown}. "
                f"To load a D4RL-style .npz of your own, use OfflineDataset.from_dict(dict(np.load(path)))."
            )
        bound = contents.pop(_MAX_ACTION_KEY)
        if bound.shape != () or bound.dtype.kind != "f":
            raise ValueError(
                f"{not_ours}: max_action must be a float scalar, got shape {bound.shape}, dtype {bound.dtype}."
            )
        return cls.from_dict(contents, max_action=None if np.isnan(bound) else float(bound))
