"""Shared pieces of tests/test_bad_inputs.py and tests/test_agent_faults.py: a tiny dataset and agent."""
from __future__ import annotations

import os

import numpy as np
import torch

import dac4rec_lite as dl

OBS, ACT, N = 3, 2, 48
TINY = {"hidden_dim": 8, "n_steps": 3}                  # a DAC4Rec that builds and updates in milliseconds
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NO_CUDA = not torch.cuda.is_available()
NAN = float("nan")


def make_dict(n: int = N, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    terminals = (np.arange(n) % 8 == 7).astype(np.float32)
    return {"observations": rng.normal(size=(n, OBS)).astype(np.float32),
            "actions": rng.uniform(-1, 1, size=(n, ACT)).astype(np.float32),
            "rewards": rng.normal(size=n).astype(np.float32),
            "next_observations": rng.normal(size=(n, OBS)).astype(np.float32),
            "terminals": terminals}


def tiny_agent(**kwargs) -> dl.DAC4Rec:
    return dl.DAC4Rec(OBS, ACT, **{**TINY, **kwargs})
