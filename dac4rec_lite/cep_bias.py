"""What each energy-training loss converges to with K supports, on cases where ℰ_i is known (notebook 05).

κ is the inverse temperature of the tilt exp(κ Q) (the argument ``beta``; docs/notation.md).

The target of guided sampling is the intermediate energy (Eq. 23)

    ℰ_i(a^i) = log E_{μ_0i(a⁰ | a^i)} [exp(κ Q(a⁰))],

and guidance only uses its gradient, so a learned f is right when f = ℰ_i + c. Three losses, each over groups
of K supports a⁰_1..K ~ μ noised to a^i_1..K, are compared here by their *minimisers*, not by training noise:

* ``"cep"`` — what ``train_energy(method="cep")`` trains: the cross-entropy with **per-group softmax labels**
  −Σ_k softmax_k(κ Q_k) · log softmax_k f(a^i_k). For finite K its minimiser is **not** ℰ_i + c: the label of
  support k is divided by the group's own Σ_j exp(κ Q_j), which depends on the other supports, and
  averaging that ratio over the posterior is not averaging exp(κ Q). The bias vanishes as K → ∞ (the group
  sum tends to K·E[exp(κ Q)], a constant).
* ``"cep_unnormalised"`` — the loss of Lu et al.'s theorem (2023): the same cross-entropy with the
  **unnormalised weights** exp(κ Q_k). For each group the best softmax is ∝ E[exp(κ Q_k) | a^i_k] =
  exp(ℰ_i(a^i_k)) up to a factor shared by the group, so f = ℰ_i + c is the minimiser for every K ≥ 2.
  The price is variance: exp(κ Q) is heavy-tailed.
* ``"mse"`` — Eq. 25 as the kit implements it: the square error to the self-normalised importance estimate
  ℰ̂_i (``importance_energy_estimate``), biased low for finite K (Jensen: E[log X] ≤ log E[X]).

Two cases:

* ``discrete_energy_optimum`` — noisy actions fall in a few cells; in each cell the clean Q has a known
  discrete law, so ℰ(cell) = log Σ_q P(q | cell) exp(κ q). All K-tuples are enumerated: the minimisers are
  exact (no sampling). Example: cell A with Q ∈ {0, 10} at 50/50, cell B with Q = 5, K = 2, κ = 1:
  ℰ_A − ℰ_B = log(½ + ½e^10) − 5 ≈ 4.31, while CEP with softmax labels gives f_A = f_B (every mixed group
  has expected label ½ for each support).
* ``gaussian_energy_bias`` — μ = N(0, 1) in 1-D and a linear critic Q(a) = w·a, the warm-up case of notebook
  05: ℰ_i(a^i) = κ √ᾱ_i w · a^i + const, so the exact guidance ∇ℰ_i = κ √ᾱ_i w is one number. Each loss is
  minimised over cubic polynomials f on Monte-Carlo groups (fixed seed), and the table reports the mean
  slope E_{μ_i}[f′] as a fraction of κ √ᾱ_i w: 1 is unbiased guidance, below 1 guidance too weak.
"""
from __future__ import annotations

import itertools
import math
from typing import Sequence

import pandas as pd
import torch

from .diffusion import VPSchedule
from .energy import importance_energy_estimate

__all__ = ["ENERGY_LOSSES", "discrete_energy", "discrete_energy_optimum", "gaussian_energy_bias"]

ENERGY_LOSSES = ("cep", "cep_unnormalised", "mse")
_MAX_ENUMERATED_TUPLES = 2_000_000


def _check_beta(beta: float) -> float:
    beta = float(beta)
    if not math.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta (the inverse temperature of exp(κ Q)) must be a finite number > 0, got {beta}.")
    return beta


def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"the number of supports K must be an integer >= 2 (the losses compare supports), got {k!r}.")
    return k


def _check_loss(loss: str) -> str:
    if loss not in ENERGY_LOSSES:
        raise ValueError(f"loss must be one of {ENERGY_LOSSES}, got {loss!r}.")
    return loss


def _check_cells(cells: Sequence[tuple[float, Sequence[tuple[float, float]]]]) -> list[tuple[float, list[tuple[float, float]]]]:
    """cells: [(P(cell), [(q, P(q | cell)), ...]), ...]; probabilities must be positive and sum to 1."""
    if len(cells) < 2:
        raise ValueError(f"need at least 2 cells (with one cell every f is a constant), got {len(cells)}.")
    checked = []
    for m, (p_cell, outcomes) in enumerate(cells):
        outcomes = [(float(q), float(p)) for q, p in outcomes]
        values = [float(p_cell)] + [x for pair in outcomes for x in pair]
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"cell {m}: probabilities and Q values must be finite, got {values}.")
        if p_cell <= 0 or not outcomes or any(p <= 0 for _, p in outcomes):
            raise ValueError(f"cell {m}: P(cell) and every P(q | cell) must be > 0 and the cell needs an outcome.")
        if abs(sum(p for _, p in outcomes) - 1) > 1e-9:
            raise ValueError(f"cell {m}: P(q | cell) must sum to 1, got {sum(p for _, p in outcomes)}.")
        checked.append((float(p_cell), outcomes))
    if abs(sum(p for p, _ in checked) - 1) > 1e-9:
        raise ValueError(f"the cell probabilities must sum to 1, got {sum(p for p, _ in checked)}.")
    return checked


