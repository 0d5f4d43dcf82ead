"""Notebook ex02's exercises (action_approximation, td_target, q_loss, awr_weight, soft_update,
algorithm1_update): every typical wrong answer, written here as a student would write it (independently of the
checkers' catalogue), fails with its own diagnosis, and the cases are built so that the mistakes can show."""
from __future__ import annotations

import torch
from exercise_support import fails

from dac4rec_lite import exercises as ex

torch.set_num_threads(1)


# ----- 4. action_approximation ----------------------------------------------------------------------------

def test_action_approximation_mistakes():
    def approx(eps_model, state, action, i, noise, schedule, *, table="alphas_cumprod", shift=1, sign=-1, true=False):
        ab = getattr(schedule, table)[i - shift].unsqueeze(1)
        a_i = ab.sqrt() * action + (1 - ab).sqrt() * noise
        eps = noise if true else eps_model(state, a_i, i)
        return (a_i + sign * (1 - ab).sqrt() * eps) / ab.sqrt()

    def true_noise(*args):
        return approx(*args, true=True)

    def sign(*args):
        return approx(*args, sign=+1)

    def alpha(*args):
        return approx(*args, table="alphas")

    def zero_based(*args):
        return approx(*args, shift=0)

    def clipped(*args):
        return approx(*args).clamp(-1, 1)

    def detached(*args):
        return approx(*args).detach()

    def no_divide(eps_model, state, action, i, noise, schedule):
        ab = schedule.alphas_cumprod[i - 1].unsqueeze(1)
        a_i = ab.sqrt() * action + (1 - ab).sqrt() * noise
        return a_i - (1 - ab).sqrt() * eps_model(state, a_i, i)

    fails("action_approximation", true_noise, "true_noise", "instead of the network's prediction")
    fails("action_approximation", sign, "eps_sign", "sign of ε_θ is flipped")
    fails("action_approximation", alpha, "alpha_for_alpha_bar", "one-step α_i")
    fails("action_approximation", zero_based, "zero_based", "1-based")
    fails("action_approximation", clipped, "clipped", "Don't clip here")
    fails("action_approximation", detached, "no_grad", "carries no gradient")
    fails("action_approximation", no_divide, "no_divide", "forgot to divide by √ᾱ_i")


# ----- 5. td_target ---------------------------------------------------------------------------------------

def test_td_target_mistakes():
    def target(reward, terminal, next_state, next_action, target_critic, gamma, combine=torch.min, mask=True):
        with torch.no_grad():
            q1, q2 = target_critic(next_state, next_action)
            q = combine(q1, q2)
            return reward + gamma * ((1 - terminal) if mask else 1) * q

    def max_of_twins(*args):
        return target(*args, combine=torch.max)

    def no_mask(*args):
        return target(*args, mask=False)

    def average(*args):
        return target(*args, combine=lambda a, b: (a + b) / 2)

    def not_detached(reward, terminal, next_state, next_action, target_critic, gamma):
        q1, q2 = target_critic(next_state, next_action)
        return reward + gamma * (1 - terminal) * torch.min(q1, q2)

    def inverted(reward, terminal, next_state, next_action, target_critic, gamma):
        with torch.no_grad():
            return reward + gamma * terminal * torch.min(*target_critic(next_state, next_action))

    def squeezed(reward, terminal, next_state, next_action, target_critic, gamma):
        with torch.no_grad():
            return reward.squeeze(1) + gamma * (1 - terminal) * torch.min(*target_critic(next_state, next_action))

    fails("td_target", max_of_twins, "max_of_twins", "min(Q′₁, Q′₂)", "over-estimates")
    fails("td_target", no_mask, "no_terminal_mask", "no (1 − terminal) factor")
    fails("td_target", average, "mean_of_twins", "averaged the twin critics")
    fails("td_target", not_detached, "target_not_detached", "carries a gradient into the target network")
    fails("td_target", inverted, "terminal_mask_inverted", "mask is inverted")
    fails("td_target", squeezed, "shape", "(B, B) square")


# ----- 6. q_loss ------------------------------------------------------------------------------------------

def test_q_loss_mistakes():
    def not_detached(critic, state, a0_hat):
        q = torch.min(*critic(state, a0_hat))
        return -q.mean() / q.abs().mean()

    def max_of_twins(critic, state, a0_hat):
        q = torch.max(*critic(state, a0_hat))
        return -q.mean() / q.abs().mean().detach()

    def wrong_sign(critic, state, a0_hat):
        q = torch.min(*critic(state, a0_hat))
        return q.mean() / q.abs().mean().detach()

    def raw(critic, state, a0_hat):
        return -torch.min(*critic(state, a0_hat)).mean()

    def mean_q(critic, state, a0_hat):
        q = torch.min(*critic(state, a0_hat))
        return -q.mean() / q.mean().detach()

    def detached_action(critic, state, a0_hat):
        q = torch.min(*critic(state, a0_hat.detach()))
        return -q.mean() / q.abs().mean().detach()

    fails("q_loss", not_detached, "normaliser_not_detached", "normaliser mean|Q| is not detached", ".detach()")
    fails("q_loss", max_of_twins, "max_of_twins", "pessimistic")
    fails("q_loss", wrong_sign, "loss_sign", "sign is flipped")
    fails("q_loss", raw, "not_normalised", "not normalised")
    fails("q_loss", mean_q, "normaliser_mean_q", "mean of |Q|, not the mean of Q")
    fails("q_loss", detached_action, "action_detached", "No gradient reaches â^0")


