"""Few-step samplers (DDIM η=0, DPM-Solver++(2M)) on the same trained model: orders of convergence to the
probability-flow ODE's solution, equivalences, guidance, inference-mode fast path and validation."""
import pytest
import torch

import dac4rec_lite as dl
from dac4rec_lite.diffusion import sample_steps
from helpers import GaussianOracleEps


def oracle_policy(n_steps, mean=0.3, std=0.2, max_action=None):
    schedule = dl.VPSchedule(n_steps)
    return dl.DiffusionPolicy(1, 2, schedule, max_action=max_action,
                              eps_model=GaussianOracleEps(schedule, torch.full((2,), mean), std))


def draw(policy, sampler, k, n=2000, seed=0, **kwargs):
    with torch.no_grad():
        return policy.sample(torch.zeros(n, 1), generator=torch.Generator().manual_seed(seed), sampler=sampler,
                             n_sample_steps=k, **kwargs)


def test_sample_steps_are_distinct_decreasing_and_cover_both_ends():
    schedule = dl.VPSchedule(100)
    for k in (1, 2, 5, 10, 15, 50, 100):
        steps = sample_steps(schedule, k)
        assert len(steps) == k and steps[0] == 100
        assert all(a > b for a, b in zip(steps, steps[1:]))
        if k > 1:
            assert steps[-1] == 1
    assert sample_steps(dl.VPSchedule(10), 10) == list(range(10, 0, -1))
    with pytest.raises(ValueError, match="n_sample_steps"):
        sample_steps(schedule, 101)


def test_ddim_is_first_order_and_dpm_solver_second_order():
    """Same a^N, exact ε: both solve the same ODE; the error to a 1000-step solution shrinks ~2× (DDIM) and
    ≥ 3× (DPM-Solver++(2M)) when the number of steps doubles, and DPM is the more accurate at equal steps."""
    policy = oracle_policy(1000)
    reference = draw(policy, "dpm", 1000)
    errors = {s: [(draw(policy, s, k) - reference).abs().max().item() for k in (10, 20, 40)] for s in ("ddim", "dpm")}
    for coarse, fine in zip(errors["ddim"], errors["ddim"][1:]):
        assert 1.7 < coarse / fine < 2.3, errors
    for coarse, fine in zip(errors["dpm"], errors["dpm"][1:]):
        assert coarse / fine > 3.0, errors
    assert all(d < 0.2 * c for d, c in zip(errors["dpm"], errors["ddim"])), errors


def test_first_order_dpm_step_equals_ddim():
    policy = oracle_policy(100)
    torch.testing.assert_close(draw(policy, "dpm", 2), draw(policy, "ddim", 2), atol=1e-6, rtol=0)


def test_few_step_dpm_matches_the_data_distribution():
    """N(0.3, 0.2²) data: 10 DPM steps give std within 3 % and the mean within the prior-mismatch bias
    √ᾱ_N μ ≈ 0.024 (a^N ~ N(0, I) is not exactly the forward marginal N(√ᾱ_N μ, ·))."""
    a = draw(oracle_policy(100), "dpm", 10, n=20_000)
    assert torch.all((a.std(0) / 0.2 - 1).abs() < 0.03), a.std(0)
    assert torch.all((a.mean(0) - 0.3).abs() < 0.03), a.mean(0)


def test_few_step_samplers_are_deterministic_given_the_seed_and_respect_bounds():
    policy = oracle_policy(50, mean=0.9, std=0.3, max_action=1.0)
    for sampler in ("ddim", "dpm"):
        a1, a2, a3 = draw(policy, sampler, 8, seed=1), draw(policy, sampler, 8, seed=1), draw(policy, sampler, 8, seed=2)
        assert torch.equal(a1, a2) and not torch.equal(a1, a3)
        assert a1.abs().max() <= 1.0
        _, trajectory = draw(policy, sampler, 8, seed=1, return_trajectory=True)
        assert trajectory.shape == (9, 2000, 2) and torch.equal(trajectory[-1], a1)


@pytest.mark.parametrize("sampler", ["ddim", "dpm"])
def test_guidance_works_with_few_step_samplers(sampler):
    """The exact energy gradient of the tilted Gaussian (see test_energy.py) shifts the mean to κw."""
    policy = oracle_policy(100, mean=0.0, std=1.0)
    w = torch.tensor([0.6, -0.5])

    def exact_energy(state, a_i, i):
        return policy.schedule.alphas_cumprod[i - 1].sqrt() * (a_i @ w)

    a = draw(policy, sampler, 15, n=20_000, guidance=dl.EnergyGuidance(exact_energy, 1.0))
    # Shifted data N(w, I): the prior mismatch leaves a bias of about √ᾱ_N |w| ≈ 0.05.
    assert torch.all((a.mean(0) - w).abs() < 0.08), a.mean(0)
    unguided = draw(policy, sampler, 15, seed=3)
    zero = draw(policy, sampler, 15, seed=3, guidance=dl.EnergyGuidance(exact_energy, 0.0))
    assert torch.equal(unguided, zero)


