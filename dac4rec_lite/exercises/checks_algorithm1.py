"""Exercise 11 (notebook ex02_actor_critic): one whole update of Algorithm 1 (step 1), written from the agent's
public pieces and checked against ``agent.update`` on an agent built with the same seed: same numbers.

The student's function gets a small ``DAC4Rec`` and a batch, and uses only what the agent shows publicly:
``agent.critic`` / ``agent.target_critic`` (twin Q), ``agent.policy`` / ``agent.target_policy`` (diffusion policies),
``agent.td_target(next_state, reward, terminal)`` (y, with a′ drawn from the target policy on ``agent.generator``),
``agent.policy_loss(state, action)`` (L_d + λ L_q and its metrics), the two optimisers and ``agent.config``. The
agent of the exercise has the identity encoder (observations are states) and no gradient clipping, so an update
is: the critic's TD step and its target's soft update (lines 3–4), then the policy's step on L_d + λ L_q and its
target's soft update (lines 5–7). The check runs two updates in a row (a gradient left over from the first shows
in the second) and compares the losses and every weight of the four networks.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..agents import DAC4Rec
from ..critics import soft_update
from .cases import ACTION_DIM, HIDDEN, STATE_DIM, gen, normal, uniform
from .checks_actor_critic import agent_methods, flat_parameters
from .harness import Case, Exercise, Mistake

__all__ = ["ALGORITHM1_UPDATE", "exercise_agent"]

N_UPDATE_STEPS, UPDATE_BATCH = 5, 16


def exercise_agent(seed: int = 0, **overrides) -> DAC4Rec:
    """The small agent of the exercise: identity encoder, N = 5, no gradient clipping, fast learning rates and a
    large τ (so that one update moves every network visibly). The same seed gives the same agent."""
    config = dict(n_steps=N_UPDATE_STEPS, hidden_dim=HIDDEN, seed=seed, gamma=0.9, tau=0.1, q_weight=2.0,
                  actor_lr=1e-2, critic_lr=1e-2, grad_clip=0.0)
    config.update(overrides)
    return DAC4Rec(STATE_DIM, ACTION_DIM, **config)


def _batch(seed: int) -> dict[str, torch.Tensor]:
    terminals = (torch.rand((UPDATE_BATCH, 1), generator=gen(seed + 7)) < 0.3).float()
    terminals[0], terminals[1] = 0.0, 1.0  # some rows bootstrap, some end
    return {"observations": normal((UPDATE_BATCH, STATE_DIM), seed), "actions": uniform((UPDATE_BATCH, ACTION_DIM), seed + 1),
            "rewards": normal((UPDATE_BATCH, 1), seed + 2), "next_observations": normal((UPDATE_BATCH, STATE_DIM), seed + 3),
            "terminals": terminals}


def _update_case(seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        agent, batches = exercise_agent(seed), [_batch(seed * 10), _batch(seed * 10 + 5)]
        # As after some training, the targets lag behind their networks: a TD target computed with an online
        # network instead of its target then shows from the first update on.
        g = gen(seed + 99)
        with torch.no_grad():
            for p in agent.target_policy.parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.3)
            for p in agent.target_critic.parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
        return Case((agent, batches[0]), info, {"agent": agent, "batches": batches})
    return make


def _two_updates(fn: Callable, case: Case):
    """The student's update on the first batch, then (if that returned its two losses) on the second."""
    agent, batches = case.extra["agent"], case.extra["batches"]
    out = fn(agent, batches[0])
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2,):
        return out
    return fn(agent, batches[1])


def _reference(case: Case) -> torch.Tensor:
    agent = case.extra["agent"]
    for batch in case.extra["batches"]:
        metrics = agent.update(batch)
    return torch.tensor([metrics["critic_loss"], metrics["policy_loss"]])


def _probe(out: torch.Tensor, case: Case) -> dict[str, object]:
    agent = case.extra["agent"]
    return {"losses": out.detach(), **{name: flat_parameters(getattr(agent, name))
                                       for name in ("critic", "target_critic", "policy", "target_policy")}}