# ----- 12. awr_weight -------------------------------------------------------------------------------------

def _awr(q1, q2, v, temperature, max_weight, *, combine=torch.min, sign=1, unit="abs", clip="before", norm="mean",
         temp_op="divide"):
    advantage = sign * (combine(q1, q2) - v)
    scale = {"abs": advantage.abs().mean(), "mean": advantage.mean(), "none": 1.0}[unit]
    weights = torch.exp(advantage / (temperature * scale) if temp_op == "divide" else advantage * temperature / scale)
    if clip == "before":
        weights = weights.clamp(max=max_weight)
    weights = {"mean": weights / weights.mean(), "sum": weights / weights.sum(), "none": weights}[norm]
    return weights.clamp(max=max_weight) if clip == "after" else weights


def test_awr_weight_mistakes():
    fails("awr_weight", lambda *a: _awr(*a, combine=torch.max), "max_of_twins", "min(Q₁, Q₂)")
    fails("awr_weight", lambda *a: _awr(*a, combine=lambda x, y: (x + y) / 2), "mean_of_twins", "averaged")
    fails("awr_weight", lambda *a: _awr(*a, combine=lambda x, y: x), "single_critic", "only Q₁")
    fails("awr_weight", lambda *a: _awr(*a, sign=-1), "advantage_sign", "A = Q − V")
    fails("awr_weight", lambda *a: _awr(*a, unit="none"), "temperature_not_scaled", "units of the batch's mean |A|")
    fails("awr_weight", lambda *a: _awr(*a, unit="mean"), "mean_not_abs", "mean of |A|")
    fails("awr_weight", lambda *a: _awr(*a, temp_op="multiply"), "temperature_multiplied", "Divide by the temperature")
    fails("awr_weight", lambda *a: _awr(*a, clip="none"), "no_clip", "Clip the exponential")
    fails("awr_weight", lambda *a: _awr(*a, clip="after"), "clip_after_normalising", "Clip first, then normalise")
    fails("awr_weight", lambda *a: _awr(*a, norm="none"), "not_normalised", "mean 1")
    fails("awr_weight", lambda *a: _awr(*a, norm="sum"), "normalised_to_sum", "not to sum 1")


def test_awr_cases_make_the_twins_cross_and_the_clip_bind():
    """Without crossing twins a single-critic answer could pass; without a binding clip, a missing clip could."""
    clipped = []
    for make in ex.EXERCISES["awr_weight"].cases:
        q1, q2, v, temperature, max_weight = make().args
        assert 0 < float((q1 < q2).float().mean()) < 1
        advantage = torch.min(q1, q2) - v
        clipped.append(bool((torch.exp(advantage / (temperature * advantage.abs().mean())) > max_weight).any()))
    assert any(clipped) and not all(clipped)


# ----- 13. soft_update ------------------------------------------------------------------------------------

def test_soft_update_mistakes():
    def swapped(target, source, tau):
        with torch.no_grad():
            for t, s in zip(target.parameters(), source.parameters()):
                t.copy_((1 - tau) * s + tau * t)

    def hard(target, source, tau):
        target.load_state_dict(source.state_dict())

    def source_moved(target, source, tau):
        with torch.no_grad():
            for t, s in zip(target.parameters(), source.parameters()):
                s.mul_(1 - tau).add_(tau * t)

    def rebinding(target, source, tau):
        for t, s in zip(target.parameters(), source.parameters()):
            t = tau * s + (1 - tau) * t  # noqa: F841 (the mistake: a new tensor bound to the loop name)

    def recorded(target, source, tau):
        for t, s in zip(target.parameters(), source.parameters()):
            t.copy_(tau * s + (1 - tau) * t)

    def into_trainable(target, source, tau):
        target.requires_grad_(True)
        for t, s in zip(target.parameters(), source.parameters()):
            t.mul_(1 - tau).add_(tau * s)

    fails("soft_update", swapped, "tau_swapped", "swapped")
    fails("soft_update", hard, "hard_copy", "copied the online weights")
    fails("soft_update", source_moved, "source_moved", "online network must not change")
    fails("soft_update", rebinding, "not_in_place", "did not change", "only rebinds the name")
    fails("soft_update", recorded, "no_no_grad", "recorded by autograd")
    fails("soft_update", into_trainable, "leaf_in_place", "torch.no_grad()")


