"""The reason to use a diffusion policy: on state-conditioned multimodal behaviour it keeps every mode
the state allows and puts (almost) nothing between them, where a Gaussian policy puts most of its mass."""
import pytest
import torch

import dac4rec_lite as dl


@pytest.fixture(scope="module")
def behaviour():
    toy = dl.MultimodalBehavior()
    states, actions, _ = toy.draw(4000, seed=0)
    return toy, states, actions


def draw(policy, toy, user, n=2000, seed=0):
    with torch.no_grad():
        return policy.sample(torch.as_tensor(toy.states_for(user, n)), generator=torch.Generator().manual_seed(seed)).numpy()


def test_sample_is_the_old_name_of_draw():
    """``MultimodalBehavior.draw(n, seed)``; ``.sample`` is kept as its alias (the same draws)."""
    toy = dl.MultimodalBehavior()
    assert dl.MultimodalBehavior.sample is dl.MultimodalBehavior.draw
    for new, old in zip(toy.draw(50, seed=3), toy.sample(50, seed=3)):
        assert (new == old).all()


def test_toy_data_is_what_it_says(behaviour):
    toy, states, actions = behaviour
    users = states.argmax(1)
    for user, liked in enumerate(toy.likes):
        fractions = toy.mode_fractions(actions[users == user], user)
        assert fractions["elsewhere"] < 0.01
        for name in (toy.mode_names[m] for m in liked):
            assert abs(fractions[name] - 1 / len(liked)) < 0.05


def test_diffusion_policy_keeps_the_modes_and_gaussian_does_not(behaviour):
    toy, states, actions = behaviour
    torch.manual_seed(0)
    diffusion = dl.DiffusionPolicy(toy.state_dim, 2, dl.VPSchedule(50), hidden_dim=128)
    dl.train_behavior_cloning(diffusion, states, actions, steps=4000, batch_size=256, lr=3e-3, seed=0, progress=False)
    torch.manual_seed(0)
    gaussian = dl.GaussianPolicy(toy.state_dim, 2, hidden_dim=64)
    dl.train_behavior_cloning(gaussian, states, actions, steps=1000, batch_size=256, lr=2e-3, seed=0, progress=False)
    for user, liked in enumerate(toy.likes):
        fractions = toy.mode_fractions(draw(diffusion, toy, user), user)
        for name in (toy.mode_names[m] for m in liked):
            assert fractions[name] >= 0.15, (user, fractions)
        assert fractions["elsewhere"] <= 0.05, (user, fractions)
        with torch.no_grad():
            g_actions = gaussian.sample(torch.as_tensor(toy.states_for(user, 2000)), generator=torch.Generator().manual_seed(0)).numpy()
        assert toy.mode_fractions(g_actions, user)["elsewhere"] >= 0.5, (user, toy.mode_fractions(g_actions, user))