def _update(agent, batch, *, policy_first=False, target_critic=True, target_policy=True, next_key="next_observations",
            twins=2, zero_grad=("critic", "actor"), soft="after"):
    cfg = agent.config
    state, action = batch["observations"], batch["actions"]

    def move_target(target, source):
        if soft in ("after", "before"):
            soft_update(target, source, cfg.tau)
        elif soft == "swapped":
            soft_update(target, source, 1 - cfg.tau)
        elif soft == "hard":
            soft_update(target, source, 1.0)

    def step(optimizer, loss, name, target, source):
        if soft == "before":
            move_target(target, source)
        if name in zero_grad:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if soft != "before":
            move_target(target, source)

    def critic_step():
        with torch.no_grad():
            next_state = batch[next_key]
            policy = agent.target_policy if target_policy else agent.policy
            critic = agent.target_critic if target_critic else agent.critic
            next_action = policy.sample(next_state, generator=agent.generator)
            y = batch["rewards"] + cfg.gamma * (1 - batch["terminals"]) * torch.min(*critic(next_state, next_action))
        q1, q2 = agent.critic(state, action)
        loss = F.mse_loss(q1, y) + (F.mse_loss(q2, y) if twins == 2 else 0.0)
        step(agent.critic_optimizer, loss, "critic", agent.target_critic, agent.critic)
        return loss

    def policy_step():
        loss, _ = agent.policy_loss(state, action)
        step(agent.actor_optimizer, loss, "actor", agent.target_policy, agent.policy)
        return loss

    if policy_first:
        policy_loss = policy_step()
        critic_loss = critic_step()
    else:
        critic_loss = critic_step()
        policy_loss = policy_step()
    return torch.stack([critic_loss, policy_loss]).detach()


def _variant(**kwargs) -> Callable:
    return lambda agent, batch: _update(agent, batch, **kwargs)


ALGORITHM1_UPDATE = Exercise(
    name="algorithm1_update",
    equation="Algorithm 1, lines 2–7: critic TD step and soft update, then policy step on L_d + λ L_q and soft update",
    signature="algorithm1_update(agent, batch) -> losses",
    cases=[
        _update_case(0, "two updates of a small DAC4Rec (N = 5, τ = 0.1, λ = 2, targets lagging), batches of 16"),
        _update_case(1, "two updates, another seed"),
    ],
    reference=_reference,
    expected_shape=lambda case: (2,),
    probe=_probe,
    call=_two_updates,
    mistakes=[
        Mistake("policy_first", "You updated the policy before the critic. Algorithm 1 takes the critic's TD step "
                "first (lines 3–4), then improves the policy against the critic it has just updated (lines 5–7).",
                _variant(policy_first=True)),
        Mistake("online_critic_in_target", "The TD target used the online critic. y = r + γ (1 − terminal) "
                "min Q′(s′, a′) is computed with the *target* critic φ′ (agent.target_critic or agent.td_target), so "
                "that the label does not move with every step of the critic it trains.", _variant(target_critic=False)),
        Mistake("online_policy_in_target", "The next action a′ came from the online policy. Line 3 draws "
                "a′ ~ μ_θ′(·|s′) from the *target* policy (agent.target_policy, as agent.td_target does).",
                _variant(target_policy=False)),
        Mistake("state_for_next_state", "The TD target was computed at s, not at the next state s′ "
                "(batch['next_observations']).", _variant(next_key="observations")),
        Mistake("one_twin", "Only Q₁ was trained. Both twins regress on the same target: "
                "mse(Q₁(s, a), y) + mse(Q₂(s, a), y).", _variant(twins=1)),
        Mistake("no_zero_grad", "A gradient from the previous update was still there (the first update is right, the "
                "second is not): call optimizer.zero_grad() before each loss.backward(), for both optimisers.",
                _variant(zero_grad=())),
        Mistake("no_zero_grad", "The critic's gradient from the previous update was still there: call "
                "agent.critic_optimizer.zero_grad() before the critic's loss.backward().", _variant(zero_grad=("actor",))),
        Mistake("no_zero_grad", "The policy's gradient from the previous update was still there: call "
                "agent.actor_optimizer.zero_grad() before the policy's loss.backward().", _variant(zero_grad=("critic",))),
        Mistake("no_soft_update", "The target networks never moved: after each optimiser step, soft-update its target, "
                "θ′ ← τ θ + (1 − τ) θ′ with τ = agent.config.tau (line 7).", _variant(soft="none")),
        Mistake("soft_update_before_step", "You soft-updated the targets before the optimiser steps, so they followed "
                "the old weights. Step first, then move the target towards the new weights.", _variant(soft="before")),
        Mistake("tau_swapped", "The soft update's τ and 1 − τ are swapped: the target should move a fraction τ towards "
                "the online network, not 1 − τ.", _variant(soft="swapped")),
        Mistake("hard_update", "You copied the online networks into the targets (τ = 1). Use agent.config.tau.",
                _variant(soft="hard")),
    ],
    field_words={"losses": "losses (critic, policy)", "critic": "critic weights φ", "target_critic": "target critic φ′",
                 "policy": "policy weights θ", "target_policy": "target policy θ′"},
    forbidden=lambda: agent_methods("update", "update_critic", "update_policy", "policy_step", "fit"),
    write_yourself="Write the update yourself from the agent's public pieces (td_target, critic, policy_loss, the "
                   "optimisers, the target networks)",
)
