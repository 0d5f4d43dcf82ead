"""Validation of environment settings, in one place for RecSim-v0 and Logged-v0.

A setting that should be a number must be a real number (a string such as ``'6'`` or a bool is a
``TypeError`` naming the field), finite (``x < 0`` is False for NaN, so finiteness is tested first) and in
range (a ``ValueError`` naming the field, the range and the value). Integers must be whole: ``2.7`` items or
turns is refused, never truncated. A switch must be a bool.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["check_integer", "check_number", "check_flag", "check_action_box"]


def _span(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"in [{low:g}, {high:g}]"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


def check_integer(owner: str, name: str, value, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int, if it is a whole number (int or numpy integer, not bool) within [low, high]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an integer, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{owner}: {name} must be an integer {_span(low, high)}, got {value}.")
    return value


def check_number(owner: str, name: str, value, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a float, if it is a finite real number (not bool, not str) within [low, high]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be a finite number, got {value}.")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{owner}: {name} must be {_span(low, high)}, got {value:g}.")
    return value


def check_flag(owner: str, name: str, value) -> bool:
    """``value`` if it is a bool (``"no"`` would be true, so strings and numbers are refused)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be True or False, got {value!r} ({type(value).__name__}).")
    return bool(value)


def check_action_box(actions: np.ndarray, n: int, d: int, who: str) -> np.ndarray:
    """A batch of ``n`` continuous actions as float64 (n, d), refused (never clipped) when it has another shape,
    holds NaN/inf or leaves the [-1, 1]^d box; ``who`` names the environment in the message."""
    actions = np.asarray(actions, dtype=np.float64)
    if actions.shape != (n, d):
        raise ValueError(f"actions must have shape ({n}, {d}) (one {d}-dim vector per user), got {actions.shape}.")
    if not np.isfinite(actions).all():
        raise ValueError("actions contain NaN or inf; check the policy that produced them.")
    if np.abs(actions).max(initial=0.0) > 1.0 + 1e-6:
        raise ValueError(
            f"actions must lie in [-1, 1]^{d}, got max |a| = {np.abs(actions).max():.3g}; "
            f"squash or clip them in the policy ({who} never clips silently)."
        )
    return actions
