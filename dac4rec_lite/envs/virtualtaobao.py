"""VirtualTaobao (Shi et al., AAAI 2019) in the gymnasium API.

The simulator is not shipped with the kit. Install it from its authors' repository::

    git clone https://github.com/eyounx/VirtualTaobao
    pip install -e VirtualTaobao        # installs the package ``virtualTB`` (it needs the old ``gym`` package)

``dl.envs.VirtualTaobao()`` then builds ``virtualTB.envs.VirtualTB`` directly (``gym.make`` is never called)
and adapts its old-gym interface:

* ``reset()`` returns only the observation → gymnasium's ``(obs, info)``; ``reset(seed=s)`` seeds torch's and
  numpy's global generators, which virtualTB draws its users and their responses from.
* ``step`` returns 4 values, ``done`` possibly a torch bool tensor → ``(obs, reward, terminated, truncated,
  info)`` with ``terminated = bool(done)``, ``truncated = False`` (virtualTB ends an episode itself: the user
  leaves once the page indices add up past 100).
* An ended episode must be reset before the next ``step`` (virtualTB would silently continue with a new user);
  the adapter raises ``RuntimeError`` instead. An action outside the declared [−1, 1]^27 box, or with NaN, is
  refused (``ValueError``), as RecSim-v0 and Logged-v0 refuse theirs.
* On the step that ends an episode virtualTB has already drawn the NEXT user and zeroed the response part of
  its state; the adapter puts the ending user's profile back (the response stays zero: virtualTB has dropped
  it), so a terminal observation never shows another user. It does not enter TD targets: the step is terminal.

Observation scaling. virtualTB's state is 88 one-hot user features followed by the user's last response
(click count 0..29, purchase count 0..9, page index 1..500, the ranges of its response model), which is not
inside the [−1, 1] box it declares. The adapter divides the response by (29, 9, 500), so every feature lies
in [0, 1], and appends a valid flag (0 right after ``reset``, 1 once there is a response), in the kit's
``ObsLayout``: profile 88, window 1, step (click, pay, page, valid). Rewards (clicks on the page) and actions
(27 item-attribute weights in [−1, 1]) are passed through unchanged.
"""
from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from ..observation import ObsLayout

__all__ = ["VirtualTaobao", "RESPONSE_SCALE"]

USER_FEATURES = 88
ITEM_FEATURES = 27
RESPONSE_SCALE = np.array([29.0, 9.0, 500.0], dtype=np.float32)  # max click, pay, page of virtualTB's response model

_INSTALL = ("VirtualTaobao is not installed (no module 'virtualTB'). Install it from its authors' repository: "
            "git clone https://github.com/eyounx/VirtualTaobao && pip install -e VirtualTaobao")


def _as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32).reshape(-1)


class VirtualTaobao(gym.Env):
    """gymnasium adapter of ``virtualTB.envs.VirtualTB`` (see the module docstring for every conversion).

    ``simulator``: an object with virtualTB's interface to wrap instead of importing ``virtualTB`` (tests)."""

    metadata = {"render_modes": []}

    def __init__(self, simulator: Any | None = None) -> None:
        super().__init__()
        if simulator is None:
            try:
                module = importlib.import_module("virtualTB.envs")
            except ModuleNotFoundError as err:
                if err.name is not None and err.name.split(".")[0] == "virtualTB":
                    raise ImportError(_INSTALL) from err
                raise
            simulator = module.VirtualTB()
        self.simulator = simulator
        self.obs_layout = ObsLayout(profile_dim=USER_FEATURES, window=1, step_dim=len(RESPONSE_SCALE) + 1)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(self.obs_layout.obs_dim,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(ITEM_FEATURES,), dtype=np.float32)
        self._done = True
        self._profile = np.zeros(USER_FEATURES, dtype=np.float32)

    def _convert(self, state: Any, valid: float) -> np.ndarray:
        state = _as_numpy(state)
        if state.shape != (USER_FEATURES + len(RESPONSE_SCALE),):
            raise ValueError(f"virtualTB returned a state of shape {state.shape}, expected "
                             f"({USER_FEATURES + len(RESPONSE_SCALE)},): is this VirtualTaobao's VirtualTB?")
        response = state[USER_FEATURES:] / RESPONSE_SCALE
        return np.concatenate([state[:USER_FEATURES], response, [valid]]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:  # virtualTB draws from the global generators
            torch.manual_seed(seed)
            np.random.seed(seed)
        obs = self._convert(self.simulator.reset(), valid=0.0)
        self._profile = obs[:USER_FEATURES].copy()
        self._done = False
        return obs, {}

    def step(self, action):
        if self._done:
            raise RuntimeError("the episode has ended: call reset() before step() (virtualTB needs a reset after "
                               "every episode).")
        action = np.asarray(action)
        if action.dtype.kind not in "fiu" or action.size != ITEM_FEATURES:
            raise ValueError(f"the action must be {ITEM_FEATURES} item-attribute weights in [-1, 1], got shape "
                             f"{action.shape} ({action.dtype}).")
        action = action.astype(np.float32).reshape(ITEM_FEATURES)
        if not np.isfinite(action).all():
            raise ValueError("the action contains NaN or inf; check the policy that produced it.")
        if np.abs(action).max() > 1.0 + 1e-6:
            raise ValueError(f"the action must lie in [-1, 1]^{ITEM_FEATURES}, got max |a| = {np.abs(action).max():.3g}; "
                             "squash or clip it in the policy (the adapter never clips silently).")
        state, reward, done, info = self.simulator.step(action)
        terminated = bool(done.item() if isinstance(done, torch.Tensor) else done)
        obs = self._convert(state, valid=1.0)
        if terminated:  # virtualTB has already switched to the next user: keep the ending user's profile
            obs[:USER_FEATURES] = self._profile
        self._done = terminated
        reward = float(reward.item() if isinstance(reward, torch.Tensor) else reward)
        return obs, reward, terminated, False, dict(info or {})
