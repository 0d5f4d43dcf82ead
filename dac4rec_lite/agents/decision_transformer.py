"""A small Decision Transformer (Chen et al. 2021), the paper's DT row: offline RL as return-conditioned
sequence modelling, with no critic and no bootstrapping.

Training. The offline dataset is cut into its episodes (``TrajectoryWindows``: ``episode_starts`` when the
dataset has them, else a new episode after every terminal or timeout). At every step t the return-to-go is
R̂_t = Σ_{t' ≥ t} r_t' (undiscounted, to the end of the episode). A training sample is a window of the last
K = ``context_length`` steps of an episode ending at a uniformly drawn transition (left-padded when the
episode is younger than K), laid out as 3K tokens

    R̂_{t−K+1}, s_{t−K+1}, a_{t−K+1}, …, R̂_t, s_t, a_t

each embedded by its own linear map (states after the agent's ``encoder``), plus an embedding of the step
index t within the episode. A causal transformer (pre-LayerNorm blocks; padding masked out) reads them and
the output at each state token s_t predicts a_t (through tanh · max_action); the loss is the squared error
over the window's real steps. Returns-to-go enter divided by ``return_scale`` (default: the dataset's
largest |episode return|).

Acting. The model is conditioned on a target return: R̂_1 = ``target_return`` (default: the 90th
percentile of the dataset's episode returns — high, but still a return the data shows often enough to
imitate), and after each page R̂ ← R̂ − r. So the agent keeps its own per-episode context:

    agent.begin_episodes(n)                 # n users side by side, R̂ = agent.target_return (or target_return=...)
    actions = agent.act(obs)                # obs (n_running, obs_dim): one row per running episode, in order
    agent.observe_rewards(rewards, done)    # rewards/done of those rows; done rows leave the context

``dl.evaluate`` / ``dl.collect`` call ``begin_episodes`` and ``observe_rewards`` for any policy that has
them. ``act`` on a fresh agent (or after every episode has ended) starts ``len(obs)`` episodes by itself;
``act`` twice without ``observe_rewards`` between raises, since the context would silently go stale.
To condition on another return, set ``agent.target_return`` before evaluating, or pass ``target_return`` to
``begin_episodes``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_generator, randint, randn, seeded_init
from .base import OfflineAgent
from .config import AgentConfig

__all__ = ["DecisionTransformer", "DecisionTransformerConfig", "TrajectoryWindows", "SEQUENCE_KEYS"]

SEQUENCE_KEYS = ("observations", "actions", "returns_to_go", "timesteps", "valid")


class TrajectoryWindows:
    """An ``OfflineDataset`` cut into episodes and served as windows of K consecutive steps.

    ``sample_batch(batch_size, generator, device)`` draws transitions uniformly and returns, for each, the window
    of the K steps of its episode that end there (left-padded): ``observations`` (B, K, obs_dim),
    ``actions`` (B, K, d), ``returns_to_go`` (B, K, 1), ``timesteps`` (B, K) long (step within the episode)
    and ``valid`` (B, K) bool (False on padding, whose entries are zeros). ``returns`` holds every episode's
    return."""

    def __init__(self, dataset, context_length: int) -> None:
        if context_length < 1:
            raise ValueError(f"context_length must be >= 1, got {context_length}.")
        if not hasattr(dataset, "to_dict"):
            hint = "; build one with dl.OfflineDataset.from_dict(d)" if isinstance(dataset, dict) else ""
            raise TypeError(f"fit expects an OfflineDataset (or TrajectoryWindows), got {type(dataset).__name__}{hint}.")
        d = dataset.to_dict()
        n = len(d["rewards"])
        ends = (d["terminals"] > 0.5) | (d["timeouts"] > 0.5)
        starts = np.r_[True, ends[:-1]]
        if "episode_starts" in d:
            starts = starts | d["episode_starts"].astype(bool)
        first = np.flatnonzero(starts)                       # first row of each episode
        episode = np.cumsum(starts) - 1                      # episode of each row
        rewards = d["rewards"].astype(np.float64)
        self.returns = np.add.reduceat(rewards, first)       # (n_episodes,)
        before = np.cumsum(rewards) - rewards                # reward summed over all earlier rows
        return_to_go = self.returns[episode] - (before - before[first[episode]])
        self.context_length = context_length
        self._observations = torch.from_numpy(d["observations"])
        self._actions = torch.from_numpy(d["actions"])
        self._returns_to_go = torch.from_numpy(return_to_go.astype(np.float32)).unsqueeze(1)
        self._first = torch.from_numpy(first[episode])
        self._n = n

    @property
    def obs_dim(self) -> int:
        return int(self._observations.shape[1])

    @property
    def action_dim(self) -> int:
        return int(self._actions.shape[1])

    @property
    def n_episodes(self) -> int:
        return len(self.returns)

    def __len__(self) -> int:
        return self._n

    def sample_batch(self, batch_size: int, generator: torch.Generator | None = None,
                     device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        """A mini-batch of ``batch_size`` windows, their last steps drawn uniformly with replacement (class
        docstring)."""
        generator = check_generator(generator)
        end = randint(0, self._n, (int(batch_size),), generator, "cpu")
        rows = end.unsqueeze(1) + torch.arange(1 - self.context_length, 1)   # (B, K), oldest first
        first = self._first[end].unsqueeze(1)
        valid = rows >= first
        rows = torch.where(valid, rows, end.unsqueeze(1))                      # padding reads a real row, then zeroed
        mask = valid.unsqueeze(2).float()
        batch = {
            "observations": self._observations[rows] * mask,
            "actions": self._actions[rows] * mask,
            "returns_to_go": self._returns_to_go[rows] * mask,
            "timesteps": torch.where(valid, rows - first, 0),
            "valid": valid,
        }
        return {key: value.to(device) for key, value in batch.items()}

    sample = sample_batch  # the name OfflineDataset's mini-batch draw also answers to


class CausalBlock(nn.Module):
    """Pre-LayerNorm transformer block: masked multi-head self-attention, then an MLP, both residual."""

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, length, dim = x.shape
        head = dim // self.n_heads
        q, k, v = self.qkv(self.norm1(x)).view(b, length, 3, self.n_heads, head).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(head)
        weights = self.dropout(torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1))
        x = x + self.dropout(self.proj((weights @ v).transpose(1, 2).reshape(b, length, dim)))
        return x + self.dropout(self.mlp(self.norm2(x)))


class DecisionTransformerNet(nn.Module):
    """(R̂, s, a) tokens → a causal transformer → the action predicted at every state token."""

    LOG_STD_MIN, LOG_STD_MAX = -5.0, 1.0

    def __init__(self, state_dim: int, action_dim: int, embed_dim: int, n_layers: int, n_heads: int, dropout: float,
                 max_timestep: int, max_action: float | None, stochastic: bool = False) -> None:
        super().__init__()
        self.max_timestep, self.max_action, self.stochastic = max_timestep, max_action, stochastic
        self.embed_return = nn.Linear(1, embed_dim)
        self.embed_state = nn.Linear(state_dim, embed_dim)
        self.embed_action = nn.Linear(action_dim, embed_dim)
        self.embed_timestep = nn.Embedding(max_timestep, embed_dim)
        self.embed_norm = nn.LayerNorm(embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(CausalBlock(embed_dim, n_heads, dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(embed_dim)
        self.predict_action = nn.Linear(embed_dim, 2 * action_dim if stochastic else action_dim)

    @staticmethod
    def attention_mask(valid: torch.Tensor) -> torch.Tensor:
        """(B, 3K, 3K) bool: token t may attend to s when s ≤ t and s is not padding (a padding token
        attends to itself only, so its softmax is defined)."""
        keys = valid.repeat_interleave(3, dim=1)
        length = keys.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=valid.device).tril()
        itself = torch.eye(length, dtype=torch.bool, device=valid.device)
        return causal & (keys[:, None, :] | itself)

    def forward(self, states: torch.Tensor, actions: torch.Tensor, returns_to_go: torch.Tensor,
                timesteps: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The action's mean (B, K, d) at every state token, and its standard deviation (stochastic) or None."""
        b, k, _ = states.shape
        time = self.embed_timestep(timesteps.clamp(max=self.max_timestep - 1))
        tokens = torch.stack([self.embed_return(returns_to_go) + time, self.embed_state(states) + time,
                              self.embed_action(actions) + time], dim=2)       # (B, K, 3, h): R̂_t, s_t, a_t
        x = self.dropout(self.embed_norm(tokens.reshape(b, 3 * k, -1)))
        mask = self.attention_mask(valid)[:, None]                             # (B, 1, 3K, 3K)
        for block in self.blocks:
            x = block(x, mask)
        out = self.predict_action(self.norm(x)[:, 1::3])                       # at the state tokens: a_t
        mean, log_std = out.chunk(2, dim=-1) if self.stochastic else (out, None)
        mean = mean if self.max_action is None else self.max_action * torch.tanh(mean)
        return mean, None if log_std is None else log_std.clamp(self.LOG_STD_MIN, self.LOG_STD_MAX).exp()


