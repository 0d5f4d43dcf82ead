"""Exercises 6–10 (notebook ex02_actor_critic): the action approximation, the TD target, the Q loss, the AWR
weight g and the soft update of the target networks. (Exercise 11, one whole update, is ``checks_algorithm1``.)

Every reference calls the core (``DiffusionPolicy``, ``energy.q_min_flat``, ``DAC4Rec.advantage_weights``,
``critics.soft_update``); the mistakes are written the way a student writes them, so that a match is a diagnosis.
"""
from __future__ import annotations

import sys
from typing import Callable

import torch

from .. import agents
from ..agents import DAC4Rec
from ..critics import TwinQ, soft_update
from ..diffusion import DiffusionPolicy, VPSchedule
from ..energy import q_min_flat
from .cases import (
    ACTION_DIM, BATCH, GRAD_WORDS, HIDDEN, NO_GRAD, NO_LAST_STEP, N_STEPS, STATE_DIM, WITH_ENDS, ZERO_BASED,
    CheckedCritic, column_hint, denoise_case, flat_grad, gen, grad_probe, index_error_hint,
    noised, normal, policy_reference, uniform,
)
from .harness import Case, Exercise, Mistake

__all__ = ["ACTION_APPROXIMATION", "TD_TARGET", "Q_LOSS", "AWR_WEIGHT", "SOFT_UPDATE", "agent_methods", "flat_parameters"]


def agent_methods(*names: str) -> list[tuple[str, Callable]]:
    """(``"DAC4Rec.td_target"``, function) for every class of the kit's agents package (the agents and the parts
    they are built from, whatever module holds them) that has a method of one of these names."""
    classes = [getattr(agents, n) for n in getattr(agents, "__all__", []) if isinstance(getattr(agents, n, None), type)]
    for module_name, module in list(sys.modules.items()):
        if module_name.startswith(agents.__name__ + ".") and module is not None:
            classes += [c for c in vars(module).values() if isinstance(c, type) and c.__module__ == module_name]
    found = []
    for cls in dict.fromkeys(classes):  # each class once, the public agents first
        found += [(f"{cls.__name__}.{name}", getattr(cls, name)) for name in names if callable(getattr(cls, name, None))]
    return found


def flat_parameters(module: torch.nn.Module) -> torch.Tensor:
    """Every weight of ``module`` in one detached vector."""
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


# ===== 4. action_approximation (Eq. 13–14) =============================================================

def _approx(eps_model, state, action, i, noise, schedule, *, table="alphas_cumprod", shift=1, sign=-1.0,
            true_noise=False, clip=False, sqrt=True, divide=True):
    a_i = noised(action, i, noise, schedule, table, shift)
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
        denoise_case(NO_LAST_STEP, BATCH, 0, "7 states, steps 1..9"),
        denoise_case(WITH_ENDS, BATCH, 1, "7 states, steps 1 and N = 10 included"),
        denoise_case(None, 32, 2, "32 states, random steps"),
    ],
    reference=lambda case: policy_reference(case)[2],
    expected_shape=lambda case: tuple(case.args[2].shape),
    probe=grad_probe,
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
    shape_hint=column_hint,
    error_hint=index_error_hint,
    field_words=GRAD_WORDS,
    forbidden=lambda: [("dl.DiffusionPolicy.approximate_action", DiffusionPolicy.approximate_action),
                       ("DiffusionPolicy.denoise_dataset_action", getattr(DiffusionPolicy, "denoise_dataset_action", None)),
                       ("dl.VPSchedule.predict_a0", VPSchedule.predict_a0),
                       ("dl.VPSchedule.q_sample", VPSchedule.q_sample)],
)



# ===== 5. td_target (Eq. 20, clipped double Q) =========================================================

def _td_case(terminals: list[int] | None, batch: int, gamma: float, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        if terminals is None:
            done = (torch.rand((batch, 1), generator=gen(seed + 7)) < 0.3).float()
        else:
            done = torch.tensor(terminals, dtype=torch.float32).reshape(batch, 1)
        args = (normal((batch, 1), seed), done, normal((batch, STATE_DIM), seed + 1),
                uniform((batch, ACTION_DIM), seed + 2), CheckedCritic(), gamma)
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
    forbidden=lambda: agent_methods("td_target"),
)


@torch.no_grad()
def _td_reference(reward, terminal, next_state, next_action, target_critic, gamma):
    """DAC4Rec.td_target (agents/dac4rec.py) for a given next action: r + γ (1 − terminal) min(Q′₁, Q′₂)."""
    return reward + gamma * (1 - terminal) * q_min_flat(target_critic, next_state, next_action).unsqueeze(1)


# ===== 6. q_loss (Eq. 15, normalised as in DAC4Rec.policy_loss) ========================================

