"""Exercises 12–14 (notebook ex03_energy_and_selection): the contrastive energy loss, the guided ε of Eq. 24
and the selection among K candidates of Eq. 21.

Symbols follow docs/notation.md: κ is the inverse temperature of the CEP targets (the argument ``beta``), ω the
guidance scale (the argument ``scale``); ``temperature`` in the selection is 1/κ.

Every reference calls the core (the CEP loss of ``energy.py``, ``EnergyGuidance``, ``select_candidates`` of
``agents/base.py``); the mistakes are written the way a student writes them, so that a match is a diagnosis.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..agents.base import select_candidates
from ..diffusion import DiffusionPolicy, VPSchedule
from ..energy import EnergyGuidance, cep_loss, train_energy
from .cases import (
    ACTION_DIM, ALPHA_FOR_ALPHA_BAR, BATCH, GRAD_WORDS, K, NO_LAST_STEP, N_STATES, SCHEDULE, STATE_DIM, WITH_ENDS,
    ZERO_BASED, CheckedEnergy, CheckedEps, flat_grad, gen, index_error_hint, make_steps, noised, normal, tables,
    uniform,
)
from .checks_actor_critic import agent_methods
from .harness import Case, Exercise, Mistake

__all__ = ["CEP_LOSS", "GUIDED_EPS", "SELECT_ACTION"]


# ===== 7. cep_loss (contrastive energy prediction) =====================================================

def _cep_case(steps: list[int] | None, beta: float, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        i = make_steps(steps, N_STATES, seed)
        model = CheckedEnergy()
        args = (model, normal((N_STATES, STATE_DIM), seed), uniform((N_STATES, K, ACTION_DIM), seed + 1),
                normal((N_STATES, K), seed + 2), i, normal((N_STATES, K, ACTION_DIM), seed + 3), tables(), beta)
        return Case(args, info, {"params": list(model.parameters())})
    return make


def _cep(energy, state, supports, q, i, noise, schedule, beta, *, target_dim=1, model_dim=1, flat=False,
         use_beta=True, swapped=False, noise_supports=True, interleave=True, sign=-1.0, table="alphas_cumprod", reduce="mean"):
    b, k, d = supports.shape
    steps = i.repeat_interleave(k)
    flat_supports = supports.reshape(b * k, d)
    a_i = noised(flat_supports, steps, noise.reshape(b * k, d), schedule, table) if noise_supports else flat_supports
    states = state.repeat_interleave(k, dim=0) if interleave else state.repeat(k, 1)
    f = energy(states, a_i, steps).reshape(b, k)
    target_logits = beta * q if use_beta else q
    if swapped:
        target_logits, f = f, target_logits
    if flat:
        target = torch.softmax(target_logits.reshape(-1), dim=0).reshape(b, k)
        log_p = torch.log_softmax(f.reshape(-1), dim=0).reshape(b, k)
    else:
        target = torch.softmax(target_logits, dim=target_dim)
        log_p = torch.log_softmax(f, dim=model_dim)
    per_state = sign * (target * log_p).sum(dim=1)
    return per_state.sum() if reduce == "sum" else per_state.mean()


def _cep_variant(**kwargs) -> Callable:
    return lambda *args: _cep(*args, **kwargs)


def _cep_reference(case: Case) -> torch.Tensor:
    energy, state, supports, q, i, noise, _tables_, beta = case.args
    return cep_loss(energy, state, supports, q, i, noise, SCHEDULE, beta)  # energy.py


def _cep_shape_hint(shape: tuple[int, ...], case: Case) -> str | None:
    if shape == (N_STATES,):
        return "You returned one loss per state: average over the states too (a single number)."
    if shape == (N_STATES, K):
        return "Sum over the K supports (that is the cross-entropy), then average over the states."
    return None


WRONG_AXIS = ("The softmax runs over the wrong axis. q and f have shape (B, K): row b holds the K supports of state b, "
              "and both distributions are over those K supports, so normalise each row: softmax(..., dim=1) "
              "(and log_softmax(..., dim=1)).")

CEP_LOSS = Exercise(
    name="cep_loss",
    equation="CEP: L = −mean_s Σ_k softmax_k(κ Q(s, a⁰_k)) · log softmax_k f_ψ(s, a_i^k, i), κ = `beta`, "
             "a_i^k = √ᾱ_i a⁰_k + √(1 − ᾱ_i) ε_k",
    signature="cep_loss(energy, state, supports, q, i, noise, schedule, beta) -> scalar",
    cases=[
        _cep_case([1, 2, 4, 6, 8, 9], 3.0, 0, "6 states × 5 supports, steps 1..9, κ = 3"),
        _cep_case([10, 1, 5, 10, 3, 7], 1.0, 1, "6 states × 5 supports, steps 1 and N = 10 included, κ = 1"),
    ],
    reference=_cep_reference,
    expected_shape=lambda case: (),
    probe=lambda out, case: {"value": out, **flat_grad(out, case.extra["params"])},
    mistakes=[
        Mistake("softmax_wrong_axis", WRONG_AXIS, _cep_variant(target_dim=0, model_dim=0)),
        Mistake("softmax_wrong_axis", WRONG_AXIS, _cep_variant(target_dim=0)),
        Mistake("softmax_wrong_axis", WRONG_AXIS, _cep_variant(model_dim=0)),
        Mistake("softmax_flat", "You normalised over all B·K supports at once. Each state has its own K supports and its "
                "own distribution over them: reshape to (B, K) and normalise each row (dim=1).", _cep_variant(flat=True)),
        Mistake("no_beta", "The inverse temperature κ (the argument `beta`) is missing: the target weights are "
                "softmax_k(κ Q_k) (κ sets how sharply the energy prefers high-Q supports; docs/notation.md, "
                "docs/errata.md, Conventions).", _cep_variant(use_beta=False)),
        Mistake("roles_swapped", "The roles are swapped: the target distribution (no gradient) is softmax(κ Q), and the "
                "model's log-probabilities are log_softmax(f_ψ).", _cep_variant(swapped=True)),
        Mistake("clean_supports", "f_ψ must be evaluated on the *noised* supports a_i^k = √ᾱ_i a⁰_k + √(1 − ᾱ_i) ε_k "
                "(it is an intermediate energy ℰ_i of noisy actions, Eq. 23), not on the clean a⁰_k.",
                _cep_variant(noise_supports=False)),
        Mistake("states_tiled", "The states are tiled in the wrong order: state.repeat(K, 1) gives s_1, s_2, …, s_B, s_1, …, "
                "but the flattened supports are state-major (the K supports of s_1 first). Use "
                "state.repeat_interleave(K, dim=0) so that each support sits beside its own state.",
                _cep_variant(interleave=False)),
        Mistake("loss_sign", "The sign is flipped: a cross-entropy is −Σ_k p_k log q_k (a positive number to minimise).",
                _cep_variant(sign=1.0)),
        Mistake("alpha_for_alpha_bar", ALPHA_FOR_ALPHA_BAR, _cep_variant(table="alphas")),
        Mistake("sum_over_states", "Average the per-state cross-entropies over the batch (.mean()), don't sum them: the "
                "loss's scale should not depend on the batch size.", _cep_variant(reduce="sum")),
    ],
    shape_hint=_cep_shape_hint,
    error_hint=index_error_hint,
    field_words=GRAD_WORDS,
    forbidden=lambda: [("dl.energy.cep_loss", cep_loss), ("dl.train_energy", train_energy),
                       ("dl.VPSchedule.q_sample", VPSchedule.q_sample)],
)



# ===== 8. guided_eps (Eq. 24) ==========================================================================

def _guided_case(steps: list[int] | None, scale: float, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        i = make_steps(steps, BATCH, seed)
        args = (CheckedEps(), CheckedEnergy(), normal((BATCH, STATE_DIM), seed), normal((BATCH, ACTION_DIM), seed + 1),
                i, scale, tables())
        return Case(args, info, {"steps": i})
    return make


def _guided(eps_model, energy, state, a_i, i, scale, schedule, *, sign=-1.0, coef="sqrt", table="alphas_cumprod",
            shift=1, use_scale=True, reduce="sum"):
    eps = eps_model(state, a_i, i)
    with torch.enable_grad():
        a = a_i.detach().requires_grad_(True)
        f = energy(state, a, i)
        grad = torch.autograd.grad(f.sum() if reduce == "sum" else f.mean(), a)[0]
    ab = getattr(schedule, table)[i - shift].unsqueeze(1)
    factor = {"sqrt": (1 - ab).sqrt(), "no_sqrt": 1 - ab, "none": torch.ones_like(ab)}[coef]
    return eps + sign * factor * (scale if use_scale else 1.0) * grad


def _guided_variant(**kwargs) -> Callable:
    return lambda *args: _guided(*args, **kwargs)


def _guided_reference(case: Case) -> torch.Tensor:
    eps_model, energy, state, a_i, i, scale, _tables_ = case.args
    ab = SCHEDULE.alphas_cumprod[i - 1].unsqueeze(1)
    # The sampler's guided ε (diffusion/samplers.py): ε̃ = ε_θ − √(1 − ᾱ_i) · ω · ∇_a f, ω = scale.
    return eps_model(state, a_i, i) - (1 - ab).sqrt() * EnergyGuidance(energy, scale)(state, a_i, i)


def _guided_error_hint(err: BaseException, case: Case) -> tuple[str, str] | None:
    if "does not require grad" in str(err) or "does not have a grad_fn" in str(err):
        return "no_requires_grad", (
            "The energy's gradient with respect to the action needs the action to be part of a graph: make a leaf "
            "a = a_i.detach().requires_grad_(True), compute f = energy(state, a, i), then "
            "torch.autograd.grad(f.sum(), a)[0].")
    return index_error_hint(err, case)


GUIDED_EPS = Exercise(
    name="guided_eps",
    equation="Eq. 24 in ε form: ε̃ = ε_θ(s, a^i, i) − ω √(1 − ᾱ_i) ∇_a f_ψ(s, a^i, i), ω the guidance scale `scale`",
    signature="guided_eps(eps_model, energy, state, a_i, i, scale, schedule) -> eps_tilde",
    cases=[
        _guided_case(NO_LAST_STEP, 2.0, 0, "7 states, steps 1..9, ω = 2"),
        _guided_case(WITH_ENDS, 0.5, 1, "7 states, steps 1 and N = 10 included, ω = 0.5"),
    ],
    reference=_guided_reference,
    expected_shape=lambda case: tuple(case.args[3].shape),
    probe=lambda out, case: {"value": out},
    mistakes=[
        Mistake("guidance_sign", "The guidance sign is flipped. Guidance adds ∇f to the *score*, and ε points the other "
                "way (ε_θ ≈ −√(1 − ᾱ_i) · score), so in ε form it is subtracted: ε̃ = ε_θ − ω √(1 − ᾱ_i) ∇f. "
                "With a + the sampler walks towards low energy, i.e. low Q.", _guided_variant(sign=1.0)),
        Mistake("no_sqrt", "A square root is missing: the factor that turns a score into ε is √(1 − ᾱ_i), not 1 − ᾱ_i.",
                _guided_variant(coef="no_sqrt")),
        Mistake("no_noise_scale", "The factor √(1 − ᾱ_i) is missing. ε and the score live on different scales: "
                "ε_θ ≈ −√(1 − ᾱ_i) · ∇ log μ_i, so a score term enters ε multiplied by √(1 − ᾱ_i).",
                _guided_variant(coef="none")),
        Mistake("alpha_for_alpha_bar", ALPHA_FOR_ALPHA_BAR, _guided_variant(table="alphas")),
        Mistake("zero_based", ZERO_BASED, _guided_variant(shift=0)),
        Mistake("scale_ignored", "The guidance `scale` is not used: multiply the energy's gradient by it (ω = `scale` = 0 "
                "must give back the unguided ε).", _guided_variant(use_scale=False)),
        Mistake("gradient_of_mean", "You differentiated the batch *mean* of f: each row's gradient came out divided by "
                "the batch size. Each row needs ∇ of its own f, which is what the gradient of f.sum() gives.",
                _guided_variant(reduce="mean")),
    ],
    error_hint=_guided_error_hint,
    field_words={"value": "ε̃"},
    forbidden=lambda: [("dl.EnergyGuidance", EnergyGuidance.__call__), ("dl.DiffusionPolicy.sample", DiffusionPolicy.sample)],
)



# ===== 9. select_action (Eq. 21) =======================================================================

def _select_case(temperature: float | None, n_states: int, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        args = (normal((n_states, K), seed), normal((n_states, K), seed + 1),
                uniform((n_states, K, ACTION_DIM), seed + 2), temperature, gen(seed + 3))
        return Case(args, info)
    return make


def _select(q1, q2, candidates, temperature, generator, *, combine="min", pick="argmax", axis=1, temp="divide"):
    q = {"min": torch.min(q1, q2), "max": torch.max(q1, q2), "q1": q1}[combine]
    rows = torch.arange(q.shape[0])
    if temperature is None:
        choice = q.argmax(dim=1) if pick == "argmax" else q.argmin(dim=1)
    else:
        logits = {"divide": q / temperature, "multiply": q * temperature, "ignore": q}[temp]
        probs = torch.softmax(logits, dim=axis)
        choice = torch.multinomial(probs, 1, generator=generator).squeeze(1)
    return candidates[rows, choice]


def _select_variant(**kwargs) -> Callable:
    return lambda *args: _select(*args, **kwargs)


def _select_reference(case: Case) -> torch.Tensor:
    q1, q2, candidates, temperature, generator = case.args
    b, k, d = candidates.shape
    return select_candidates(torch.min(q1, q2).reshape(b * k, 1), candidates.reshape(b * k, d), b, temperature, generator)


def _ignores_generator(fn: Callable, cases: list[Callable[[], Case]]) -> bool:
    """Same generator seed, different global seed: a function that draws with the generator gives the same actions."""
    outputs = []
    for global_seed in (11, 12):
        case = cases[1]()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(global_seed)
            try:
                outputs.append(fn(*case.args))
            except Exception:
                return False
    return isinstance(outputs[0], torch.Tensor) and isinstance(outputs[1], torch.Tensor) and not torch.equal(*outputs)


def _select_shape_hint(shape: tuple[int, ...], case: Case) -> str | None:
    b, k, d = case.args[2].shape
    if shape in ((b,), (b, 1)):
        return "Return the chosen actions (B, d), not their indices: candidates[torch.arange(B), choice]."
    if len(shape) == 3:
        return "You returned several candidates per state; pick one per state: candidates[torch.arange(B), choice]."
    if shape == (b, b, d):
        return "candidates[:, choice] takes every choice for every state; use candidates[torch.arange(B), choice]."
    return None


SELECT_ACTION = Exercise(
    name="select_action",
    equation="Eq. 21: pick among K candidates by Q = min(Q₁, Q₂): argmax, or a draw ∝ exp(Q / temperature)",
    signature="select_action(q1, q2, candidates, temperature, generator) -> actions",
    cases=[
        _select_case(None, N_STATES, 0, "6 states × 5 candidates, temperature None (argmax)"),
        _select_case(0.5, N_STATES, 1, "6 states × 5 candidates, temperature 0.5"),
        _select_case(2.0, 200, 2, "200 states × 5 candidates, temperature 2"),
    ],
    reference=_select_reference,
    expected_shape=lambda case: (case.args[2].shape[0], case.args[2].shape[2]),
    probe=lambda out, case: {"value": out},
    mistakes=[
        Mistake("max_of_twins", "You ranked the candidates by max(Q₁, Q₂). Use the pessimistic min(Q₁, Q₂): a candidate "
                "that only one critic likes is probably one it over-values.", _select_variant(combine="max")),
        Mistake("single_critic", "You used only Q₁; rank by min(Q₁, Q₂) of both twins.", _select_variant(combine="q1")),
        Mistake("argmin", "You picked the lowest Q (argmin); the best candidate has the highest Q: argmax.",
                _select_variant(pick="argmin")),
        Mistake("softmax_wrong_axis", "The softmax runs over the wrong axis. Q has shape (B, K): row b holds the K "
                "candidates of state b, and the draw is among those K, so normalise each row: softmax(Q / temperature, dim=1).",
                _select_variant(axis=0)),
        Mistake("temperature_multiplied", "Divide by the temperature, don't multiply: p ∝ exp(Q / temperature), so a small "
                "temperature makes the draw nearly greedy and a large one nearly uniform.", _select_variant(temp="multiply")),
        Mistake("temperature_ignored", "The temperature is not used: p ∝ exp(Q / temperature).", _select_variant(temp="ignore")),
        Mistake("generator_ignored", "Your draw does not use `generator`: the same generator seed gave different actions. "
                "Draw with torch.multinomial(probs, 1, generator=generator) so that results are reproducible.",
                detect=_ignores_generator),
    ],
    shape_hint=_select_shape_hint,
    field_words={"value": "choice of actions (draw with torch.multinomial(probs, 1, generator=generator))"},
    forbidden=lambda: [("dl.agents.base.select_candidates", select_candidates), *agent_methods("act", "sample_actions")],
)