@dataclass
class DecisionTransformerConfig(AgentConfig):
    """Hyper-parameters of the Decision Transformer (plain values, saved beside the weights). The shared
    fields (sizes, ``encoder`` — here trained by the DT loss —, ``obs_layout``, ``device``, ``seed``) and the
    validation of every field come from ``AgentConfig`` (agents/config.py)."""

    context_length: int = 10         # K: timesteps the model sees (3K tokens)
    embed_dim: int = 64
    n_layers: int = 2
    n_heads: int = 2
    dropout: float = 0.1
    max_timestep: int = 128          # entries of the step embedding; later steps share the last one
    target_return: float | None = None   # R̂_1 when acting; None: the 90th percentile of the dataset's episode returns
    return_scale: float | None = None    # returns-to-go are divided by it; None: the dataset's mean |episode return|
    max_action: float | None = 1.0
    stochastic: bool = True          # a Gaussian head trained by likelihood, sampled by act(); False: MSE, the mean
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_decay: bool = True
    grad_clip: float = 0.25          # as in the DT authors' code

    def __post_init__(self) -> None:
        super().__post_init__()  # every field: type, finiteness, range (RANGES in agents/config.py)
        if self.embed_dim % self.n_heads:
            raise ValueError(f"embed_dim ({self.embed_dim}) must be divisible by n_heads ({self.n_heads}).")


