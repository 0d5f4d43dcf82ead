"""DDPG, TD3 and SAC, each with diffusion=False/True and energy=False/True (paper Sec. 4.7).

Mechanics first (TD targets recomputed by hand, who trains what, TD3's delay, SAC's temperature, Eq. 21
selection, checkpoints); then correctness on a fully covered 2-D bandit whose behaviour is uniform over the
whole action square and whose reward is a smooth bump: every actor-critic variant must put ≥ 80 % of its
actions in the bump's best region (the disc of radius 0.25 around the peak; the uniform behaviour puts 4.9 %
there), so there is no extrapolation error for a bug to hide behind. Last (slow), every +Diffusion variant on
the simulator's quick preset must beat random by ≥ 20 % of the gap between random and the noisy expert.

Settings (single-threaded, fixed seeds), measured on a busy 2-core CPU:
* bandit: 800 updates of batch 256, hidden 64, critic_lr 3e-3. Plain actors actor_lr 1e-3 (at 3e-3 the tanh
  of DDPG/TD3 saturates in a box corner before the critic has found the bump, where its gradient vanishes:
  0 % in the region); diffusion actors N = 10, q_weight 20, actor_lr 1e-2 (q_weight 5: 47–62 %, the uniform
  behaviour term still spreads the samples). Measured at seeds 0 and 1: every variant 99.8–100 %, and the
  q_weight = 0 control (diffusion BC) ≈ 5 %. About 40 s.
* simulator: see ``SIM_SETTINGS`` below; numbers in ``docs/backbones.md``.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import dac4rec_lite as dl
from helpers import EVAL_EPISODES, EVAL_SEED
from dac4rec_lite.agents.backbones import DeterministicActor, TanhGaussianActor
from dac4rec_lite.agents.base import select_candidates

BACKBONES = (dl.DDPG, dl.TD3, dl.SAC)
TINY = dict(hidden_dim=16, n_steps=5, seed=0)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def random_batch(n=8, obs_dim=3, action_dim=2, seed=0, terminals=None):
    g = torch.Generator().manual_seed(seed)
    return {"observations": torch.randn(n, obs_dim, generator=g), "actions": torch.rand(n, action_dim, generator=g) * 2 - 1,
            "rewards": torch.randn(n, 1, generator=g), "next_observations": torch.randn(n, obs_dim, generator=g),
            "terminals": torch.zeros(n, 1) if terminals is None else terminals}


def chain_dataset(n=400, seed=0):
    """Small non-terminal transitions (so TD targets bootstrap) with episode boundaries."""
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((n, 3)).astype(np.float32)
    terminals = (np.arange(n) % 10 == 9).astype(np.float32)
    return dl.OfflineDataset(obs, rng.uniform(-1, 1, (n, 2)).astype(np.float32), rng.standard_normal(n).astype(np.float32),
                             np.roll(obs, -1, axis=0), terminals, episode_starts=np.arange(n) % 10 == 0)


def copy_trained(source: dl.OfflineAgent, target: dl.OfflineAgent) -> None:
    """Give ``target`` (the same agent built with energy=True) the weights ``source`` trained."""
    mine = target._modules_to_save()
    for name, module in source._modules_to_save().items():
        mine[name].load_state_dict(module.state_dict())


# ----- mechanics -------------------------------------------------------------------------------------
@pytest.mark.parametrize("diffusion", [False, True])
@pytest.mark.parametrize("cls", BACKBONES)
def test_td_target_is_each_backbones_bellman_target(cls, diffusion):
    agent = cls(3, 2, diffusion=diffusion, gamma=0.9, **TINY)
    batch = random_batch(terminals=torch.tensor([[1.0], [0.0]] * 4))
    s2, r, d = batch["next_observations"], batch["rewards"], batch["terminals"]
    agent.generator.manual_seed(5)
    y = agent.td_target(s2, r, d)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        if diffusion:  # a′ from the reverse chain: the target policy (DDPG, TD3) or the current one (SAC)
            policy = agent.policy if cls is dl.SAC else agent.target_policy
            a2 = policy.sample(s2, generator=g)
        elif cls is dl.SAC:
            a2, log_prob = agent.policy.rsample_with_log_prob(s2, g)
        else:
            a2 = agent.target_policy(s2)
        if cls is dl.TD3:  # target policy smoothing: clipped noise, then the box
            noise = (torch.randn(a2.shape, generator=g) * 0.2).clamp(-0.5, 0.5)
            a2 = (a2 + noise).clamp(-1, 1)
        q2 = agent.target_critic.q_min(s2, a2)
        if cls is dl.SAC and not diffusion:
            q2 = q2 - agent.entropy_temperature.alpha * log_prob
    torch.testing.assert_close(y, r + 0.9 * (1 - d) * q2)
    assert torch.equal(y[::2], r[::2])  # a terminal stops bootstrapping


def test_energy_true_trains_exactly_what_energy_false_trains():
    """energy=True only adds f_ψ after fit() (diffusion) or changes act() (Eq. 21): the actor-critic training is
    the same, which lets the tests below train once and compare both on the same weights."""
    data = chain_dataset()
    for cls in BACKBONES:
        for diffusion in (False, True):
            plain = cls(3, 2, diffusion=diffusion, **TINY)
            guided = cls(3, 2, diffusion=diffusion, energy=True, energy_steps=2, energy_states=20, **TINY)
            plain.fit(data, 4, batch_size=16, progress=False)
            guided.fit(data, 4, batch_size=16, progress=False)
            for name, module in plain._modules_to_save().items():
                for a, b in zip(module.state_dict().values(), guided._modules_to_save()[name].state_dict().values()):
                    assert torch.equal(a, b), (cls.__name__, diffusion, name)


@pytest.mark.parametrize("diffusion", [False, True])
@pytest.mark.parametrize("cls", BACKBONES)
def test_actor_step_trains_the_actor_only_and_the_encoder_learns_from_the_critic(cls, diffusion):
    agent = cls(3, 2, diffusion=diffusion, encoder="mlp", **TINY)
    batch = agent.check_batch(random_batch())
    encoder_before = [p.clone() for p in agent.encoder.parameters()]
    policy_before = [p.clone() for p in agent.policy.parameters()]
    agent.critic.zero_grad(set_to_none=True)
    agent.update_actor(batch)
    assert all(p.grad is None for p in agent.critic.parameters())
    assert all(torch.equal(a, b) for a, b in zip(encoder_before, agent.encoder.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(policy_before, agent.policy.parameters()))
    agent.update_critic(batch)
    assert any(not torch.equal(a, b) for a, b in zip(encoder_before, agent.encoder.parameters()))


def test_td3_updates_actor_and_targets_once_per_policy_delay():
    agent = dl.TD3(3, 2, policy_delay=3, **TINY)
    batch = random_batch()
    snapshots = []
    for _ in range(4):
        metrics = agent.update(batch)
        snapshots.append((torch.cat([p.flatten() for p in agent.policy.parameters()]),
                          torch.cat([p.flatten() for p in agent.target_critic.parameters()]), "actor_loss" in metrics))
    assert [s[2] for s in snapshots] == [True, False, False, True]
    assert torch.equal(snapshots[0][0], snapshots[2][0]) and torch.equal(snapshots[0][1], snapshots[2][1])
    assert not torch.equal(snapshots[2][0], snapshots[3][0]) and not torch.equal(snapshots[2][1], snapshots[3][1])


def test_sac_learns_its_temperature_and_sac_with_diffusion_has_none():
    sac = dl.SAC(3, 2, initial_temperature=0.5, temperature_lr=1e-2, **TINY)
    batch = random_batch()
    alpha_before = sac.entropy_temperature.alpha.item()
    metrics = sac.update(batch)
    assert metrics["alpha"] == pytest.approx(alpha_before)
    # Entropy above the target −d (a wide initial policy): the temperature loss lowers α.
    assert metrics["entropy"] > sac.target_entropy == -2.0 and sac.entropy_temperature.alpha.item() < alpha_before
    diffusion = dl.SAC(3, 2, diffusion=True, **TINY)
    assert diffusion.entropy_temperature is None and diffusion.target_policy is None
    assert "alpha" not in diffusion.update(batch) and "temperature" not in diffusion._modules_to_save()


def test_tanh_gaussian_log_prob_is_the_change_of_variables_density():
    actor = TanhGaussianActor(3, 2, hidden_dim=16, max_action=2.0)
    state = torch.randn(5, 3)
    action, log_prob = actor.rsample_with_log_prob(state, torch.Generator().manual_seed(0))
    mean, std = actor.distribution(state)
    u = torch.atanh(action / 2.0)
    base = torch.distributions.Normal(mean, std).log_prob(u).sum(1, keepdim=True)
    jacobian = torch.log(2.0 * (1 - torch.tanh(u) ** 2)).sum(1, keepdim=True)
    torch.testing.assert_close(log_prob, base - jacobian, rtol=1e-4, atol=1e-4)
    assert DeterministicActor(3, 2, 16, max_action=0.5)(state).abs().max() <= 0.5


@pytest.mark.parametrize("cls", BACKBONES)
def test_energy_without_diffusion_is_eq21_selection_among_k_candidates(cls):
    agent = cls(3, 2, energy=True, energy_candidates=6, energy_beta=2.0, **TINY)
    obs = torch.randn(5, 3)
    chosen = agent.act(obs, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        candidates = agent.candidate_actions(obs, 6, g)
        q = agent.critic.q_min(obs.repeat_interleave(6, 0), candidates)
        expected = select_candidates(q, candidates, 5, 1 / 2.0, g)
    assert torch.equal(chosen, expected)
    grouped = candidates.reshape(5, 6, 2)
    if cls is dl.SAC:  # K draws of its Gaussian
        assert grouped.std(dim=1).min() > 0
    else:  # the action itself, then K − 1 perturbations of it
        torch.testing.assert_close(grouped[:, 0], agent.policy(obs))
        assert (grouped[:, 1:] - grouped[:, :1]).abs().max() > 0
    cold = agent.act(obs, n_candidates=6, temperature=1e-6, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        candidates = agent.candidate_actions(obs, 6, g)
        q = agent.critic.q_min(obs.repeat_interleave(6, 0), candidates).reshape(5, 6)
    torch.testing.assert_close(cold, candidates.reshape(5, 6, 2)[torch.arange(5), q.argmax(1)])
    # Without energy one candidate is the greedy action: μ(s), or SAC's squashed mean.
    plain = cls(3, 2, **TINY)
    greedy = plain.act(obs)
    with torch.no_grad():
        expected = plain.policy.mean_action(obs) if cls is dl.SAC else plain.policy(obs)
    torch.testing.assert_close(greedy, expected)


def test_diffusion_energy_needs_f_psi_trained_before_acting():
    agent = dl.TD3(3, 2, diffusion=True, energy=True, **TINY)
    with pytest.raises(RuntimeError, match="untrained"):
        agent.act(np.zeros(3, np.float32))
    with pytest.raises(RuntimeError, match="energy=False"):
        dl.TD3(3, 2, energy=True, **TINY).fit_energy(chain_dataset())


@pytest.mark.parametrize("energy", [False, True])
@pytest.mark.parametrize("diffusion", [False, True])
@pytest.mark.parametrize("cls", BACKBONES)
def test_save_load_round_trip(cls, diffusion, energy, tmp_path):
    agent = cls(3, 2, diffusion=diffusion, energy=energy, encoder="mlp", energy_steps=3, energy_states=20, **TINY)
    agent.fit(chain_dataset(), 5, batch_size=16, progress=False)
    agent.save(tmp_path / "agent.pt")
    loaded = cls.load(tmp_path / "agent.pt")
    obs = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
    for k in (1, 3):
        np.testing.assert_array_equal(agent.act(obs, n_candidates=k, generator=torch.Generator().manual_seed(0)),
                                      loaded.act(obs, n_candidates=k, generator=torch.Generator().manual_seed(0)))
    assert loaded.n_updates == 5
    with pytest.raises(ValueError, match="diffusion: checkpoint"):
        cls(3, 2, diffusion=not diffusion, energy=energy, encoder="mlp", **TINY).load_weights(tmp_path / "agent.pt")


@pytest.mark.parametrize("kwargs,match", [(dict(tau=0.0), "tau"), (dict(q_weight=-1.0), "q_weight"),
                                          (dict(energy_candidates=1), "energy_candidates"),
                                          (dict(td_sample_steps=3), "td_sampler='ddim' or 'dpm'"),
                                          (dict(policy_delay=0), "policy_delay"),
                                          (dict(diffusion=True, eps_activation="swish"), "eps_activation must be one of")])
def test_bad_backbone_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dl.TD3(3, 2, **TINY, **kwargs)


# ----- a fully covered bandit -----------------------------------------------------------------------
class BumpBandit:
    """One state, actions uniform over [-1, 1]², reward PEAK · exp(−‖a − c‖² / (2 w²)) + N(0, 0.5²):
    a smooth bump at c = (0.4, −0.5), w = 0.35. Its best region is the disc ‖a − c‖ ≤ 0.25 (reward ≥ 77 % of
    the peak); every action, the optimum included, is in the data, so no critic has to extrapolate."""

    centre, width, peak, radius = np.array([0.4, -0.5]), 0.35, 5.0, 0.25

    def dataset(self, n=10_000, seed=0) -> dl.OfflineDataset:
        rng = np.random.default_rng(seed)
        actions = rng.uniform(-1, 1, (n, 2))
        rewards = self.peak * np.exp(-((actions - self.centre) ** 2).sum(1) / (2 * self.width**2)) + 0.5 * rng.standard_normal(n)
        obs = np.ones((n, 1), np.float32)
        return dl.OfflineDataset(obs, actions.astype(np.float32), rewards.astype(np.float32), obs.copy(), np.ones(n, np.float32))

    def fraction_in_best_region(self, agent, n=1000) -> float:
        actions = agent.act(np.ones((n, 1), np.float32), generator=torch.Generator().manual_seed(0))
        return float(np.mean(np.linalg.norm(actions - self.centre, axis=1) <= self.radius))


BANDIT_UPDATES, BANDIT_BATCH = 800, 256
PLAIN = dict(hidden_dim=64, actor_lr=1e-3, critic_lr=3e-3, seed=0)
DIFFUSION = dict(PLAIN, n_steps=10, q_weight=20.0, actor_lr=1e-2)
ENERGY = dict(energy_steps=300, energy_states=500)


@pytest.fixture(scope="module")
def bump():
    bandit = BumpBandit()
    return bandit, bandit.dataset()


@pytest.fixture(scope="module", params=[(cls, diffusion) for cls in BACKBONES for diffusion in (False, True)],
                ids=lambda p: f"{p[0].__name__}{'+diffusion' if p[1] else ''}")
def bandit_pair(request, bump):
    """One backbone trained on the bump, and its energy=True twin on the same weights (+ f_ψ for diffusion)."""
    cls, diffusion = request.param
    bandit, data = bump
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        settings = DIFFUSION if diffusion else PLAIN
        agent = cls(1, 2, diffusion=diffusion, **settings)
        agent.fit(data, BANDIT_UPDATES, batch_size=BANDIT_BATCH, progress=False)
        guided = cls(1, 2, diffusion=diffusion, energy=True, **settings, **ENERGY)
        copy_trained(agent, guided)
        if diffusion:
            guided.fit_energy(data, progress=False)
    finally:
        torch.set_num_threads(threads)
    return bandit, agent, guided


def test_every_backbone_variant_finds_the_bump(bandit_pair):
    bandit, agent, guided = bandit_pair
    # Target ≥ 80 % in the best region (measured 99.8–100 % for every variant at seeds 0 and 1).
    assert bandit.fraction_in_best_region(agent) >= 0.8
    assert bandit.fraction_in_best_region(guided) >= 0.8


@pytest.mark.parametrize("name", ["TD3BC", "DAC4Rec"])
def test_td3bc_and_dac4rec_find_the_bump(name, bump):
    bandit, data = bump
    agent = dl.TD3BC(1, 2, **PLAIN) if name == "TD3BC" else dl.DAC4Rec(1, 2, policy_improvement="direct", **DIFFUSION)
    agent.fit(data, BANDIT_UPDATES, batch_size=BANDIT_BATCH, progress=False)
    assert bandit.fraction_in_best_region(agent) >= 0.8  # measured 100 %


def test_the_best_region_is_not_found_by_imitation(bump):
    """Control: the same diffusion actor with q_weight = 0 imitates the uniform behaviour (≈ 5 % there)."""
    bandit, data = bump
    agent = dl.TD3(1, 2, diffusion=True, **dict(DIFFUSION, q_weight=0.0))
    agent.fit(data, BANDIT_UPDATES, batch_size=BANDIT_BATCH, progress=False)
    assert bandit.fraction_in_best_region(agent) <= 0.2


# ----- the simulator (slow) -----------------------------------------------------------------------
SIM_SETTINGS = dict(hidden_dim=128, actor_lr=1e-3, critic_lr=1e-3, gamma=0.95, n_steps=10, q_weight=1.0, seed=0)
SIM_UPDATES, SIM_ENERGY = 1000, dict(energy_steps=300, energy_states=1000)


@pytest.mark.slow
@pytest.mark.parametrize("cls", BACKBONES)
def test_diffusion_backbones_beat_random_on_the_simulator(cls, simulator):
    env, data, bar = simulator
    agent = cls(data.obs_dim, data.action_dim, diffusion=True, **SIM_SETTINGS)
    agent.fit(data, SIM_UPDATES, batch_size=256, progress=False)
    guided = cls(data.obs_dim, data.action_dim, diffusion=True, energy=True, **SIM_SETTINGS, **SIM_ENERGY)
    copy_trained(agent, guided)
    guided.fit_energy(data, progress=False)
    returns = {name: dl.evaluate(env, a, EVAL_EPISODES, EVAL_SEED, progress=False)["R_cumu"]
               for name, a in (("+diffusion", agent), ("+diffusion+energy", guided))}
    assert min(returns.values()) >= bar, (cls.__name__, returns, bar)
