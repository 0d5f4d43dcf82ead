"""Analytic reference models shared by the tests (kept out of the package: they are test oracles)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import nn

import dac4rec_lite as dl

def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (scripts/ is not a package), registered in ``sys.modules`` so that
    its dataclasses can find it."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# The simulator tests (conftest.simulator): logged sessions, evaluation sessions and seed.
SIM_EPISODES, EVAL_EPISODES, EVAL_SEED = 600, 300, 1


class GaussianOracleEps(nn.Module):
    """The exact ε for data N(μ, σ²I): ε*(x, i) = √(1-ᾱ_i)(x − √ᾱ_i μ) / (ᾱ_i σ² + 1 − ᾱ_i)."""

    def __init__(self, schedule: dl.VPSchedule, mean: torch.Tensor, std: float) -> None:
        super().__init__()
        self.schedule, self.std = schedule, std
        self.register_buffer("mean", mean.float())

    def forward(self, state: torch.Tensor, a_i: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        alpha_bar = self.schedule.alphas_cumprod[i - 1].unsqueeze(1)
        return (1 - alpha_bar).sqrt() * (a_i - alpha_bar.sqrt() * self.mean) / (alpha_bar * self.std**2 + 1 - alpha_bar)


def linear_chain_moments(
    n_steps: int, beta_min: float, beta_max: float, mean: float, std: float, variance: str = "posterior"
) -> tuple[float, float]:
    """Exact output mean and variance (per dimension) of the discrete DDPM chain driven by the oracle ε for
    N(mean, std²) data, computed independently of the package in float64.

    With the oracle, every reverse step is affine in a: a' = A_i a + B_i + s_i z, so
    m' = A_i m + B_i and v' = A_i² v + s_i², starting from m = 0, v = 1."""
    i = np.arange(1, n_steps + 1, dtype=np.float64)
    alphas = np.exp(-beta_min / n_steps - 0.5 * (beta_max - beta_min) * (2 * i - 1) / n_steps**2)
    betas = 1 - alphas
    alpha_bar = np.cumprod(alphas)
    alpha_bar_prev = np.concatenate([[1.0], alpha_bar[:-1]])
    m, v = 0.0, 1.0
    for k in range(n_steps - 1, -1, -1):
        ab, abp, al, be = alpha_bar[k], alpha_bar_prev[k], alphas[k], betas[k]
        gain = np.sqrt(1 - ab) / (ab * std**2 + 1 - ab)  # ε* = gain (x − √ᾱ μ)
        a0_slope = (1 - np.sqrt(1 - ab) * gain) / np.sqrt(ab)  # â0 = a0_slope x + a0_offset
        a0_offset = np.sqrt(1 - ab) * gain * np.sqrt(ab) * mean / np.sqrt(ab)
        c0 = be * np.sqrt(abp) / (1 - ab)
        ci = (1 - abp) * np.sqrt(al) / (1 - ab)
        slope, offset = c0 * a0_slope + ci, c0 * a0_offset
        if variance == "posterior":
            noise_var = be * (1 - abp) / (1 - ab)
        else:
            noise_var = be if k > 0 else 0.0
        m, v = slope * m + offset, slope**2 * v + noise_var
    return m, v