class DecisionTransformer(OfflineAgent):
    """Return-conditioned behaviour cloning with a causal transformer (Chen et al. 2021); see the module
    docstring for the token layout, the return-to-go conditioning and the acting API.

    ``DecisionTransformer(obs_dim, action_dim, context_length=10, embed_dim=64, n_layers=2, target_return=None,
    ...)``; every field of ``DecisionTransformerConfig`` is a keyword argument. ``fit`` takes an
    ``OfflineDataset`` with episode boundaries (``dl.collect`` keeps them); ``update`` takes a batch of
    windows from ``TrajectoryWindows.sample_batch``. No critic: ``act`` accepts only ``n_candidates=1``."""

    Config = DecisionTransformerConfig

    def __init__(self, obs_dim: int, action_dim: int, encoder: str | nn.Module | None = None, **kwargs) -> None:
        self._construct(obs_dim, action_dim, encoder, kwargs)  # config, seed, encoder, networks, optimiser (base.py)
        config = self.config
        self.return_scale = config.return_scale    # resolved from the data by the first fit() when None
        self.target_return = config.target_return
        self._context: dict[str, torch.Tensor] | None = None
        self._awaiting_rewards = False

    def _build_networks(self, state_dim: int) -> None:
        cfg = self.config
        self.model = DecisionTransformerNet(state_dim, cfg.action_dim, cfg.embed_dim, cfg.n_layers, cfg.n_heads,
                                            cfg.dropout, cfg.max_timestep, cfg.max_action, cfg.stochastic)

    def _build_optimizers(self) -> None:
        cfg = self.config
        self.optimizer = torch.optim.AdamW([*self.model.parameters(), *self.encoder.parameters()], lr=cfg.lr,
                                           weight_decay=cfg.weight_decay)

    def _modules_to_save(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "model": self.model}

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.optimizer]

    def _extra_state(self) -> dict[str, float | None]:
        return {"return_scale": self.return_scale, "target_return": self.target_return}

    def _load_extra_state(self, state: dict[str, float | None]) -> None:
        self.return_scale = state.get("return_scale")
        self.target_return = state.get("target_return")

    # ----- training ----------------------------------------------------------------------------------
    def fit(self, dataset, steps: int, batch_size: int = 64, progress: bool = True, log_every: int = 1):
        """``steps`` updates on windows of ``dataset`` (an ``OfflineDataset`` with episode boundaries, or
        ``TrajectoryWindows``). The first fit fixes ``return_scale`` and ``target_return`` from the data when
        the config leaves them None."""
        windows = dataset if isinstance(dataset, TrajectoryWindows) else TrajectoryWindows(dataset, self.config.context_length)
        if windows.context_length != self.config.context_length:
            raise ValueError(f"the windows have K={windows.context_length} but the agent has context_length={self.config.context_length}.")
        if self.return_scale is None:
            self.return_scale = float(max(np.abs(windows.returns).mean(), 1e-6))
        if self.target_return is None:
            self.target_return = float(np.quantile(windows.returns, 0.9))
        return super().fit(windows, steps, batch_size, progress, log_every)

    def _check_sequences(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        missing = [k for k in SEQUENCE_KEYS if k not in batch]
        if missing:
            raise ValueError(f"batch is missing {missing}; draw windows with TrajectoryWindows(dataset, K).sample_batch(B).")
        b, k = batch["valid"].shape
        shapes = {"observations": (b, k, self.config.obs_dim), "actions": (b, k, self.config.action_dim),
                  "returns_to_go": (b, k, 1), "timesteps": (b, k)}
        if k != self.config.context_length:
            raise ValueError(f"windows have {k} steps but context_length is {self.config.context_length}.")
        for key, shape in shapes.items():
            if tuple(batch[key].shape) != shape:
                raise ValueError(f"batch[{key!r}] has shape {tuple(batch[key].shape)}, expected {shape}.")
        return {key: batch[key].to(self.device) for key in SEQUENCE_KEYS}

    def predict(self, observations: torch.Tensor, actions: torch.Tensor, returns_to_go: torch.Tensor,
                timesteps: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The action predicted at every state token (B, K, d) — its mean, and its standard deviation when
        ``stochastic`` (else None) — from raw observations and unscaled returns-to-go."""
        if self.return_scale is None:
            raise RuntimeError("the Decision Transformer has no return scale yet: fit() it (or set return_scale).")
        b, k, _ = observations.shape
        states = self.encoder(observations.reshape(b * k, -1)).reshape(b, k, -1)
        return self.model(states, actions, returns_to_go / self.return_scale, timesteps, valid)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One step of the squared error between predicted and logged actions over the windows' real steps
        (``stochastic``: their negative log-likelihood, per action dimension). Dropout draws from a generator seeded by (seed, update), so training is reproducible and the
        global RNG is left alone."""
        batch = self._check_sequences(batch)
        self.model.train()
        with seeded_init(self.config.seed * 1_000_003 + self.n_updates, self.device):
            mean, std = self.predict(**batch)
        valid = batch["valid"].unsqueeze(2).float()
        if std is None:
            error = (mean - batch["actions"]).pow(2)
        else:
            error = 0.5 * ((batch["actions"] - mean) / std).pow(2) + std.log() + 0.5 * math.log(2 * math.pi)
        loss = (error * valid).sum() / (valid.sum() * self.config.action_dim)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            nn.utils.clip_grad_norm_([*self.model.parameters(), *self.encoder.parameters()], self.config.grad_clip)
        self.optimizer.step()
        self.model.eval()
        self.n_updates += 1
        metrics = {"action_loss": loss.item()}
        self._guard(metrics, float("inf"))
        return metrics

    # ----- acting --------------------------------------------------------------------------------------
    @property
    def n_running(self) -> int:
        """Episodes whose context is live (begun and not yet done)."""
        return 0 if self._context is None else int(self._context["valid"].shape[0])

    def begin_episodes(self, n: int, target_return: float | None = None) -> None:
        """Start ``n`` episodes side by side with an empty context and R̂ = ``target_return`` (default
        ``self.target_return``, fixed by fit())."""
        target = self.target_return if target_return is None else float(target_return)
        if target is None:
            raise RuntimeError("no target return: fit() the agent first, or pass target_return=.")
        k, cfg = self.config.context_length, self.config
        self._context = {
            "observations": torch.zeros(n, k, cfg.obs_dim, device=self.device),
            "actions": torch.zeros(n, k, cfg.action_dim, device=self.device),
            "returns_to_go": torch.zeros(n, k, 1, device=self.device),
            "timesteps": torch.zeros(n, k, dtype=torch.long, device=self.device),
            "valid": torch.zeros(n, k, dtype=torch.bool, device=self.device),
        }
        self._return_to_go = torch.full((n,), target, device=self.device)
        self._timestep = torch.zeros(n, dtype=torch.long, device=self.device)
        self._awaiting_rewards = False

    def observe_rewards(self, rewards, done=None) -> None:
        """Record the rewards of the last actions (one per running episode, in ``act``'s row order):
        R̂ ← R̂ − r, t ← t + 1; episodes flagged ``done`` leave the context (the rows of the next ``act`` are
        the remaining episodes, in order)."""
        if not self._awaiting_rewards:
            raise RuntimeError("observe_rewards() follows act(): there is no action awaiting its reward.")
        rewards = torch.as_tensor(np.asarray(rewards, dtype=np.float32), device=self.device).reshape(-1)
        if rewards.shape[0] != self.n_running:
            raise ValueError(f"got {rewards.shape[0]} rewards for {self.n_running} running episodes.")
        self._return_to_go = self._return_to_go - rewards
        self._timestep = self._timestep + 1
        self._awaiting_rewards = False
        if done is not None:
            keep = ~torch.as_tensor(np.asarray(done, dtype=bool), device=self.device).reshape(-1)
            self._context = {key: value[keep] for key, value in self._context.items()}
            self._return_to_go, self._timestep = self._return_to_go[keep], self._timestep[keep]

    def _act(self, obs: torch.Tensor, n_candidates: int, temperature: float | None,
             generator: torch.Generator | None) -> torch.Tensor:
        """Append (R̂_t, s_t, t) to each running episode's context and read a_t at the new state token."""
        if n_candidates != 1:
            raise ValueError("the Decision Transformer has no critic to rank candidates by; use n_candidates=1.")
        if self.n_running == 0:
            self.begin_episodes(obs.shape[0])
        if self._awaiting_rewards:
            raise RuntimeError("act() called twice without observe_rewards(rewards, done) between: the Decision "
                               "Transformer's context needs each reward (dl.evaluate passes them).")
        if obs.shape[0] != self.n_running:
            raise ValueError(f"obs has {obs.shape[0]} rows but {self.n_running} episodes are running; pass one row "
                             "per running episode, or begin_episodes(n) to start new ones.")
        new = {"observations": obs, "actions": torch.zeros(obs.shape[0], self.config.action_dim, device=self.device),
               "returns_to_go": self._return_to_go.unsqueeze(1), "timesteps": self._timestep,
               "valid": torch.ones(obs.shape[0], dtype=torch.bool, device=self.device)}
        self._context = {key: torch.cat([value[:, 1:], new[key].unsqueeze(1)], dim=1) for key, value in self._context.items()}
        self.model.eval()
        mean, std = self.predict(**self._context)
        action = mean[:, -1]
        if std is not None:  # a draw of the Gaussian head, clipped to the box
            noise = randn(tuple(action.shape), generator, action.device, action.dtype)
            action = action + std[:, -1] * noise
            if self.config.max_action is not None:
                action = action.clamp(-self.config.max_action, self.config.max_action)
        self._context["actions"][:, -1] = action
        self._awaiting_rewards = True
        return action
