"""Exercises that check themselves: implement one function per core idea, and a checker compares it with the kit.

    import dac4rec_lite as dl
    dl.exercises.check_q_sample(my_q_sample)               # prints a verdict in plain words
    dl.exercises.check_q_sample(my_q_sample, strict=True)  # raises ExerciseFailed if it is not right
    dl.exercises.hints("q_sample")                         # a button revealing hints one by one

Exercises (paper's equations), by notebook:
* ex01: ``vp_betas`` (Sec. 3.1, sign corrected), ``q_sample`` (13), ``reverse_step`` (7), ``bc_loss`` (8),
  ``elbo_weights`` (18, with the i = 1 case);
* ex02: ``action_approximation`` (13–14), ``td_target`` (20, clipped double Q), ``q_loss`` (15), ``awr_weight``
  (g of 17–19), ``soft_update`` (target networks), ``algorithm1_update`` (one whole update, against
  ``agent.update``);
* ex03: ``cep_loss`` (contrastive energy prediction), ``guided_eps`` (24), ``select_action`` (21).

Each checker runs the function on fixed seeds against the kit's reference, names the typical mistake it
recognises, and refuses an answer that calls the kit's own implementation. The reference solutions are not
part of the package (instructors: see docs/instructor_guide.md).
"""
from __future__ import annotations

from .checks import (
    EXERCISES, ScheduleTables, check_action_approximation, check_algorithm1_update, check_awr_weight, check_bc_loss,
    check_cep_loss, check_elbo_weights, check_guided_eps, check_q_loss, check_q_sample, check_reverse_step,
    check_select_action, check_soft_update, check_td_target, check_vp_betas,
)
from .harness import ExerciseFailed, Verdict
from .hints import HINTS, hints

__all__ = [
    "check_vp_betas", "check_q_sample", "check_reverse_step", "check_bc_loss", "check_elbo_weights",
    "check_action_approximation", "check_td_target", "check_q_loss", "check_awr_weight", "check_soft_update",
    "check_algorithm1_update", "check_cep_loss", "check_guided_eps", "check_select_action",
    "EXERCISES", "ScheduleTables", "ExerciseFailed", "Verdict", "HINTS", "hints",
]
