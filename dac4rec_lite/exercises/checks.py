"""The nine exercises: inputs on fixed seeds, the kit's reference, and the typical wrong answers of each.

Every reference calls the core (``VPSchedule``, ``DiffusionPolicy``, ``EnergyGuidance``, the CEP loss of
``energy.py``, ``select_candidates`` of ``agents/base.py``); the mistakes are written the way a student writes
them, so that a match is a diagnosis. Sizes are chosen so that no two of them are equal (batch 7, state 4,
action 3, N = 10, K = 5 supports/candidates for 6 states): a tensor on the wrong axis cannot line up by luck.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..agents.base import select_candidates
from ..critics import TwinQ
from ..diffusion import DiffusionPolicy, EpsilonMLP, VPSchedule
from ..energy import EnergyGuidance, _cep_loss, min_q
from .harness import Case, Exercise, Mistake, NetworkCallMistake, Verdict, run_check

__all__ = [
    "ScheduleTables", "EXERCISES",
    "check_q_sample", "check_reverse_step", "check_bc_loss", "check_action_approximation", "check_td_target",
    "check_q_loss", "check_cep_loss", "check_guided_eps", "check_select_action",
]

N_STEPS, STATE_DIM, ACTION_DIM, BATCH = 10, 4, 3, 7
N_STATES, K = 6, 5  # CEP supports and candidate selection: K per state
HIDDEN = 32
_SCHEDULE = VPSchedule(N_STEPS, 0.1, 10.0)


@dataclass(frozen=True)
class ScheduleTables:
    """What an exercise gets of the schedule: its tables only (1-D float32 tensors of length N, index k holds
    step i = k + 1), with the same names as ``dl.VPSchedule``, so the answer is a formula, not a method call."""

    n_steps: int
    betas: torch.Tensor
    alphas: torch.Tensor
    alphas_cumprod: torch.Tensor
    alphas_cumprod_prev: torch.Tensor

    @classmethod
    def from_schedule(cls, schedule: VPSchedule) -> "ScheduleTables":
        return cls(schedule.n_steps, schedule.betas.clone(), schedule.alphas.clone(),
                   schedule.alphas_cumprod.clone(), schedule.alphas_cumprod_prev.clone())


def _tables() -> ScheduleTables:
    return ScheduleTables.from_schedule(_SCHEDULE)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _uniform(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.rand(shape, generator=_gen(seed)) * 2 - 1


def _normal(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=_gen(seed))


def _steps(values: list[int] | None, n: int, seed: int) -> torch.Tensor:
    if values is not None:
        return torch.tensor(values, dtype=torch.long)
    return torch.randint(1, N_STEPS + 1, (n,), generator=_gen(seed))


NO_LAST_STEP = [1, 2, 3, 5, 7, 8, 9]       # every step but N: a 0-based lookup still returns numbers here
WITH_ENDS = [10, 1, 10, 4, 6, 1, 10]       # the first and the last step


# ----- networks handed to the student: they say how they were called wrong ----------------------------

def _check_call(who: str, second: str, state: object, x: object, i: object | None, x_dim: int) -> None:
    signature = f"{who}(state, {second}{', i' if i is not None else ''})"
    for name, value in (("state", state), (second, x)):
        if not isinstance(value, torch.Tensor):
            raise NetworkCallMistake(f"{signature} got a {type(value).__name__} as {name}; pass tensors.")
    if state.dim() == 2 and x.dim() == 2 and state.shape[1] == x_dim and x.shape[1] == STATE_DIM and x_dim != STATE_DIM:
        raise NetworkCallMistake(f"{who} takes the state first: call {signature} (you passed the {second} first).")
    if state.dim() != 2 or state.shape[1] != STATE_DIM or x.dim() != 2 or x.shape[1] != x_dim or state.shape[0] != x.shape[0]:
        raise NetworkCallMistake(
            f"{signature} expects state of shape (B, {STATE_DIM}) and {second} of shape (B, {x_dim}) with the same B; "
            f"got {tuple(state.shape)} and {tuple(x.shape)}. Flatten extra dimensions into the batch first.")
    if i is None:
        return
    if not isinstance(i, torch.Tensor) or i.dtype != torch.long:
        got = i.dtype if isinstance(i, torch.Tensor) else type(i).__name__
        raise NetworkCallMistake(f"{who}'s step i must be a LongTensor of shape (B,) (the steps you were given), got {got}.")
    if i.shape != (state.shape[0],):
        raise NetworkCallMistake(f"{who}'s step i must have shape ({state.shape[0]},), one step per row; got {tuple(i.shape)}.")
    if int(i.min()) < 1 or int(i.max()) > N_STEPS:
        raise NetworkCallMistake(
            f"{who} got steps in {int(i.min())}..{int(i.max())}: networks take the 1-based steps i themselves "
            f"(1..{N_STEPS}); only a table lookup uses i − 1.")


class _CheckedEps(nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = EpsilonMLP(STATE_DIM, ACTION_DIM, HIDDEN)

    def forward(self, state: torch.Tensor, a_i: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        _check_call("eps_model", "a_i", state, a_i, i, ACTION_DIM)
        return self.net(state, a_i, i)


class _CheckedEnergy(nn.Module):
    def __init__(self, seed: int = 1) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = EpsilonMLP(STATE_DIM, ACTION_DIM, HIDDEN, activation="silu", out_dim=1)  # as EnergyModel

    def forward(self, state: torch.Tensor, a_i: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        _check_call("energy", "a_i", state, a_i, i, ACTION_DIM)
        return self.net(state, a_i, i)


class _CheckedCritic(nn.Module):
    """A ``TwinQ`` whose outputs are scaled and shifted by ``offset`` (to test both signs of Q). Its weights require
    gradients, as a copy made without ``requires_grad_(False)`` does: a target that is not detached shows."""

    def __init__(self, seed: int = 2, offset: float = 0.0, scale: float = 10.0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.twin = TwinQ(STATE_DIM, ACTION_DIM, HIDDEN)
        # A fresh network's Q is nearly a constant, different for each twin, so one twin would be the min
        # everywhere: centre each twin on its value at the origin and spread it out, so that they cross.
        with torch.no_grad():
            origin = self.twin(torch.zeros(1, STATE_DIM), torch.zeros(1, ACTION_DIM))
        self.register_buffer("centres", torch.cat(origin, dim=1).reshape(2))
        self.offset, self.scale = offset, scale

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_call("critic", "action", state, action, None, ACTION_DIM)
        q1, q2 = self.twin(state, action)
        return (self.scale * (q1 - self.centres[0]) + self.offset, self.scale * (q2 - self.centres[1]) + self.offset)


def _flat_grad(scalar: torch.Tensor, wrt: list[torch.Tensor]) -> dict[str, object]:
    """{"has_grad": bool, "grad": flat gradient (zeros when there is none)}."""
    size = sum(t.numel() for t in wrt)
    if not scalar.requires_grad:
        return {"has_grad": False, "grad": torch.zeros(size)}
    grads = torch.autograd.grad(scalar, wrt, allow_unused=True)
    flat = torch.cat([(g if g is not None else torch.zeros_like(t)).reshape(-1) for g, t in zip(grads, wrt)])
    return {"has_grad": True, "grad": flat}


def _index_error_hint(err: BaseException, case: Case) -> tuple[str, str] | None:
    if isinstance(err, IndexError) and ("out of bounds" in str(err) or "out of range" in str(err)):
        return "zero_based", ZERO_BASED_INDEX
    return None


ZERO_BASED = ("You looked up step i at index i (0-based). Steps are 1-based, as in the paper: step i lives at "
              "index i − 1 of every table, e.g. schedule.alphas_cumprod[i - 1].")
ZERO_BASED_INDEX = ("Step N went past the end of a table: you looked up step i at index i. Steps are 1-based "
                    "(i = 1..N), so step i lives at index i − 1, e.g. schedule.alphas_cumprod[i - 1].")
COLUMN = " A per-row number of shape (B,) must become a column (B, 1) before it multiplies a (B, d) batch: [:, None]."


def _column_hint(shape: tuple[int, ...], case: Case) -> str | None:
    if len(shape) == 2 and shape[0] == shape[1]:
        return "A (B,) tensor met a (B, 1) or (B, d) one and broadcast into a square." + COLUMN
    return None


# ===== 1. q_sample (Eq. 13) ============================================================================

def _q_sample_case(steps: list[int] | None, batch: int, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        i = _steps(steps, batch, seed)
        return Case((_uniform((batch, ACTION_DIM), seed), i, _normal((batch, ACTION_DIM), seed + 100), _tables()),
                    info, {"steps": i})
    return make


def _ab(schedule: ScheduleTables, i: torch.Tensor, table: str = "alphas_cumprod", shift: int = 1) -> torch.Tensor:
    return getattr(schedule, table)[i - shift].unsqueeze(1)


def _q_sample_zero_based(a0, i, noise, schedule):
    ab = _ab(schedule, i, shift=0)
    return ab.sqrt() * a0 + (1 - ab).sqrt() * noise


def _q_sample_alpha(a0, i, noise, schedule):
    a = _ab(schedule, i, "alphas")
    return a.sqrt() * a0 + (1 - a).sqrt() * noise


def _q_sample_no_sqrt(a0, i, noise, schedule):
    ab = _ab(schedule, i)
    return ab * a0 + (1 - ab) * noise


def _q_sample_no_sqrt_signal(a0, i, noise, schedule):
    ab = _ab(schedule, i)
    return ab * a0 + (1 - ab).sqrt() * noise


def _q_sample_no_sqrt_noise(a0, i, noise, schedule):
    ab = _ab(schedule, i)
    return ab.sqrt() * a0 + (1 - ab) * noise


def _q_sample_minus(a0, i, noise, schedule):
    ab = _ab(schedule, i)
    return ab.sqrt() * a0 - (1 - ab).sqrt() * noise


def _q_sample_swapped(a0, i, noise, schedule):
    ab = _ab(schedule, i)
    return (1 - ab).sqrt() * a0 + ab.sqrt() * noise


ALPHA_FOR_ALPHA_BAR = ("You used the one-step α_i (schedule.alphas) where the cumulative ᾱ_i = α_1·…·α_i "
                       "(schedule.alphas_cumprod) belongs. This is the paper's own typo (Eq. 6–8, 12–14; errata "
                       "#3): one step keeps almost all of the signal, i steps keep almost none.")
NO_SQRT = ("A square root is missing: the coefficients are √ᾱ_i and √(1 − ᾱ_i), not ᾱ_i and 1 − ᾱ_i. "
           "Their squares add up to 1, which is what keeps the variance at 1 (variance preserving).")

Q_SAMPLE = Exercise(
    name="q_sample", equation="Eq. 13: a^i = √ᾱ_i a^0 + √(1 − ᾱ_i) ε",
    signature="q_sample(a0, i, noise, schedule) -> a_i",
    cases=[
        _q_sample_case(NO_LAST_STEP, BATCH, 0, "7 actions of dim 3, steps 1..9"),
        _q_sample_case(WITH_ENDS, BATCH, 1, "7 actions, steps 1 and N = 10 included"),
        _q_sample_case(None, 64, 2, "64 actions, random steps in 1..10"),
    ],
    reference=lambda case: _SCHEDULE.q_sample(case.args[0], case.args[1], case.args[2]),
    expected_shape=lambda case: tuple(case.args[0].shape),
    probe=lambda out, case: {"value": out},
    mistakes=[
        Mistake("zero_based", ZERO_BASED, _q_sample_zero_based),
        Mistake("alpha_for_alpha_bar", ALPHA_FOR_ALPHA_BAR, _q_sample_alpha),
        Mistake("no_sqrt", NO_SQRT, _q_sample_no_sqrt),
        Mistake("no_sqrt", "The signal's coefficient lacks its square root: it is √ᾱ_i, not ᾱ_i. " + NO_SQRT.split(". ", 1)[1],
                _q_sample_no_sqrt_signal),
        Mistake("no_sqrt", "The noise's coefficient lacks its square root: it is √(1 − ᾱ_i), not 1 − ᾱ_i. " + NO_SQRT.split(". ", 1)[1],
                _q_sample_no_sqrt_noise),
        Mistake("eps_sign", "The noise is subtracted; Eq. 13 adds it: a^i = √ᾱ_i a^0 + √(1 − ᾱ_i) ε. (ε and −ε have the "
                "same distribution, but the network is trained to predict the ε that was added, so the sign matters.)",
                _q_sample_minus),
        Mistake("swapped", "The two coefficients are swapped: the clean action gets √ᾱ_i (close to 1 at small i) and the "
                "noise gets √(1 − ᾱ_i).", _q_sample_swapped),
    ],
    shape_hint=_column_hint,
    error_hint=_index_error_hint,
    field_words={"value": "a^i"},
)


# ===== 2. reverse_step (Eq. 7) =========================================================================

def _reverse_case(step: int, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        return Case((_normal((BATCH, ACTION_DIM), seed), step, _normal((BATCH, ACTION_DIM), seed + 100),
                     _normal((BATCH, ACTION_DIM), seed + 200), _tables()), info)
    return make


def _reverse(a_i, i, eps, z, schedule, *, shift=1, coef="ok", lead="alpha", sigma="beta", last_noise=False, sign=-1.0):
    beta, alpha, ab = schedule.betas[i - shift], schedule.alphas[i - shift], schedule.alphas_cumprod[i - shift]
    noise_coef = {"ok": beta / (1 - ab).sqrt(), "alpha": beta / (1 - alpha).sqrt(),
                  "printed": beta / (alpha * (1 - alpha).sqrt()) * alpha.sqrt(), "no_sqrt": beta / (1 - ab)}[coef]
    leading = {"alpha": alpha.sqrt(), "alpha_bar": ab.sqrt(), "no_sqrt": alpha}[lead]
    mean = (a_i + sign * noise_coef * eps) / leading
    if sigma == "none":
        return mean
    variance = {"beta": beta, "posterior": beta * (1 - schedule.alphas_cumprod_prev[i - 1]) / (1 - ab)}[sigma]
    return mean + variance.sqrt() * z if (i > 1 or last_noise) else mean


def _reverse_variant(**kwargs) -> Callable:
    return lambda a_i, i, eps, z, schedule: _reverse(a_i, i, eps, z, schedule, **kwargs)


def _reverse_sigma_no_sqrt(a_i, i, eps, z, schedule):
    mean = _reverse(a_i, i, eps, z, schedule, sigma="none")
    return mean + schedule.betas[i - 1] * z if i > 1 else mean


REVERSE_STEP = Exercise(
    name="reverse_step", equation="Eq. 7: a^{i-1} = (a^i − β_i/√(1 − ᾱ_i) ε_θ) / √α_i + √β_i z, no noise at i = 1",
    signature="reverse_step(a_i, i, eps, z, schedule) -> a_{i-1}",
    cases=[
        _reverse_case(5, 0, "7 actions, step i = 5"),
        _reverse_case(1, 1, "7 actions, the last step i = 1"),
        _reverse_case(N_STEPS, 2, "7 actions, the first step i = N = 10"),
        _reverse_case(2, 3, "7 actions, step i = 2"),
    ],
    reference=lambda case: (_SCHEDULE.reverse_mean(case.args[0], case.args[1], case.args[2])
                            + _SCHEDULE.reverse_variance("beta")[case.args[1] - 1].sqrt() * case.args[3]),
    expected_shape=lambda case: tuple(case.args[0].shape),
    probe=lambda out, case: {"value": out},
    mistakes=[
        Mistake("noise_at_last_step", "You added noise at the last step i = 1. Eq. 7 adds √β_i z only for i > 1: the "
                "last step returns the mean itself, the clean action a^0 (a final random kick would only blur it).",
                _reverse_variant(last_noise=True)),
        Mistake("zero_based", ZERO_BASED, _reverse_variant(shift=0)),
        Mistake("alpha_for_alpha_bar", "In the noise coefficient β_i / √(1 − ᾱ_i) you used the one-step α_i instead of "
                "the cumulative ᾱ_i (schedule.alphas_cumprod). The paper prints α_i there (Eq. 6, errata #3), but ε was "
                "added with √(1 − ᾱ_i) by Eq. 13, so that is what must be taken away.", _reverse_variant(coef="alpha")),
        Mistake("printed_eq7", "You copied Eq. 7's printed noise coefficient β_i / (α_i √(1 − α_i)). It has two typos "
                "(errata #3 and #4): the correct mean is (a^i − β_i/√(1 − ᾱ_i) · ε) / √α_i.",
                lambda a_i, i, eps, z, schedule: _reverse(a_i, i, eps, z, schedule, coef="printed")),
        Mistake("alpha_bar_for_alpha", "The leading factor is the one-step 1/√α_i (schedule.alphas), not 1/√ᾱ_i: one "
                "reverse step undoes one forward step, which shrank the action by √α_i.", _reverse_variant(lead="alpha_bar")),
        Mistake("eps_sign", "The sign of the ε term is flipped: the step subtracts the predicted noise, "
                "a^i − β_i/√(1 − ᾱ_i) · ε_θ, it does not add it.", _reverse_variant(sign=1.0)),
        Mistake("no_sqrt", "A square root is missing in the mean: it is β_i / √(1 − ᾱ_i) and a division by √α_i.",
                _reverse_variant(coef="no_sqrt")),
        Mistake("no_sqrt", "A square root is missing in the mean: the leading factor is 1/√α_i, not 1/α_i.",
                _reverse_variant(lead="no_sqrt")),
        Mistake("no_sqrt_sigma", "The noise is scaled by β_i; the standard deviation is √β_i (β_i is the variance).",
                _reverse_sigma_no_sqrt),
        Mistake("no_noise", "You never add the noise: for i > 1 the step is the mean plus √β_i · z (z is given to you). "
                "Without it every sample follows the same path and the policy loses its modes.", _reverse_variant(sigma="none")),
        Mistake("posterior_variance", "You used the posterior variance β̃_i = β_i (1 − ᾱ_{i−1}) / (1 − ᾱ_i). That is a valid "
                "choice too (the kit's default sampler uses it), but this exercise asks for Eq. 7's √β_i z (the kit's "
                "variance=\"beta\"), so the numbers differ.", _reverse_variant(sigma="posterior")),
    ],
    error_hint=_index_error_hint,
    field_words={"value": "a^{i-1}"},
)


# ===== 3. bc_loss (Eq. 8) ==============================================================================

def _denoise_case(steps: list[int] | None, batch: int, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        i = _steps(steps, batch, seed)
        noise = torch.randn((batch, ACTION_DIM), generator=_gen(seed + 100))  # what the policy's generator draws
        model = _CheckedEps()
        args = (model, _normal((batch, STATE_DIM), seed), _uniform((batch, ACTION_DIM), seed + 1), i, noise, _tables())
        return Case(args, info, {"steps": i, "noise_seed": seed + 100, "params": list(model.parameters()),
                                 "weights": _normal((batch, ACTION_DIM), seed + 300)})
    return make


def _policy_reference(case: Case):
    model, state, action, i = case.args[:4]
    policy = DiffusionPolicy(STATE_DIM, ACTION_DIM, _SCHEDULE, eps_model=model)
    return policy.denoise_dataset_action(state, action, generator=_gen(case.extra["noise_seed"]), step=i)


def _noised(action, i, noise, schedule, table="alphas_cumprod", shift=1):
    ab = getattr(schedule, table)[i - shift].unsqueeze(1)
    return ab.sqrt() * action + (1 - ab).sqrt() * noise


def _bc(eps_model, state, action, i, noise, schedule, *, table="alphas_cumprod", shift=1, target="noise",
        clean_input=False, reduce="mean", square=True):
    a_i = action if clean_input else _noised(action, i, noise, schedule, table, shift)
    err = ({"noise": noise, "action": action}[target] - eps_model(state, a_i, i))
    err = err.pow(2) if square else err.abs()
    return err.sum(dim=1).mean() if reduce == "sum" else err.mean()


def _bc_variant(**kwargs) -> Callable:
    return lambda *args: _bc(*args, **kwargs)


def _bc_no_grad(*args):
    with torch.no_grad():
        return _bc(*args)


def _bc_shape_hint(shape: tuple[int, ...], case: Case) -> str | None:
    if len(shape) == 1:
        return "You returned one loss per row: average over the batch too, so the loss is a single number (.mean())."
    if len(shape) == 2:
        return "You returned the squared errors themselves: average them over rows and action dimensions (.mean())."
    return None


def _grad_probe(out: torch.Tensor, case: Case) -> dict[str, object]:
    weighted = out if out.dim() == 0 else (out * case.extra["weights"]).sum()
    return {"value": out, **_flat_grad(weighted, case.extra["params"])}


NO_GRAD = ("Your result carries no gradient back to the network's weights θ: it was computed under torch.no_grad(), "
           "detached, or rebuilt from .item() numbers. Training needs ∇θ, so keep the whole computation in the graph.")
GRAD_WORDS = {"value": "value", "has_grad": "gradient (yours has none)", "grad": "gradient with respect to θ"}

BC_LOSS = Exercise(
    name="bc_loss", equation="Eq. 8: L_d = mean ‖ε − ε_θ(√ᾱ_i a + √(1 − ᾱ_i) ε, s, i)‖² (mean over action dims)",
    signature="bc_loss(eps_model, state, action, i, noise, schedule) -> scalar",
    cases=[
        _denoise_case(NO_LAST_STEP, BATCH, 0, "7 states, steps 1..9"),
        _denoise_case(WITH_ENDS, BATCH, 1, "7 states, steps 1 and N = 10 included"),
        _denoise_case(None, 32, 2, "32 states, random steps"),
    ],
    reference=lambda case: _policy_reference(case)[0].mean(),
    expected_shape=lambda case: (),
    probe=_grad_probe,
    mistakes=[
        Mistake("zero_based", ZERO_BASED, _bc_variant(shift=0)),
        Mistake("alpha_for_alpha_bar", "You noised the action with the one-step α_i; Eq. 8's α_i is the paper's typo for "
                "the cumulative ᾱ_i (schedule.alphas_cumprod, errata #3). With α_i the network would never see the "
                "heavily noised actions that sampling starts from.", _bc_variant(table="alphas")),
        Mistake("target_is_action", "The network predicts the noise ε that was added, so the loss compares ε_θ(...) with "
                "`noise`, not with the clean action.", _bc_variant(target="action")),
        Mistake("clean_input", "The network must see the noisy action a^i = √ᾱ_i a + √(1 − ᾱ_i) ε, not the clean "
                "action: from the clean action there is no noise to predict.", _bc_variant(clean_input=True)),
        Mistake("sum_over_dims", "You summed the squared error over the action dimensions. The kit averages them "
                "(Eq. 8 divided by action_dim, as Diffusion-QL does; see docs/errata.md, 'Loss scale'), so the "
                "loss's scale does not grow with the action size: use .mean() over everything.", _bc_variant(reduce="sum")),
        Mistake("not_squared", "The error must be squared, ‖ε − ε_θ‖², not its absolute value.", _bc_variant(square=False)),
        Mistake("no_grad", NO_GRAD, _bc_no_grad),
    ],
    shape_hint=_bc_shape_hint,
    error_hint=_index_error_hint,
    field_words=GRAD_WORDS,
)


# ===== 4. action_approximation (Eq. 13–14) =============================================================

def _approx(eps_model, state, action, i, noise, schedule, *, table="alphas_cumprod", shift=1, sign=-1.0,
            true_noise=False, clip=False, sqrt=True, divide=True):
    a_i = _noised(action, i, noise, schedule, table, shift)
    ab = getattr(schedule, table)[i - shift].unsqueeze(1)
    eps = noise if true_noise else eps_model(state, a_i, i)
    noise_coef = (1 - ab).sqrt() if sqrt else 1 - ab
    out = a_i + sign * noise_coef * eps
    out = out / (ab.sqrt() if sqrt else ab) if divide else out
    return out.clamp(-1, 1) if clip else out


def _approx_variant(**kwargs) -> Callable:
    return lambda *args: _approx(*args, **kwargs)


def _approx_detached(*args):
    return _approx(*args).detach()


ACTION_APPROXIMATION = Exercise(
    name="action_approximation",
    equation="Eq. 13–14: a^i = √ᾱ_i a + √(1 − ᾱ_i) ε, â^0 = (a^i − √(1 − ᾱ_i) ε_θ(a^i, s, i)) / √ᾱ_i",
    signature="action_approximation(eps_model, state, action, i, noise, schedule) -> a0_hat",
    cases=[
        _denoise_case(NO_LAST_STEP, BATCH, 0, "7 states, steps 1..9"),
        _denoise_case(WITH_ENDS, BATCH, 1, "7 states, steps 1 and N = 10 included"),
        _denoise_case(None, 32, 2, "32 states, random steps"),
    ],
    reference=lambda case: _policy_reference(case)[2],
    expected_shape=lambda case: tuple(case.args[2].shape),
    probe=_grad_probe,
    mistakes=[
        Mistake("true_noise", "You denoised with the true noise `noise` instead of the network's prediction "
                "ε_θ(a^i, s, i). Then â^0 is just the dataset action and nothing reaches θ: the whole point of Eq. 14 is "
                "an action that depends on the policy's network.", _approx_variant(true_noise=True)),
        Mistake("zero_based", ZERO_BASED, _approx_variant(shift=0)),
        Mistake("alpha_for_alpha_bar", "You used the one-step α_i where the cumulative ᾱ_i belongs (schedule.alphas_cumprod). "
                "Eq. 13–14 print α_i, a typo (errata #3): noising to step i in one jump multiplies all i steps' α.",
                _approx_variant(table="alphas")),
        Mistake("eps_sign", "The sign of ε_θ is flipped: Eq. 14 subtracts the predicted noise, "
                "â^0 = (a^i − √(1 − ᾱ_i) ε_θ) / √ᾱ_i.", _approx_variant(sign=1.0)),
        Mistake("no_sqrt", "A square root is missing: â^0 = (a^i − √(1 − ᾱ_i) ε_θ) / √ᾱ_i, with √ on both coefficients.",
                _approx_variant(sqrt=False)),
        Mistake("no_divide", "You forgot to divide by √ᾱ_i: a^i − √(1 − ᾱ_i) ε_θ is √ᾱ_i â^0, the clean action "
                "still shrunk by the noising.", _approx_variant(divide=False)),
        Mistake("clipped", "Don't clip here: this exercise is the exact Eq. 14, â^0 unclipped (as "
                "DiffusionPolicy.approximate_action returns it). DAC4Rec clips it to the action box later, before its Q loss.",
                _approx_variant(clip=True)),
        Mistake("no_grad", NO_GRAD, _approx_detached),
    ],
    shape_hint=_column_hint,
    error_hint=_index_error_hint,
    field_words=GRAD_WORDS,
)


# ===== 5. td_target (Eq. 20, clipped double Q) =========================================================

def _td_case(terminals: list[int] | None, batch: int, gamma: float, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        if terminals is None:
            done = (torch.rand((batch, 1), generator=_gen(seed + 7)) < 0.3).float()
        else:
            done = torch.tensor(terminals, dtype=torch.float32).reshape(batch, 1)
        args = (_normal((batch, 1), seed), done, _normal((batch, STATE_DIM), seed + 1),
                _uniform((batch, ACTION_DIM), seed + 2), _CheckedCritic(), gamma)
        return Case(args, info)
    return make


def _td(reward, terminal, next_state, next_action, target_critic, gamma, *, combine="min", done="one_minus",
        use_gamma=True, detach=True):
    with torch.set_grad_enabled(not detach):
        q1, q2 = target_critic(next_state, next_action)
        q = {"min": torch.min(q1, q2), "max": torch.max(q1, q2), "mean": (q1 + q2) / 2, "q1": q1}[combine]
        mask = {"one_minus": 1 - terminal, "none": torch.ones_like(terminal), "terminal": terminal}[done]
        return reward + (gamma if use_gamma else 1.0) * mask * q


def _td_variant(**kwargs) -> Callable:
    return lambda *args: _td(*args, **kwargs)


def _td_shape_hint(shape: tuple[int, ...], case: Case) -> str | None:
    if len(shape) == 2 and shape[0] == shape[1]:
        return ("A (B,) tensor met a (B, 1) one and broadcast into a (B, B) square. Keep rewards, terminals and Q "
                "as (B, 1) columns, as they are given (no .squeeze()).")
    if len(shape) == 1:
        return "Keep the (B, 1) column shape of the rewards: the critic's loss compares it with Q of shape (B, 1)."
    return None


TD_TARGET = Exercise(
    name="td_target", equation="Eq. 20's target: y = r + γ (1 − terminal) min(Q′₁, Q′₂)(s′, a′), with no gradient",
    signature="td_target(reward, terminal, next_state, next_action, target_critic, gamma) -> y",
    cases=[
        _td_case([0, 1, 0, 0, 1, 0, 0], BATCH, 0.9, 0, "7 transitions, 2 of them terminal, γ = 0.9"),
        _td_case([0] * BATCH, BATCH, 0.99, 1, "7 transitions, none terminal, γ = 0.99"),
        _td_case(None, 32, 0.95, 2, "32 transitions, random terminals, γ = 0.95"),
    ],
    reference=lambda case: _td_reference(*case.args),
    expected_shape=lambda case: (case.args[0].shape[0], 1),
    probe=lambda out, case: {"value": out, "requires_grad": out.requires_grad},
    mistakes=[
        Mistake("max_of_twins", "You took the max of the twin critics. Clipped double Q takes the min(Q′₁, Q′₂): each "
                "critic over-estimates some actions, and offline nothing corrects an over-valued action, so the target "
                "uses the more pessimistic of the two.", _td_variant(combine="max")),
        Mistake("mean_of_twins", "You averaged the twin critics; clipped double Q takes their min(Q′₁, Q′₂), the "
                "pessimistic one, to counter over-estimation.", _td_variant(combine="mean")),
        Mistake("single_critic", "You used only the first critic Q′₁. The target uses both twins and takes "
                "min(Q′₁, Q′₂).", _td_variant(combine="q1")),
        Mistake("no_terminal_mask", "There is no (1 − terminal) factor: after a terminal transition the episode is over "
                "(the user left), so there is no future value to add and y = r.", _td_variant(done="none")),
        Mistake("terminal_mask_inverted", "The mask is inverted: multiply the future value by (1 − terminal), which is 0 "
                "when the episode ended, not by terminal.", _td_variant(done="terminal")),
        Mistake("no_gamma", "The discount γ is missing: y = r + γ (1 − terminal) min(Q′₁, Q′₂).", _td_variant(use_gamma=False)),
        Mistake("target_not_detached", "Your target carries a gradient into the target network (y.requires_grad is True). "
                "The TD target is a fixed label the critic regresses on: compute it under torch.no_grad() (or .detach() "
                "it); otherwise the critic's loss also moves the target network, and the target chases itself.",
                _td_variant(detach=False)),
    ],
    shape_hint=_td_shape_hint,
    field_words={"value": "y", "requires_grad": "gradient flag (y must not require grad)"},
)


@torch.no_grad()
def _td_reference(reward, terminal, next_state, next_action, target_critic, gamma):
    """DAC4Rec.td_target (agents/dac4rec.py) for a given next action: r + γ (1 − terminal) min(Q′₁, Q′₂)."""
    return reward + gamma * (1 - terminal) * min_q(target_critic, next_state, next_action).unsqueeze(1)


# ===== 6. q_loss (Eq. 15, normalised as in DAC4Rec.policy_loss) ========================================

def _q_loss_case(offset: float, batch: int, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        approx = _uniform((batch, ACTION_DIM), seed).requires_grad_(True)
        return Case((_CheckedCritic(seed=3, offset=offset), _normal((batch, STATE_DIM), seed + 1), approx), info,
                    {"approx": approx})
    return make


def _q_loss(critic, state, approx, *, combine="min", sign=-1.0, norm="abs_detached", detach_action=False):
    q1, q2 = critic(state, approx.detach() if detach_action else approx)
    q = {"min": torch.min(q1, q2), "max": torch.max(q1, q2), "q1": q1}[combine]
    scale = {"abs_detached": q.abs().mean().detach(), "abs": q.abs().mean(), "mean_detached": q.mean().detach(),
             "none": torch.tensor(1.0)}[norm]
    return sign * q.mean() / scale


def _q_loss_variant(**kwargs) -> Callable:
    return lambda *args: _q_loss(*args, **kwargs)


def _q_loss_probe(out: torch.Tensor, case: Case) -> dict[str, object]:
    fields = _flat_grad(out, [case.extra["approx"]])
    return {"value": out, "has_grad": fields["has_grad"], "grad_action": fields["grad"]}


def _q_loss_reference(case: Case) -> torch.Tensor:
    """The direct L_q of DAC4Rec.policy_loss (agents/dac4rec.py): −mean Q(s, â⁰) / mean|Q| (normaliser detached)."""
    critic, state, approx = case.args
    q = min_q(critic, state, approx).unsqueeze(1)
    return -q.mean() / q.abs().mean().detach().clamp(min=1e-6)


Q_LOSS = Exercise(
    name="q_loss", equation="Eq. 15, normalised: L_q = −mean min(Q₁, Q₂)(s, â^0) / mean|Q| (the mean|Q| detached)",
    signature="q_loss(critic, state, a0_hat) -> scalar",
    cases=[
        _q_loss_case(0.12, BATCH, 1, "7 states, Q of both signs"),
        _q_loss_case(2.0, BATCH, 0, "7 states, every Q positive"),
        _q_loss_case(0.5, 32, 2, "32 states"),
    ],
    reference=_q_loss_reference,
    expected_shape=lambda case: (),
    probe=_q_loss_probe,
    mistakes=[
        Mistake("normaliser_not_detached", "The normaliser mean|Q| is not detached. It only sets the scale (so that λ "
                "means the same whatever the rewards); if gradients flow through it, they cancel the useful one: with "
                "every Q positive the loss is exactly −1 whatever â^0 is, and its gradient is zero. Use "
                "q.abs().mean().detach().", _q_loss_variant(norm="abs")),
        Mistake("max_of_twins", "You took the max of the twin critics; the policy is improved against the pessimistic "
                "min(Q₁, Q₂), so it is not drawn to actions that only one critic over-values.", _q_loss_variant(combine="max")),
        Mistake("single_critic", "You used only Q₁; use min(Q₁, Q₂) of both twins.", _q_loss_variant(combine="q1")),
        Mistake("loss_sign", "The sign is flipped: the optimiser minimises the loss, and the policy should *raise* Q, "
                "so L_q = −mean Q (Eq. 15 has the minus).", _q_loss_variant(sign=1.0)),
        Mistake("not_normalised", "The loss is not normalised: divide by the batch's mean |Q| (detached), as DAC4Rec "
                "does (agents/dac4rec.py), so the weight λ of L_q does not depend on the reward scale.",
                _q_loss_variant(norm="none")),
        Mistake("normaliser_mean_q", "Normalise by the mean of |Q|, not the mean of Q: with Q of both signs the mean can "
                "be near zero or negative, which blows the loss up or flips its sign.", _q_loss_variant(norm="mean_detached")),
        Mistake("action_detached", "No gradient reaches â^0: you detached the action (or worked under no_grad). The "
                "point of the direct Q loss is ∇_a Q flowing through â^0 into the policy's weights.",
                _q_loss_variant(detach_action=True)),
    ],
    shape_hint=lambda shape, case: "Return one number: the mean over the batch, divided by the mean |Q|." if shape else None,
    field_words={"value": "value", "has_grad": "gradient (yours has none)", "grad_action": "gradient with respect to â^0"},
)


# ===== 7. cep_loss (contrastive energy prediction) =====================================================

def _cep_case(steps: list[int] | None, beta: float, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        i = _steps(steps, N_STATES, seed)
        model = _CheckedEnergy()
        args = (model, _normal((N_STATES, STATE_DIM), seed), _uniform((N_STATES, K, ACTION_DIM), seed + 1),
                _normal((N_STATES, K), seed + 2), i, _normal((N_STATES, K, ACTION_DIM), seed + 3), _tables(), beta)
        return Case(args, info, {"params": list(model.parameters())})
    return make


def _cep(energy, state, supports, q, i, noise, schedule, beta, *, target_dim=1, model_dim=1, flat=False,
         use_beta=True, swapped=False, noised=True, interleave=True, sign=-1.0, table="alphas_cumprod", reduce="mean"):
    b, k, d = supports.shape
    steps = i.repeat_interleave(k)
    flat_supports = supports.reshape(b * k, d)
    a_i = _noised(flat_supports, steps, noise.reshape(b * k, d), schedule, table) if noised else flat_supports
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
    return _cep_loss(energy, state, supports, q, i, noise, _SCHEDULE, beta)  # energy.py


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
    equation="CEP: L = −mean_s Σ_k softmax_k(β Q(s, a⁰_k)) · log softmax_k f_ψ(s, a_i^k, i), a_i^k = √ᾱ_i a⁰_k + √(1 − ᾱ_i) ε_k",
    signature="cep_loss(energy, state, supports, q, i, noise, schedule, beta) -> scalar",
    cases=[
        _cep_case([1, 2, 4, 6, 8, 9], 3.0, 0, "6 states × 5 supports, steps 1..9, β = 3"),
        _cep_case([10, 1, 5, 10, 3, 7], 1.0, 1, "6 states × 5 supports, steps 1 and N = 10 included, β = 1"),
    ],
    reference=_cep_reference,
    expected_shape=lambda case: (),
    probe=lambda out, case: {"value": out, **_flat_grad(out, case.extra["params"])},
    mistakes=[
        Mistake("softmax_wrong_axis", WRONG_AXIS, _cep_variant(target_dim=0, model_dim=0)),
        Mistake("softmax_wrong_axis", WRONG_AXIS, _cep_variant(target_dim=0)),
        Mistake("softmax_wrong_axis", WRONG_AXIS, _cep_variant(model_dim=0)),
        Mistake("softmax_flat", "You normalised over all B·K supports at once. Each state has its own K supports and its "
                "own distribution over them: reshape to (B, K) and normalise each row (dim=1).", _cep_variant(flat=True)),
        Mistake("no_beta", "The inverse temperature β is missing: the target weights are softmax_k(β Q_k) (β sets how "
                "sharply the energy prefers high-Q supports; errata #8c).", _cep_variant(use_beta=False)),
        Mistake("roles_swapped", "The roles are swapped: the target distribution (no gradient) is softmax(β Q), and the "
                "model's log-probabilities are log_softmax(f_ψ).", _cep_variant(swapped=True)),
        Mistake("clean_supports", "f_ψ must be evaluated on the *noised* supports a_i^k = √ᾱ_i a⁰_k + √(1 − ᾱ_i) ε_k "
                "(it is an intermediate energy ℰ_i of noisy actions, Eq. 23), not on the clean a⁰_k.",
                _cep_variant(noised=False)),
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
    error_hint=_index_error_hint,
    field_words=GRAD_WORDS,
)


# ===== 8. guided_eps (Eq. 24) ==========================================================================

def _guided_case(steps: list[int] | None, scale: float, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        i = _steps(steps, BATCH, seed)
        args = (_CheckedEps(), _CheckedEnergy(), _normal((BATCH, STATE_DIM), seed), _normal((BATCH, ACTION_DIM), seed + 1),
                i, scale, _tables())
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
    ab = _SCHEDULE.alphas_cumprod[i - 1].unsqueeze(1)
    # The sampler's guided ε (diffusion/samplers.py): ε̃ = ε_θ − √(1 − ᾱ_i) · scale · ∇_a f.
    return eps_model(state, a_i, i) - (1 - ab).sqrt() * EnergyGuidance(energy, scale)(state, a_i, i)


def _guided_error_hint(err: BaseException, case: Case) -> tuple[str, str] | None:
    if "does not require grad" in str(err) or "does not have a grad_fn" in str(err):
        return "no_requires_grad", (
            "The energy's gradient with respect to the action needs the action to be part of a graph: make a leaf "
            "a = a_i.detach().requires_grad_(True), compute f = energy(state, a, i), then "
            "torch.autograd.grad(f.sum(), a)[0].")
    return _index_error_hint(err, case)


GUIDED_EPS = Exercise(
    name="guided_eps", equation="Eq. 24 in ε form: ε̃ = ε_θ(s, a^i, i) − √(1 − ᾱ_i) · scale · ∇_a f_ψ(s, a^i, i)",
    signature="guided_eps(eps_model, energy, state, a_i, i, scale, schedule) -> eps_tilde",
    cases=[
        _guided_case(NO_LAST_STEP, 2.0, 0, "7 states, steps 1..9, scale 2"),
        _guided_case(WITH_ENDS, 0.5, 1, "7 states, steps 1 and N = 10 included, scale 0.5"),
    ],
    reference=_guided_reference,
    expected_shape=lambda case: tuple(case.args[3].shape),
    probe=lambda out, case: {"value": out},
    mistakes=[
        Mistake("guidance_sign", "The guidance sign is flipped. Guidance adds ∇f to the *score*, and ε points the other "
                "way (ε_θ ≈ −√(1 − ᾱ_i) · score), so in ε form it is subtracted: ε̃ = ε_θ − √(1 − ᾱ_i) · scale · ∇f. "
                "With a + the sampler walks towards low energy, i.e. low Q.", _guided_variant(sign=1.0)),
        Mistake("no_sqrt", "A square root is missing: the factor that turns a score into ε is √(1 − ᾱ_i), not 1 − ᾱ_i.",
                _guided_variant(coef="no_sqrt")),
        Mistake("no_noise_scale", "The factor √(1 − ᾱ_i) is missing. ε and the score live on different scales: "
                "ε_θ ≈ −√(1 − ᾱ_i) · ∇ log μ_i, so a score term enters ε multiplied by √(1 − ᾱ_i).",
                _guided_variant(coef="none")),
        Mistake("alpha_for_alpha_bar", ALPHA_FOR_ALPHA_BAR, _guided_variant(table="alphas")),
        Mistake("zero_based", ZERO_BASED, _guided_variant(shift=0)),
        Mistake("scale_ignored", "The guidance `scale` is not used: multiply the energy's gradient by it (scale = 0 must "
                "give back the unguided ε).", _guided_variant(use_scale=False)),
        Mistake("gradient_of_mean", "You differentiated the batch *mean* of f: each row's gradient came out divided by "
                "the batch size. Each row needs ∇ of its own f, which is what the gradient of f.sum() gives.",
                _guided_variant(reduce="mean")),
    ],
    error_hint=_guided_error_hint,
    field_words={"value": "ε̃"},
)


# ===== 9. select_action (Eq. 21) =======================================================================

def _select_case(temperature: float | None, n_states: int, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        args = (_normal((n_states, K), seed), _normal((n_states, K), seed + 1),
                _uniform((n_states, K, ACTION_DIM), seed + 2), temperature, _gen(seed + 3))
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
                "candidates of state b, and the draw is among those K, so normalise each row: softmax(Q / T, dim=1).",
                _select_variant(axis=0)),
        Mistake("temperature_multiplied", "Divide by the temperature, don't multiply: p ∝ exp(Q / T), so a small T makes "
                "the draw nearly greedy and a large T nearly uniform.", _select_variant(temp="multiply")),
        Mistake("temperature_ignored", "The temperature is not used: p ∝ exp(Q / temperature).", _select_variant(temp="ignore")),
        Mistake("generator_ignored", "Your draw does not use `generator`: the same generator seed gave different actions. "
                "Draw with torch.multinomial(probs, 1, generator=generator) so that results are reproducible.",
                detect=_ignores_generator),
    ],
    shape_hint=_select_shape_hint,
    field_words={"value": "choice of actions (draw with torch.multinomial(probs, 1, generator=generator))"},
)


EXERCISES: dict[str, Exercise] = {e.name: e for e in (
    Q_SAMPLE, REVERSE_STEP, BC_LOSS, ACTION_APPROXIMATION, TD_TARGET, Q_LOSS, CEP_LOSS, GUIDED_EPS, SELECT_ACTION)}


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


def check_action_approximation(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``action_approximation(eps_model, state, action, i, noise, schedule) -> a0_hat`` (Eq. 13–14, unclipped)."""
    return run_check(ACTION_APPROXIMATION, fn, strict)


def check_td_target(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``td_target(reward, terminal, next_state, next_action, target_critic, gamma) -> y`` (B, 1)."""
    return run_check(TD_TARGET, fn, strict)


def check_q_loss(fn: Callable, strict: bool = False) -> Verdict:
    """Check ``q_loss(critic, state, a0_hat) -> scalar`` (Eq. 15 normalised by the detached mean |Q|)."""
    return run_check(Q_LOSS, fn, strict)


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
