"""The fourteen checkers, one per exercise, in the order of the exercise notebooks.

The exercises themselves (cases, references, typical mistakes) live beside the notebook that uses them:
``checks_diffusion`` (ex01), ``checks_actor_critic`` and ``checks_algorithm1`` (ex02), ``checks_energy`` (ex03).
Each ``check_<name>(fn, strict=False)`` runs ``fn`` on fixed seeds against the kit, prints a verdict in plain
words and returns it; ``strict=True`` raises ``ExerciseFailed`` when the answer is not right.
"""
from __future__ import annotations

from typing import Callable

from .cases import ScheduleTables
from .checks_actor_critic import ACTION_APPROXIMATION, AWR_WEIGHT, Q_LOSS, SOFT_UPDATE, TD_TARGET
from .checks_algorithm1 import ALGORITHM1_UPDATE
from .checks_diffusion import BC_LOSS, ELBO_WEIGHTS, Q_SAMPLE, REVERSE_STEP, VP_BETAS
from .checks_energy import CEP_LOSS, GUIDED_EPS, SELECT_ACTION
from .harness import Exercise, Verdict, run_check

__all__ = [
    "ScheduleTables", "EXERCISES",
    "check_vp_betas", "check_q_sample", "check_reverse_step", "check_bc_loss", "check_elbo_weights",
    "check_action_approximation", "check_td_target", "check_q_loss", "check_awr_weight", "check_soft_update",
    "check_algorithm1_update", "check_cep_loss", "check_guided_eps", "check_select_action",
]

EXERCISES: dict[str, Exercise] = {e.name: e for e in (
    VP_BETAS, Q_SAMPLE, REVERSE_STEP, BC_LOSS, ELBO_WEIGHTS,
    ACTION_APPROXIMATION, TD_TARGET, Q_LOSS, AWR_WEIGHT, SOFT_UPDATE, ALGORITHM1_UPDATE,
    CEP_LOSS, GUIDED_EPS, SELECT_ACTION)}


def check_vp_betas(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``vp_betas(n_steps, beta_min, beta_max) -> betas`` (N,): the VP schedule of Sec. 3.1 with the sign
    corrected (errata #1). Prints a verdict; ``strict=True`` raises ``ExerciseFailed``."""
    return run_check(VP_BETAS, fn, strict)


def check_q_sample(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``q_sample(a0, i, noise, schedule) -> a_i`` (Eq. 13). ``a0``, ``noise``: (B, d); ``i``: LongTensor (B,)
    of 1-based steps; ``schedule``: a ``ScheduleTables``. Prints a verdict; ``strict=True`` raises ``ExerciseFailed``."""
    return run_check(Q_SAMPLE, fn, strict)


def check_reverse_step(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``reverse_step(a_i, i, eps, z, schedule) -> a_{i-1}`` (Eq. 7, corrected; ``i`` a Python int, the same step
    for every row; ``z`` the fresh N(0, I) noise; variance β_i, none at i = 1)."""
    return run_check(REVERSE_STEP, fn, strict)


def check_bc_loss(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``bc_loss(eps_model, state, action, i, noise, schedule) -> scalar`` (Eq. 8, averaged over action dims)."""
    return run_check(BC_LOSS, fn, strict)


def check_elbo_weights(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``elbo_weights(schedule) -> weights`` (N,): Eq. 18's per-step weights with the i = 1 case (errata #6),
    normalised to mean 1."""
    return run_check(ELBO_WEIGHTS, fn, strict)


def check_action_approximation(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``action_approximation(eps_model, state, action, i, noise, schedule) -> a0_hat`` (Eq. 13–14, unclipped)."""
    return run_check(ACTION_APPROXIMATION, fn, strict)


def check_td_target(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``td_target(reward, terminal, next_state, next_action, target_critic, gamma) -> y`` (B, 1)."""
    return run_check(TD_TARGET, fn, strict)


def check_q_loss(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``q_loss(critic, state, a0_hat) -> scalar`` (Eq. 15 normalised by the detached mean |Q|)."""
    return run_check(Q_LOSS, fn, strict)


def check_awr_weight(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``awr_weight(q1, q2, v, temperature, max_weight) -> weights`` (B, 1): g of Eq. 17–19 as the agents
    compute it (``DAC4Rec.advantage_weights``)."""
    return run_check(AWR_WEIGHT, fn, strict)


def check_soft_update(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``soft_update(target, source, tau) -> None``: θ′ ← τ θ + (1 − τ) θ′ in place."""
    return run_check(SOFT_UPDATE, fn, strict)


def check_algorithm1_update(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``algorithm1_update(agent, batch) -> losses`` (2,): one update of Algorithm 1 from the agent's public
    pieces, against ``agent.update`` on an agent of the same seed."""
    return run_check(ALGORITHM1_UPDATE, fn, strict)


def check_cep_loss(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``cep_loss(energy, state, supports, q, i, noise, schedule, beta) -> scalar``; supports (B, K, d), q (B, K)."""
    return run_check(CEP_LOSS, fn, strict)


def check_guided_eps(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``guided_eps(eps_model, energy, state, a_i, i, scale, schedule) -> eps_tilde`` (Eq. 24 in ε form)."""
    return run_check(GUIDED_EPS, fn, strict)


def check_select_action(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``select_action(q1, q2, candidates, temperature, generator) -> actions`` (Eq. 21); q1, q2 (B, K),
    candidates (B, K, d)."""
    return run_check(SELECT_ACTION, fn, strict)
