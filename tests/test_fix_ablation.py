"""scripts/fix_ablation.py: each ablation undoes exactly its fix while active, and restores the kit after."""
import torch
from helpers import load_script

import dac4rec_lite as dl
from dac4rec_lite.agents import diffusion_actor, encoding

fix_ablation = load_script("fix_ablation")


def batch(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"observations": torch.randn(n, 3, generator=g), "actions": torch.rand(n, 2, generator=g) * 2 - 1,
            "rewards": torch.randn(n, 1, generator=g), "next_observations": torch.randn(n, 3, generator=g),
            "terminals": torch.zeros(n, 1)}


def test_no_target_encoder_makes_the_target_the_online_encoder_and_restores_polyak():
    agent = dl.DAC4Rec(3, 2, n_steps=4, hidden_dim=16, encoder="mlp", tau=0.3, seed=0)
    with fix_ablation.ABLATIONS["no-target-encoder"]():
        agent.update(batch())
        for online, target in zip(agent.encoder.parameters(), agent.encoders.target_encoder.parameters(), strict=True):
            assert torch.equal(online, target)
    before = [p.detach().clone() for p in agent.encoders.target_encoder.parameters()]
    agent.update(batch(seed=1))  # the fix is back: θ′ moves by τ = 0.3 only
    for b, o, t in zip(before, agent.encoder.parameters(), agent.encoders.target_encoder.parameters(), strict=True):
        torch.testing.assert_close(t, b + 0.3 * (o.detach() - b), rtol=0, atol=1e-6)


def test_raw_kappa_trains_f_psi_on_raw_q_with_the_old_kappa(monkeypatch):
    seen = []
    monkeypatch.setattr(diffusion_actor, "train_energy", lambda *a, **kw: seen.append(kw))
    with fix_ablation.ABLATIONS["raw-kappa"]():
        diffusion_actor.train_energy(beta=3.0, standardize=True)
    diffusion_actor.train_energy(beta=3.0, standardize=True)
    assert seen == [dict(beta=fix_ablation.RAW_KAPPA, standardize=False), dict(beta=3.0, standardize=True)]
    assert encoding.AgentEncoders.update_critic_target.__name__ == "update_critic_target"
