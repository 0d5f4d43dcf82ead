"""Behaviour cloning for any policy with ``.loss(state, action, generator)`` (diffusion or Gaussian)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = ["train_behavior_cloning"]


def train_behavior_cloning(
    policy: nn.Module,
    states: np.ndarray | torch.Tensor,
    actions: np.ndarray | torch.Tensor,
    steps: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    log_every: int = 10,
    cosine_decay: bool = True,
) -> pd.DataFrame:
    """Minimise ``policy.loss`` on minibatches drawn with replacement; Adam, fixed seed, and (by default)
    a cosine decay of the learning rate to 0 over ``steps``: the last steps refine the modes' edges
    instead of jittering around them.

    Returns a DataFrame with columns ``step`` and ``loss`` (the minibatch loss every ``log_every`` steps).
    Same seed, same data → same trained weights on CPU."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got steps={steps}, batch_size={batch_size}.")
    device = next(policy.parameters()).device
    states = torch.as_tensor(states, dtype=torch.float32, device=device)
    actions = torch.as_tensor(actions, dtype=torch.float32, device=device)
    if states.shape[0] != actions.shape[0]:
        raise ValueError(f"states has {states.shape[0]} rows but actions has {actions.shape[0]}.")
    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps) if cosine_decay else None
    records = []
    policy.train()
    bar = tqdm(range(1, steps + 1), desc="behaviour cloning", disable=not progress, leave=False)
    for step in bar:
        rows = torch.randint(0, states.shape[0], (batch_size,), generator=generator, device=device)
        loss = policy.loss(states[rows], actions[rows], generator=generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if step % log_every == 0 or step == steps:
            records.append({"step": step, "loss": loss.item()})
            bar.set_postfix(loss=f"{records[-1]['loss']:.4f}")
    policy.eval()
    return pd.DataFrame.from_records(records)
