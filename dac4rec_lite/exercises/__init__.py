"""Exercises that check themselves: implement one function per core idea, and a checker compares it with the kit.

    import dac4rec_lite as dl
    dl.exercises.check_q_sample(my_q_sample)               # prints a verdict in plain words
    dl.exercises.check_q_sample(my_q_sample, strict=True)  # raises ExerciseFailed if it is not right
    dl.exercises.hints("q_sample")                         # a button revealing hints one by one

Exercises (Eq. of the paper): ``q_sample`` (13), ``reverse_step`` (7), ``bc_loss`` (8), ``action_approximation``
(13–14), ``td_target`` (20, clipped double Q), ``q_loss`` (15), ``cep_loss`` (contrastive energy prediction),
``guided_eps`` (24), ``select_action`` (21). Each checker runs the function on fixed seeds against the kit's
reference and names the typical mistake it recognises. Reference solutions live in ``solutions`` (kept out of the
notebooks); ``inject(fn, True)`` swaps a function for its reference solution (CI and instructors).
"""
from __future__ import annotations

from typing import Callable

from . import solutions
from .checks import (
    EXERCISES, ScheduleTables, check_action_approximation, check_bc_loss, check_cep_loss, check_guided_eps,
    check_q_loss, check_q_sample, check_reverse_step, check_select_action, check_td_target,
)
from .harness import ExerciseFailed, Verdict
from .hints import HINTS, hints

__all__ = [
    "check_q_sample", "check_reverse_step", "check_bc_loss", "check_action_approximation", "check_td_target",
    "check_q_loss", "check_cep_loss", "check_guided_eps", "check_select_action",
    "EXERCISES", "ScheduleTables", "ExerciseFailed", "Verdict", "HINTS", "hints", "inject", "solutions",
]


def inject(fn: Callable, use_solution: bool) -> Callable:
    """``fn`` itself, or (``use_solution=True``) the reference solution of the same name from ``solutions``."""
    if not use_solution:
        return fn
    name = getattr(fn, "__name__", "")
    if name not in EXERCISES:
        raise ValueError(f"{name!r} is not an exercise; name the function as in the exercise ({', '.join(EXERCISES)}).")
    return getattr(solutions, name)