def discrete_energy(cells: Sequence[tuple[float, Sequence[tuple[float, float]]]], beta: float) -> torch.Tensor:
    """ℰ(cell) = log Σ_q P(q | cell) exp(κ q) (Eq. 23 with the posterior of each cell), as a float64 tensor (M,)."""
    beta = _check_beta(beta)
    cells = _check_cells(cells)
    return torch.tensor([torch.logsumexp(torch.tensor([beta * q + math.log(p) for q, p in outcomes],
                                                      dtype=torch.float64), 0).item()
                         for _, outcomes in cells], dtype=torch.float64)


def _minimise_cross_entropy(cell_of: torch.Tensor, weights: torch.Tensor, prob: torch.Tensor, n_cells: int) -> torch.Tensor:
    """argmin_f Σ_t prob_t Σ_k weights_tk · (−log softmax_k f[cell_of_tk]) over f ∈ R^M with f[0] = 0 (convex)."""
    free = torch.zeros(n_cells - 1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([free], lr=1.0, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        f = torch.cat([torch.zeros(1, dtype=torch.float64), free])[cell_of]
        loss = -(prob[:, None] * weights * torch.log_softmax(f, dim=1)).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return torch.cat([torch.zeros(1, dtype=torch.float64), free.detach()])


def discrete_energy_optimum(cells: Sequence[tuple[float, Sequence[tuple[float, float]]]], beta: float,
                            n_supports: int, loss: str = "cep") -> torch.Tensor:
    """The exact minimiser f (M,) of ``loss`` over functions of the cell, with K = ``n_supports``, shifted so f[0] = 0.

    Every K-tuple of (cell, q) atoms is enumerated with its probability, so nothing is sampled. For "mse"
    the self-normalised importance weight of a support is 1 when it lies in the point's cell and 0
    otherwise (the posterior of a cell is μ restricted to it), so ℰ̂(cell m) = log mean exp(κ Q) over the
    group's supports in cell m, and the minimiser is E[ℰ̂ | m] (shifted like the others).
    Compare with ``discrete_energy(cells, beta) − discrete_energy(cells, beta)[0]``."""
    beta, k, loss = _check_beta(beta), _check_k(n_supports), _check_loss(loss)
    cells = _check_cells(cells)
    atoms = [(m, q, p_cell * p_q) for m, (p_cell, outcomes) in enumerate(cells) for q, p_q in outcomes]
    if len(atoms) ** k > _MAX_ENUMERATED_TUPLES:
        raise ValueError(f"{len(atoms)} atoms and K = {k} give {len(atoms) ** k} tuples to enumerate (at most "
                         f"{_MAX_ENUMERATED_TUPLES}); use fewer cells/outcomes or a smaller K.")
    tuples = torch.tensor(list(itertools.product(range(len(atoms)), repeat=k)), dtype=torch.long)  # (T, K)
    cell_of = torch.tensor([a[0] for a in atoms])[tuples]
    q = torch.tensor([a[1] for a in atoms], dtype=torch.float64)[tuples]
    prob = torch.tensor([a[2] for a in atoms], dtype=torch.float64)[tuples].prod(dim=1)
    n_cells = len(cells)
    if loss == "mse":
        same = cell_of[:, :, None] == cell_of[:, None, :]  # (T, K point, K support)
        log_w = torch.where(same, 0.0, -math.inf).to(torch.float64)
        target = torch.logsumexp(log_w + beta * q[:, None, :], dim=2) - torch.logsumexp(log_w, dim=2)  # (T, K)
        mass = torch.zeros(n_cells, dtype=torch.float64).index_add_(0, cell_of.flatten(), prob.repeat_interleave(k))
        total = torch.zeros(n_cells, dtype=torch.float64).index_add_(
            0, cell_of.flatten(), (prob[:, None] * target).flatten())
        f = total / mass
        return f - f[0]
    logits = beta * q
    weights = torch.softmax(logits, dim=1) if loss == "cep" else torch.exp(logits - logits.max())
    return _minimise_cross_entropy(cell_of, weights, prob, n_cells)


def _fit_slope(x: torch.Tensor, q: torch.Tensor, a0: torch.Tensor, alpha_bar: float, beta: float, loss: str) -> float:
    """Minimise ``loss`` over f(x) = c₀ + c₁x + c₂x² + c₃x³ on groups (G, K); return E_{x~N(0,1)} f′ = c₁ + 3c₃."""
    features = torch.stack([x, x ** 2, x ** 3], dim=-1)  # (G, K, 3); x ~ N(0, 1) exactly, no scaling needed
    if loss == "mse":
        target = torch.cat([importance_energy_estimate(x[g:g + 256, :, None], a0[g:g + 256, :, None],
                                                       q[g:g + 256], alpha_bar, beta)
                            for g in range(0, x.shape[0], 256)])
        design = torch.cat([torch.ones_like(x)[..., None], features], dim=-1).reshape(-1, 4)
        # Normal equations built with elementwise products and sums rather than LAPACK's lstsq, whose threaded
        # MKL path can differ by an ulp between two identical calls; the 4×4 solve is single-threaded.
        gram = (design[:, :, None] * design[:, None, :]).sum(dim=0)
        moment = (design * target.reshape(-1, 1)).sum(dim=0)
        coef = torch.linalg.solve(gram, moment)
        return float(coef[1] + 3 * coef[3])
    logits = beta * q
    weights = torch.softmax(logits, dim=1) if loss == "cep" else torch.exp(logits - logits.max())
    weights = weights / weights.sum(dim=1).mean()  # a constant factor: same minimiser, a well-scaled loss
    coef = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([coef], lr=1.0, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        value = -(weights * torch.log_softmax((features * coef).sum(dim=-1), dim=1)).sum(dim=1).mean()
        value.backward()
        return value

    optimiser.step(closure)
    coef = coef.detach()
    return float(coef[0] + 3 * coef[2])


def gaussian_energy_bias(schedule: VPSchedule, steps: Sequence[int], beta: float = 1.0, slope: float = 1.5,
                         n_supports: Sequence[int] = (2, 4, 16, 64), n_groups: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Guidance each loss converges to, as a fraction of the exact ∇ℰ_i, on μ = N(0, 1) and Q(a) = ``slope``·a.

    For every step i in ``steps`` and K in ``n_supports``: ``n_groups`` groups of K supports a⁰ ~ N(0, 1) are
    noised to a^i = √ᾱ_i a⁰ + √(1 − ᾱ_i) ε (the same draws for the three losses), each loss of
    ``ENERGY_LOSSES`` is minimised over cubic f, and ``ratio`` = E_{a^i ~ N(0,1)}[f′(a^i)] / (κ √ᾱ_i w).
    Returns a long table with columns ``i, K, loss, exact_slope, fitted_slope, ratio``. "cep_unnormalised"
    is unbiased for every K (its ratio is 1 up to Monte-Carlo error, which grows with κ·w as exp(κ Q)
    gets heavier tails); "cep" and "mse" approach 1 as K grows."""
    beta = _check_beta(beta)
    slope = float(slope)
    if not math.isfinite(slope) or slope == 0:
        raise ValueError(f"slope (w of Q(a) = w·a) must be finite and non-zero, got {slope}.")
    if isinstance(n_groups, bool) or not isinstance(n_groups, int) or n_groups < 10:
        raise ValueError(f"n_groups must be an integer >= 10, got {n_groups!r}.")
    ks = [_check_k(k) for k in n_supports]
    if not ks:
        raise ValueError("n_supports is empty: give at least one K >= 2.")
    steps = list(steps)
    for i in steps:
        if isinstance(i, bool) or not isinstance(i, int) or not 1 <= i <= schedule.n_steps:
            raise ValueError(f"steps must be integers in 1..{schedule.n_steps} (1-based diffusion steps), got {i!r}.")
    rows = []
    for i in steps:
        alpha_bar = float(schedule.alphas_cumprod[i - 1])
        exact = beta * math.sqrt(alpha_bar) * slope
        for k in ks:
            generator = torch.Generator().manual_seed(seed + 1000 * k + i)
            a0 = torch.randn(n_groups, k, generator=generator, dtype=torch.float64)
            noise = torch.randn(n_groups, k, generator=generator, dtype=torch.float64)
            x = math.sqrt(alpha_bar) * a0 + math.sqrt(1 - alpha_bar) * noise
            q = slope * a0
            for loss in ENERGY_LOSSES:
                fitted = _fit_slope(x, q, a0, alpha_bar, beta, loss)
                rows.append({"i": i, "K": k, "loss": loss, "exact_slope": exact, "fitted_slope": fitted,
                             "ratio": fitted / exact})
    return pd.DataFrame(rows)