def test_soft_update_generic_reports():
    def blank(target, source, tau):
        raise NotImplementedError

    def raises(target, source, tau):
        raise KeyError("oops")

    assert ex.check_soft_update(blank).reason == "not_implemented"
    fails("soft_update", raises, "error", "raised KeyError", "It happened in your code at line")
    fails("soft_update", lambda target, source: None, "signature", "soft_update(target, source, tau)")


# ----- 14. algorithm1_update ------------------------------------------------------------------------------

def _update(agent, batch, *, order=("critic", "policy"), target_critic=True, target_policy=True, next_key="next_observations",
            twins=2, clear=("critic", "policy"), soft="after"):
    """One update as a student writes it, with the mistakes as switches (independent of the checker's variants)."""
    s, a = batch["observations"], batch["actions"]
    losses = {}

    def polyak(target, source, tau):
        with torch.no_grad():
            for t, p in zip(target.parameters(), source.parameters()):
                t.mul_(1 - tau).add_(tau * p)

    def follow(target, source):
        tau = {"after": agent.config.tau, "before": agent.config.tau, "swapped": 1 - agent.config.tau, "hard": 1.0}
        if soft in tau:
            polyak(target, source, tau[soft])

    for half in order:
        if half == "critic":
            with torch.no_grad():
                s2 = batch[next_key]
                a2 = (agent.target_policy if target_policy else agent.policy).sample(s2, generator=agent.generator)
                q1n, q2n = (agent.target_critic if target_critic else agent.critic)(s2, a2)
                y = batch["rewards"] + agent.config.gamma * (1 - batch["terminals"]) * torch.min(q1n, q2n)
            q1, q2 = agent.critic(s, a)
            loss = ((q1 - y) ** 2).mean() + (((q2 - y) ** 2).mean() if twins == 2 else 0)
            optimizer, target, source = agent.critic_optimizer, agent.target_critic, agent.critic
        else:
            loss, _ = agent.policy_loss(s, a)
            optimizer, target, source = agent.actor_optimizer, agent.target_policy, agent.policy
        if soft == "before":
            follow(target, source)
        if half in clear:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if soft != "before":
            follow(target, source)
        losses[half] = loss.detach()
    return torch.stack([losses["critic"], losses["policy"]])


def test_algorithm1_update_written_independently_passes():
    assert ex.check_algorithm1_update(_update, strict=True)


def test_algorithm1_update_mistakes():
    fails("algorithm1_update", lambda ag, b: _update(ag, b, order=("policy", "critic")), "policy_first", "critic's TD step first")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, target_critic=False), "online_critic_in_target",
          "*target* critic")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, target_policy=False), "online_policy_in_target",
          "*target* policy")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, next_key="observations"), "state_for_next_state", "s′")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, twins=1), "one_twin", "Only Q₁ was trained")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, clear=()), "no_zero_grad", "for both optimisers")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, clear=("policy",)), "no_zero_grad", "critic_optimizer.zero_grad()")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, clear=("critic",)), "no_zero_grad", "actor_optimizer.zero_grad()")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, soft="none"), "no_soft_update", "never moved")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, soft="before"), "soft_update_before_step", "before the optimiser")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, soft="swapped"), "tau_swapped", "swapped")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, soft="hard"), "hard_update", "agent.config.tau")


def test_algorithm1_update_generic_reports():
    def blank(agent, batch):
        raise NotImplementedError

    assert ex.check_algorithm1_update(blank).reason == "not_implemented"
    fails("algorithm1_update", lambda agent, batch: None, "returned_none", "forget the `return`")
    fails("algorithm1_update", lambda agent, batch: _update(agent, batch)[0], "shape", "expected (2,)")
    fails("algorithm1_update", lambda agent, batch: _update(agent, batch) * 1.001, "wrong_value", "losses")


def test_algorithm1_cases_bootstrap_and_end():
    """Every batch mixes terminal and non-terminal rows, so the TD target both bootstraps and stops (and the agent's
    all-terminal shortcut, which draws no a′, is never taken)."""
    for make in ex.EXERCISES["algorithm1_update"].cases:
        for batch in make().extra["batches"]:
            assert 0 < float(batch["terminals"].mean()) < 1


def test_critic_cases_make_the_twins_cross_and_q_take_both_signs():
    """Without this, min(Q1, Q2) would equal one twin everywhere and a single-critic answer could pass."""
    from dac4rec_lite.exercises import checks

    for make in checks.TD_TARGET.cases:
        _, _, next_state, next_action, critic, _ = make().args
        q1, q2 = critic(next_state, next_action)
        assert 0 < float((q1 < q2).float().mean()) < 1
    signs = []
    for make in checks.Q_LOSS.cases:
        critic, state, approx = make().args
        q1, q2 = critic(state, approx)
        assert 0 < float((q1 < q2).float().mean()) < 1
        signs.append(float((torch.min(q1, q2) > 0).float().mean()))
    assert 0 < signs[0] < 1 and signs[1] == 1.0