def _q_loss_case(offset: float, batch: int, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        approx = uniform((batch, ACTION_DIM), seed).requires_grad_(True)
        return Case((CheckedCritic(seed=3, offset=offset), normal((batch, STATE_DIM), seed + 1), approx), info,
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
    fields = flat_grad(out, [case.extra["approx"]])
    return {"value": out, "has_grad": fields["has_grad"], "grad_action": fields["grad"]}


def _q_loss_reference(case: Case) -> torch.Tensor:
    """The direct L_q of DAC4Rec.policy_loss (agents/dac4rec.py): −mean Q(s, â⁰) / mean|Q| (normaliser detached)."""
    critic, state, approx = case.args
    q = q_min_flat(critic, state, approx).unsqueeze(1)
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
    forbidden=lambda: agent_methods("direct_q_loss", "policy_loss"),
)


# ===== 9. awr_weight (g of Eq. 17–19, as the agents weigh dataset actions) ===============================

def _awr_case(temperature: float, max_weight: float, batch: int, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        agent = DAC4Rec(STATE_DIM, ACTION_DIM, n_steps=N_STEPS, hidden_dim=HIDDEN, policy_improvement="awr", seed=seed,
                        awr_temperature=temperature, awr_max_weight=max_weight)
        g = gen(seed + 50)
        with torch.no_grad():  # spread the fresh networks out, so that the twins cross and advantages differ
            for p in [*agent.target_critic.parameters(), *agent.value.parameters()]:
                p.copy_(torch.randn(p.shape, generator=g) * 0.6)
            state, action = normal((batch, STATE_DIM), seed), uniform((batch, ACTION_DIM), seed + 1)
            q1, q2 = agent.target_critic(state, action)
            v = agent.value(state)
        return Case((q1, q2, v, temperature, max_weight), info, {"agent": agent, "state": state, "action": action})
    return make


def _awr_reference(case: Case) -> torch.Tensor:
    return case.extra["agent"].advantage_weights(case.extra["state"], case.extra["action"])


def _awr(q1, q2, v, temperature, max_weight, *, combine="min", sign=1.0, scale="abs", clip="before", norm="mean",
         temp="divide"):
    q = {"min": torch.min(q1, q2), "max": torch.max(q1, q2), "mean": (q1 + q2) / 2, "q1": q1}[combine]
    advantage = sign * (q - v)
    unit = {"abs": advantage.abs().mean().clamp(min=1e-6), "mean": advantage.mean(), "none": torch.tensor(1.0)}[scale]
    exponent = advantage / (temperature * unit) if temp == "divide" else advantage * temperature / unit
    w = torch.exp(exponent)
    if clip == "before":
        w = w.clamp(max=max_weight)
    w = {"mean": w / w.mean(), "sum": w / w.sum(), "none": w}[norm]
    return w.clamp(max=max_weight) if clip == "after" else w


def _awr_variant(**kwargs) -> Callable:
    return lambda *args: _awr(*args, **kwargs)


AWR_WEIGHT = Exercise(
    name="awr_weight",
    equation="Eq. 17–19's g: A = min(Q₁, Q₂) − V, w = min(exp(A / (T · mean|A|)), max_weight), normalised to mean 1",
    signature="awr_weight(q1, q2, v, temperature, max_weight) -> weights",
    cases=[
        _awr_case(0.2, 5.0, 32, 1, "32 actions, T = 0.2, clip at 5 (some weights are clipped)"),
        _awr_case(0.3, 100.0, BATCH, 0, "7 actions, T = 0.3, clip at 100"),
        _awr_case(1.0, 100.0, 32, 2, "32 actions, T = 1"),
    ],
    reference=_awr_reference,
    expected_shape=lambda case: tuple(case.args[2].shape),
    probe=lambda out, case: {"value": out},
    mistakes=[
        Mistake("max_of_twins", "You took the max of the twin critics; the advantage uses the pessimistic min(Q₁, Q₂), "
                "as the TD target does.", _awr_variant(combine="max")),
        Mistake("mean_of_twins", "You averaged the twin critics; the advantage uses their min(Q₁, Q₂).",
                _awr_variant(combine="mean")),
        Mistake("single_critic", "You used only Q₁; use min(Q₁, Q₂) of both twins.", _awr_variant(combine="q1")),
        Mistake("advantage_sign", "The advantage is A = Q − V (how much better than the baseline the action is), not "
                "V − Q: with the sign flipped the policy imitates the worst actions most.", _awr_variant(sign=-1.0)),
        Mistake("temperature_not_scaled", "The temperature is in units of the batch's mean |A|: exp(A / (T · mean|A|)). "
                "With exp(A / T) the same T is sharp for large rewards and flat for small ones.",
                _awr_variant(scale="none")),
        Mistake("mean_not_abs", "Scale by the mean of |A|, not the mean of A: A − its own baseline averages near 0 (or "
                "below), which blows the exponent up or flips its sign.", _awr_variant(scale="mean")),
        Mistake("temperature_multiplied", "Divide by the temperature, don't multiply: a small T must make the weights "
                "sharp (nearly all weight on the best actions).", _awr_variant(temp="multiply")),
        Mistake("no_clip", "Clip the exponential at max_weight (.clamp(max=max_weight)) before normalising: one outlier "
                "action must not take all the weight.", _awr_variant(clip="none")),
        Mistake("clip_after_normalising", "Clip first, then normalise: clipping after the division by the mean "
                "leaves weights whose mean is no longer 1.", _awr_variant(clip="after")),
        Mistake("not_normalised", "Normalise the weights to mean 1 (w / w.mean()), so that λ (q_weight) keeps its "
                "meaning whatever T is.", _awr_variant(norm="none")),
        Mistake("normalised_to_sum", "Normalise to mean 1 (w / w.mean()), not to sum 1: with sum 1 the weights shrink "
                "with the batch size.", _awr_variant(norm="sum")),
    ],
    field_words={"value": "weights"},
    forbidden=lambda: agent_methods("advantage_weights"),
)


# ===== 10. soft_update (Algorithm 1, "update target networks") ===========================================

def _soft_case(tau: float, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            source, target = TwinQ(STATE_DIM, ACTION_DIM, HIDDEN), TwinQ(STATE_DIM, ACTION_DIM, HIDDEN)
        target.requires_grad_(False)  # as every target network of the kit
        return Case((target, source, tau), info, {"n_target": flat_parameters(target).numel()})
    return make


def _soft_call(fn: Callable, case: Case):
    """Run the in-place update, then judge the two networks' weights (and whether the target now needs grad)."""
    target, source, _ = case.args
    fn(*case.args)
    needs_grad = any(p.requires_grad for p in target.parameters())
    return torch.cat([flat_parameters(target), flat_parameters(source), torch.tensor([float(needs_grad)])])


def _soft_probe(out: torch.Tensor, case: Case) -> dict[str, object]:
    n = case.extra["n_target"]
    return {"target": out[:n], "source": out[n:-1], "needs_grad": bool(out[-1])}


def _soft(target, source, tau, *, weight="tau", move="target", no_grad=True):
    w = {"tau": tau, "swapped": 1 - tau, "hard": 1.0, "none": 0.0}[weight]
    with torch.set_grad_enabled(not no_grad):
        for t, s in zip(target.parameters(), source.parameters()):
            if move == "target":
                t.copy_(w * s + (1 - w) * t)
            else:
                s.copy_(w * t + (1 - w) * s)


def _soft_variant(**kwargs) -> Callable:
    return lambda *args: _soft(*args, **kwargs)


SOFT_UPDATE = Exercise(
    name="soft_update", equation="Polyak averaging: θ′ ← τ θ + (1 − τ) θ′, in place, for every weight of the target",
    signature="soft_update(target, source, tau) -> None",
    cases=[
        _soft_case(0.005, 0, "twin critics, τ = 0.005 (the kit's default)"),
        _soft_case(0.3, 1, "twin critics, τ = 0.3"),
        _soft_case(1.0, 2, "twin critics, τ = 1 (a copy)"),
    ],
    reference=lambda case: _soft_call(soft_update, case),
    expected_shape=lambda case: (2 * case.extra["n_target"] + 1,),
    probe=_soft_probe,
    call=_soft_call,
    mistakes=[
        Mistake("tau_swapped", "τ and 1 − τ are swapped: the target keeps 1 − τ of itself and takes τ of the online "
                "network (θ′ ← τ θ + (1 − τ) θ′); with τ = 0.005 it should move only a little.",
                _soft_variant(weight="swapped")),
        Mistake("hard_copy", "You copied the online weights into the target (θ′ ← θ). A soft update moves the target "
                "only a fraction τ of the way, so the TD target changes slowly.", _soft_variant(weight="hard")),
        Mistake("source_moved", "You moved the online network towards the target. The target follows the online "
                "network, θ′ ← τ θ + (1 − τ) θ′, and the online network must not change.", _soft_variant(move="source")),
        Mistake("not_in_place", "The target network did not change. Assigning to a loop variable (t = τ s + (1 − τ) t) "
                "only rebinds the name: write into the parameter itself, t.copy_(...) or t.lerp_(s, τ), under "
                "torch.no_grad().", _soft_variant(weight="none")),
        Mistake("no_no_grad", "The values are right, but the update was recorded by autograd: the target's weights now "
                "require grad and carry a graph. Do the update under torch.no_grad().", _soft_variant(no_grad=False)),
    ],
    error_hint=lambda err, case: (("leaf_in_place", "An in-place update of a weight that requires grad must run under "
                                   "torch.no_grad(): wrap the loop in `with torch.no_grad():`.")
                                  if "leaf Variable that requires grad" in str(err) else None),
    field_words={"target": "target weights θ′", "source": "online weights θ (they must not change)",
                 "needs_grad": "requires_grad of the target (it must stay False)"},
    forbidden=lambda: [("dl.soft_update", soft_update)],
)