def test_inference_mode_fast_path_returns_ordinary_tensors_and_keeps_gradients_when_asked():
    policy = dl.DiffusionPolicy(3, 2, dl.VPSchedule(5), hidden_dim=16)
    state = torch.randn(4, 3)
    with torch.no_grad():
        a = policy.sample(state, generator=torch.Generator().manual_seed(0))
    assert not a.is_inference()
    critic = dl.TwinQ(3, 2, hidden_dim=8)
    critic.q_min(state, a).sum().backward()  # usable as an input to a network being trained
    differentiable = policy.sample(state, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(differentiable.detach(), a)
    differentiable.sum().backward()  # grad mode on: gradients flow through the whole chain
    assert policy.eps_model.action_in.weight.grad is not None


def test_sampler_arguments_are_validated():
    policy = oracle_policy(20)
    with pytest.raises(ValueError, match="sampler must be one of"):
        draw(policy, "euler", 5)
    with pytest.raises(ValueError, match="ddpm sampler visits all N=20"):
        draw(policy, "ddpm", 5)
    with pytest.raises(ValueError, match="only applies to the stochastic ddpm"):
        draw(policy, "ddim", 5, variance="beta")
    assert draw(policy, "ddpm", 20).shape == (2000, 2)  # n_sample_steps = N is allowed for ddpm


@pytest.mark.parametrize("max_action", [1.0, None])
def test_sampling_with_gradients_matches_the_fast_path_and_an_out_of_place_reference(max_action):
    """The DDPM step updates â⁰ in place. With autograd on, samples and gradients must equal a chain written
    out of place from the schedule's own formulas (Eq. 14, the posterior mean, the same noise draws), and the
    samples must equal the gradient-free fast path's."""
    torch.manual_seed(0)
    policy = dl.DiffusionPolicy(3, 2, dl.VPSchedule(8), hidden_dim=16, max_action=max_action)
    state = torch.randn(5, 3)
    with torch.no_grad():
        fast = policy.sample(state, generator=torch.Generator().manual_seed(1))
    sampled = policy.sample(state, generator=torch.Generator().manual_seed(1))

    schedule, g = policy.schedule, torch.Generator().manual_seed(1)
    std = schedule.reverse_variance("posterior").sqrt()
    a = torch.randn(5, 2, generator=g)
    for i in range(schedule.n_steps, 0, -1):
        a0 = schedule.predict_a0(a, i, policy.eps_model(state, a, torch.full((5,), i)))
        if max_action is not None:
            a0 = a0.clamp(-max_action, max_action)
        a = schedule.posterior_mean(a0, a, i)
        if std[i - 1] > 0:
            a = a + std[i - 1] * torch.randn(5, 2, generator=g)

    torch.testing.assert_close(sampled.detach(), fast, atol=1e-6, rtol=0)
    torch.testing.assert_close(sampled, a, atol=1e-5, rtol=1e-5)
    params = list(policy.parameters())
    mine = torch.autograd.grad(sampled.square().sum(), params)
    for grad, reference in zip(mine, torch.autograd.grad(a.square().sum(), params)):
        torch.testing.assert_close(grad, reference, atol=1e-5, rtol=1e-4)
    assert all(grad.abs().sum() > 0 for grad in mine[-2:])  # the output layer's weight and bias get a gradient


def test_a_gradient_free_eps_function_refuses_to_run_with_autograd_on():
    net = dl.EpsilonMLP(3, 2, hidden_dim=8)
    with torch.no_grad():
        epsilon = net.epsilon_fn(torch.zeros(4, 3), 5)
        assert epsilon(torch.zeros(4, 2), 5).shape == (4, 2)
    with pytest.raises(RuntimeError, match="call epsilon_fn again with gradients enabled"):
        epsilon(torch.zeros(4, 2), 5)


# ------------------------------------------------------------------------------ CUDA-graph path (samplers.py)
from dac4rec_lite.diffusion import samplers as sampler_module  # noqa: E402

NO_CUDA = "needs a CUDA device: the CUDA-graph path only runs on a GPU (none on CPU-only machines)"


def test_gradient_free_eps_rebinds_to_another_state_and_prepares_lazily():
    net = dl.EpsilonMLP(3, 2, hidden_dim=8)
    states, other = torch.randn(4, 3), torch.randn(4, 3)
    a = torch.randn(4, 2)
    with torch.no_grad():
        epsilon = net.epsilon_fn(states, 5)
        assert epsilon.owner is net and epsilon.n_steps == 5
        rebound = epsilon.for_state(other)
        expected = net(other, a, torch.full((4,), 3))
        torch.testing.assert_close(rebound(a, 3), expected, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(epsilon(a, 3), net(states, a, torch.full((4,), 3)), atol=1e-6, rtol=1e-5)


def test_the_graph_path_is_never_taken_on_cpu_and_the_switch_restores_itself():
    policy = dl.DiffusionPolicy(3, 2, dl.VPSchedule(10), hidden_dim=16)
    state = torch.randn(32, 3)
    with torch.no_grad():
        a = policy.sample(state, generator=torch.Generator().manual_seed(0))
        with sampler_module.cuda_graphs(False):
            b = policy.sample(state, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert sampler_module.cuda_graph_count(policy.eps_model) == 0
    assert sampler_module._GRAPHS_ON is True


def test_a_chain_is_captured_on_its_second_use_with_the_same_generator(monkeypatch):
    """The capture policy, on CPU with a stand-in capture (the graph's replay runs the chain eagerly): a fresh
    generator per call is never captured, the same generator is captured on its second call and replayed after,
    and the notes of one-off chains are bounded."""
    captures = []

    def fake_capture(eps_fn, stepper, generator, state, chain):
        captures.append(generator)
        entry = sampler_module._ChainGraph(None, state.clone(), None, generator)

        class Replay:
            def replay(self):
                entry.out = chain(stepper.rebind(eps_fn.for_state(entry.state), entry.state), generator, None)
        entry.graph = Replay()
        return entry

    monkeypatch.setattr(sampler_module, "_graphable", lambda *args: True)
    monkeypatch.setattr(sampler_module, "_capture", fake_capture)
    policy = dl.DiffusionPolicy(3, 2, dl.VPSchedule(10), hidden_dim=16)
    state = torch.randn(32, 3)
    with torch.no_grad():
        for seed in range(20):
            a = policy.sample(state, generator=torch.Generator().manual_seed(seed))
        assert captures == [] and sampler_module.cuda_graph_count(policy.eps_model) == 0
        assert len(sampler_module._SEEN[policy.eps_model]) <= sampler_module._MAX_GRAPHS
        g = torch.Generator()
        out = [policy.sample(state, generator=g.manual_seed(5)) for _ in range(3)]
        assert captures == [g] and sampler_module.cuda_graph_count(policy.eps_model) == 1
        with sampler_module.cuda_graphs(False):
            eager = policy.sample(state, generator=g.manual_seed(5))
    for x in out:
        assert torch.equal(x, eager)
    assert not torch.equal(a, eager)


def _cuda_policy(n_steps=20, hidden=32, seed=0):
    torch.manual_seed(seed)
    return dl.DiffusionPolicy(5, 3, dl.VPSchedule(n_steps), hidden_dim=hidden).to("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
@pytest.mark.parametrize("sampler,k", [("ddpm", None), ("ddim", 7), ("dpm", 7)])
def test_cuda_graph_samples_equal_the_eager_loop_for_the_same_generator_state(sampler, k):
    policy = _cuda_policy()
    states = [torch.randn(64, 5, device="cuda") for _ in range(3)]

    def run(graphs: bool):
        g = torch.Generator(device="cuda").manual_seed(123)
        with sampler_module.cuda_graphs(graphs), torch.no_grad():
            out = [policy.sample(s, generator=g, sampler=sampler, n_sample_steps=k) for s in states]
        return out, torch.randn(4, generator=g, device="cuda")  # where the generator stands afterwards

    eager, eager_next = run(False)
    assert sampler_module.cuda_graph_count(policy.eps_model) == 0
    graphed, graphed_next = run(True)
    assert sampler_module.cuda_graph_count(policy.eps_model) == 1   # captured once, replayed for the next two
    for x, y in zip(eager, graphed):
        torch.testing.assert_close(y, x, atol=1e-5, rtol=1e-5)
    assert torch.equal(eager_next, graphed_next)   # the replays advanced the generator exactly as the loop did
    assert not torch.equal(graphed[0], graphed[1])  # fresh noise on every replay
    assert graphed[0].requires_grad is False and not graphed[0].is_inference()


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_graph_with_the_default_generator_and_weights_changed_in_place():
    policy = _cuda_policy()
    state = torch.randn(128, 5, device="cuda")

    def draw(graphs: bool):
        torch.cuda.manual_seed(7)
        with sampler_module.cuda_graphs(graphs), torch.no_grad():
            return policy.sample(state)

    torch.testing.assert_close(draw(True), draw(False), atol=1e-5, rtol=1e-5)  # first use: eager
    torch.testing.assert_close(draw(True), draw(False), atol=1e-5, rtol=1e-5)  # second: captured and replayed
    assert sampler_module.cuda_graph_count(policy.eps_model) == 1
    with torch.no_grad():  # an optimiser step writes the weights in place: the graph reads the new ones
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    torch.testing.assert_close(draw(True), draw(False), atol=1e-5, rtol=1e-5)
    assert sampler_module.cuda_graph_count(policy.eps_model) == 1
    policy.to("cuda", dtype=torch.float32)  # no-op move: same storage, same graph
    draw(True)
    assert sampler_module.cuda_graph_count(policy.eps_model) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_a_fresh_generator_per_call_is_never_captured():
    """A one-off generator would pay a capture (and hold a graph's memory) for one chain: it stays eager."""
    policy = _cuda_policy()
    state = torch.randn(256, 5, device="cuda")
    with torch.no_grad():
        for seed in range(12):
            graphed = policy.sample(state, generator=torch.Generator(device="cuda").manual_seed(seed))
            with sampler_module.cuda_graphs(False):
                eager = policy.sample(state, generator=torch.Generator(device="cuda").manual_seed(seed))
            assert torch.equal(graphed, eager)
    assert sampler_module.cuda_graph_count(policy.eps_model) == 0
    torch.cuda.synchronize()


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_graph_at_a_large_batch_equals_the_eager_loop():
    """B = 65,536 (the GPU benchmark's size): captured on the second call, replayed on the third, each equal to
    the eager loop from the same generator state."""
    policy = dl.DiffusionPolicy(91, 27, dl.VPSchedule(100), hidden_dim=256).to("cuda")
    state = torch.randn(65536, 91, device="cuda")
    g = torch.Generator(device="cuda")
    with torch.no_grad():
        for _ in range(3):
            graphed = policy.sample(state, generator=g.manual_seed(3))
            with sampler_module.cuda_graphs(False):
                eager = policy.sample(state, generator=g.manual_seed(3))
            torch.testing.assert_close(graphed, eager, atol=1e-5, rtol=1e-5)
    torch.cuda.synchronize()
    assert sampler_module.cuda_graph_count(policy.eps_model) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_guided_trajectory_cpu_generator_and_autograd_keep_the_eager_loop():
    policy = _cuda_policy()
    state = torch.randn(16, 5, device="cuda")

    class Push:
        scale = 1.0

        def __call__(self, s, a, i):
            return torch.ones_like(a)

    with torch.no_grad():
        policy.sample(state, generator=torch.Generator().manual_seed(0))          # CPU generator
        policy.sample(state, generator=torch.Generator(device="cuda").manual_seed(0), return_trajectory=True)
    policy.sample(state, guidance=Push())
    policy.sample(state)                                                              # autograd on
    assert sampler_module.cuda_graph_count(policy.eps_model) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_td_target_on_cuda_uses_one_graph_and_matches_the_eager_update():
    batch = {"observations": torch.randn(64, 6), "actions": torch.rand(64, 2) * 2 - 1, "rewards": torch.rand(64, 1),
             "next_observations": torch.randn(64, 6), "terminals": torch.zeros(64, 1)}
    batch = {k: v.to("cuda") for k, v in batch.items()}

    def targets(graphs: bool):
        agent = dl.DAC4Rec(6, 2, n_steps=10, hidden_dim=32, seed=0, device="cuda")
        with sampler_module.cuda_graphs(graphs), torch.no_grad():
            # no encoder: s′ is the observation itself
            out = [agent.td_target(batch["next_observations"], batch["rewards"], batch["terminals"]) for _ in range(2)]
        return out, sampler_module.cuda_graph_count(agent.target_policy.eps_model)

    (eager, no_graphs), (graphed, graphs) = targets(False), targets(True)
    assert no_graphs == 0 and graphs == 1
    for x, y in zip(eager, graphed):
        torch.testing.assert_close(y, x, atol=1e-4, rtol=1e-4)
