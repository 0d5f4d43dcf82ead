"""What every exercise's cases share: the sizes, the schedule's tables, seeded inputs, and the networks handed
to a student's function (which say in words how they were called wrong), plus the messages several exercises use.

Sizes are chosen so that no two of them are equal (batch 7, state 4, action 3, N = 10, K = 5 supports or
candidates for 6 states): a tensor on the wrong axis cannot line up by luck.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..critics import TwinQ
from ..diffusion import DiffusionPolicy, EpsilonMLP, VPSchedule
from .harness import Case, NetworkCallMistake

__all__ = [
    "N_STEPS", "STATE_DIM", "ACTION_DIM", "BATCH", "N_STATES", "K", "HIDDEN", "SCHEDULE", "ScheduleTables",
    "tables", "gen", "uniform", "normal", "make_steps", "NO_LAST_STEP", "WITH_ENDS", "CheckedEps", "CheckedEnergy",
    "CheckedCritic", "flat_grad", "index_error_hint", "column_hint", "table_column", "denoise_case",
    "policy_reference", "noised", "grad_probe", "ZERO_BASED", "ZERO_BASED_INDEX", "COLUMN", "ALPHA_FOR_ALPHA_BAR",
    "NO_SQRT", "NO_GRAD", "GRAD_WORDS",
]

N_STEPS, STATE_DIM, ACTION_DIM, BATCH = 10, 4, 3, 7
N_STATES, K = 6, 5  # CEP supports and candidate selection: K per state
HIDDEN = 32
SCHEDULE = VPSchedule(N_STEPS, 0.1, 10.0)


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


def tables() -> ScheduleTables:
    return ScheduleTables.from_schedule(SCHEDULE)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def uniform(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.rand(shape, generator=gen(seed)) * 2 - 1


def normal(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=gen(seed))


def make_steps(values: list[int] | None, n: int, seed: int) -> torch.Tensor:
    if values is not None:
        return torch.tensor(values, dtype=torch.long)
    return torch.randint(1, N_STEPS + 1, (n,), generator=gen(seed))


NO_LAST_STEP = [1, 2, 3, 5, 7, 8, 9]       # every step but N: a 0-based lookup still returns numbers here
WITH_ENDS = [10, 1, 10, 4, 6, 1, 10]       # the first and the last step


# ----- networks handed to the student: they say how they were called wrong ----------------------------

def check_call(who: str, second: str, state: object, x: object, i: object | None, x_dim: int) -> None:
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


class CheckedEps(nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = EpsilonMLP(STATE_DIM, ACTION_DIM, HIDDEN)

    def forward(self, state: torch.Tensor, a_i: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        check_call("eps_model", "a_i", state, a_i, i, ACTION_DIM)
        return self.net(state, a_i, i)


class CheckedEnergy(nn.Module):
    def __init__(self, seed: int = 1) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = EpsilonMLP(STATE_DIM, ACTION_DIM, HIDDEN, activation="silu", out_dim=1)  # as EnergyModel

    def forward(self, state: torch.Tensor, a_i: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        check_call("energy", "a_i", state, a_i, i, ACTION_DIM)
        return self.net(state, a_i, i)


class CheckedCritic(nn.Module):
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
        check_call("critic", "action", state, action, None, ACTION_DIM)
        q1, q2 = self.twin(state, action)
        return (self.scale * (q1 - self.centres[0]) + self.offset, self.scale * (q2 - self.centres[1]) + self.offset)


def flat_grad(scalar: torch.Tensor, wrt: list[torch.Tensor]) -> dict[str, object]:
    """{"has_grad": bool, "grad": flat gradient (zeros when there is none)}."""
    size = sum(t.numel() for t in wrt)
    if not scalar.requires_grad:
        return {"has_grad": False, "grad": torch.zeros(size)}
    grads = torch.autograd.grad(scalar, wrt, allow_unused=True)
    flat = torch.cat([(g if g is not None else torch.zeros_like(t)).reshape(-1) for g, t in zip(grads, wrt)])
    return {"has_grad": True, "grad": flat}


def index_error_hint(err: BaseException, case: Case) -> tuple[str, str] | None:
    if isinstance(err, IndexError) and ("out of bounds" in str(err) or "out of range" in str(err)):
        return "zero_based", ZERO_BASED_INDEX
    return None


ZERO_BASED = ("You looked up step i at index i (0-based). Steps are 1-based, as in the paper: step i lives at "
              "index i − 1 of every table, e.g. schedule.alphas_cumprod[i - 1].")
ZERO_BASED_INDEX = ("Step N went past the end of a table: you looked up step i at index i. Steps are 1-based "
                    "(i = 1..N), so step i lives at index i − 1, e.g. schedule.alphas_cumprod[i - 1].")
COLUMN = " A per-row number of shape (B,) must become a column (B, 1) before it multiplies a (B, d) batch: [:, None]."


def column_hint(shape: tuple[int, ...], case: Case) -> str | None:
    if len(shape) == 2 and shape[0] == shape[1]:
        return "A (B,) tensor met a (B, 1) or (B, d) one and broadcast into a square." + COLUMN
    return None


def table_column(schedule: ScheduleTables, i: torch.Tensor, table: str = "alphas_cumprod", shift: int = 1) -> torch.Tensor:
    """``schedule.<table>[i - shift]`` as a (B, 1) column (``shift=0`` is the 0-based mistake)."""
    return getattr(schedule, table)[i - shift].unsqueeze(1)


ALPHA_FOR_ALPHA_BAR = ("You used the one-step α_i (schedule.alphas) where the cumulative ᾱ_i = α_1·…·α_i "
                       "(schedule.alphas_cumprod) belongs. This is the paper's own typo (Eq. 6–8, 12–14; errata "
                       "#3): one step keeps almost all of the signal, i steps keep almost none.")
NO_SQRT = ("A square root is missing: the coefficients are √ᾱ_i and √(1 − ᾱ_i), not ᾱ_i and 1 − ᾱ_i. "
           "Their squares add up to 1, which is what keeps the variance at 1 (variance preserving).")


def denoise_case(steps: list[int] | None, batch: int, seed: int, info: str) -> Callable[[], Case]:
    """Inputs of bc_loss and action_approximation: (eps_model, state, action, i, noise, schedule)."""
    def make() -> Case:
        i = make_steps(steps, batch, seed)
        noise = torch.randn((batch, ACTION_DIM), generator=gen(seed + 100))  # what the policy's generator draws
        model = CheckedEps()
        args = (model, normal((batch, STATE_DIM), seed), uniform((batch, ACTION_DIM), seed + 1), i, noise, tables())
        return Case(args, info, {"steps": i, "noise_seed": seed + 100, "params": list(model.parameters()),
                                 "weights": normal((batch, ACTION_DIM), seed + 300)})
    return make


def policy_reference(case: Case):
    """The kit's (per-row ε error, steps, â⁰) for a ``denoise_case``: ``DiffusionPolicy.denoise_dataset_action``."""
    model, state, action, i = case.args[:4]
    policy = DiffusionPolicy(STATE_DIM, ACTION_DIM, SCHEDULE, eps_model=model)
    return policy.denoise_dataset_action(state, action, generator=gen(case.extra["noise_seed"]), step=i)


def noised(action, i, noise, schedule, table="alphas_cumprod", shift=1):
    """Eq. 13 as the mistakes write it (``table``/``shift`` select the typical wrong lookups)."""
    ab = getattr(schedule, table)[i - shift].unsqueeze(1)
    return ab.sqrt() * action + (1 - ab).sqrt() * noise


def grad_probe(out: torch.Tensor, case: Case) -> dict[str, object]:
    """The value and its gradient with respect to the network's weights (a vector output is weighted first)."""
    weighted = out if out.dim() == 0 else (out * case.extra["weights"]).sum()
    return {"value": out, **flat_grad(weighted, case.extra["params"])}


NO_GRAD = ("Your result carries no gradient back to the network's weights θ: it was computed under torch.no_grad(), "
           "detached, or rebuilt from .item() numbers. Training needs ∇θ, so keep the whole computation in the graph.")
GRAD_WORDS = {"value": "value", "has_grad": "gradient (yours has none)", "grad": "gradient with respect to θ"}

