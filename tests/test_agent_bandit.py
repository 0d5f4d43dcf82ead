"""DAC4Rec's Q-guided training on Diffusion-QL's 2-D offline bandit (``dl.CornerBandit``).

Behaviour data: four blobs at (±0.8, ±0.8), reward means 3 (NE), 0 (NW), 1.5 (SW), 5 (SE). Pure behaviour
cloning must spread over all four blobs; each policy improvement (direct, elbo, awr) must concentrate on the
best one (SE); on the contextual variant the chosen blob must follow the state.

Every agent trains once per module (module-scoped fixtures): N = 10 diffusion steps, 2000 updates of batch
1024, ``hidden_dim=64, actor_lr=1e-2, critic_lr=1e-3`` (cosine decay on), seed 0, data seed 0. Evaluation
is fixed: ``agent.act`` on 2000 observations with ``torch.Generator().manual_seed(0)`` and one candidate
(n_candidates=1), so the policy itself must be good, not a ranking of samples by Q. About 100 s in all,
single-threaded, on a busy 2-core CPU.

Measured with these seeds (reward / best-blob fraction / off-blob fraction):
    q_weight = 0 (BC)    2.13 / 0.23 / 0.10   (seeds 1–3: 2.08–2.12, off 0.10–0.11)
    direct, λ = 5        4.73 / 0.93 / 0.05   (seeds 1–2: 4.69–4.70, best 0.93)
    elbo,   λ = 10       4.80 / 0.95 / 0.02   (seeds 1–2: 4.77–4.79)
    awr,    λ = 20       4.73 / 0.93 / 0.04   (seeds 1–2: 4.55–4.71)
    contextual, direct   best-blob 0.90–0.92 in every context (seed 1: 0.89–0.93)
"""
import numpy as np
import pytest
import torch

import dac4rec_lite as dl
from dac4rec_lite.guidance_studies import sample_summary

SETTINGS = dict(n_steps=10, hidden_dim=64, actor_lr=1e-2, critic_lr=1e-3, seed=0)
UPDATES, BATCH = 2000, 1024
# λ (q_weight) of each policy improvement. awr and elbo use g(Q) = exp(A / (T · mean|A|)) at the default
# temperature T = 0.3, normalised to mean 1 over the batch (DAC4Rec.advantage_weights).
Q_WEIGHTS = {"direct": 5.0, "elbo": 10.0, "awr": 20.0}


def train(policy_improvement: str, q_weight: float, contextual: bool = False) -> tuple[dl.DAC4Rec, dl.CornerBandit]:
    bandit = dl.CornerBandit(contextual=contextual)
    agent = dl.DAC4Rec(bandit.obs_dim, bandit.action_dim, policy_improvement=policy_improvement, q_weight=q_weight, **SETTINGS)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the networks are tiny: more threads only add contention on a shared CPU
    try:
        agent.fit(bandit.dataset(10_000, seed=0), UPDATES, batch_size=BATCH, progress=False)
    finally:
        torch.set_num_threads(threads)
    return agent, bandit


def evaluate(agent: dl.DAC4Rec, bandit: dl.CornerBandit, context: int = 0, n: int = 2000) -> dict:
    obs = bandit.observations(context, n)
    actions = agent.act(obs, generator=torch.Generator().manual_seed(0))
    summary = sample_summary(bandit, obs, actions)
    return {"reward": summary["mean_reward"], "fractions": np.array([summary[name] for name in bandit.blob_names]),
            "best": summary["best_blob"], "off": summary["off_blob"]}


@pytest.fixture(scope="module")
def behaviour_cloning():
    return train("direct", 0.0)


@pytest.fixture(scope="module", params=["direct", "elbo", "awr"])
def improved(request):
    return request.param, *train(request.param, Q_WEIGHTS[request.param])


@pytest.fixture(scope="module")
def contextual():
    return train("direct", Q_WEIGHTS["direct"], contextual=True)


def test_behaviour_cloning_spreads_over_all_four_blobs(behaviour_cloning):
    result = evaluate(*behaviour_cloning)
    # Target 2.4 ± 0.3, i.e. 2.1–2.7 (2.375 if all samples were on the blobs, evenly). Lower bound 2.05
    # instead of 2.1: even the exact ε of the four-blob mixture, sampled by the same N = 10 chain with the
    # same generator, scores only 2.16 here (6 % of its samples between blobs, and this draw of noise gives
    # NE 20 % of the samples). Learned policies score 2.08–2.13 over seeds 0–3 (2.13 at seed 0).
    assert 2.05 <= result["reward"] <= 2.7, result
    # A well-trained BC policy: ≤ 11–12 % off the blobs (exact ε: 6 %; under-trained, 3e-3 / batch 256: 14 %).
    assert result["off"] <= 0.12, result
    # Spread over all four blobs (each holds 25 % of the data): every blob gets at least 17 %.
    assert result["fractions"].min() >= 0.17, result


def test_policy_improvement_concentrates_on_the_best_blob(improved):
    method, agent, bandit = improved
    result = evaluate(agent, bandit)
    if method == "direct":
        # Target: reward ≥ 4.5 with ≥ 90 % of the samples in SE (measured 4.73 and 93 % at seed 0).
        assert result["reward"] >= 4.5 and result["best"] >= 0.90, result
    else:
        # Target: reward ≥ 4.0 (measured elbo 4.80, awr 4.73 at seed 0).
        assert result["reward"] >= 4.0, result
    assert np.argmax(result["fractions"]) == bandit.best_blob(), result


def test_contextual_choice_follows_the_state(contextual):
    agent, bandit = contextual
    for context in range(len(bandit.centres)):
        result = evaluate(agent, bandit, context)
        # Target: most samples of each context in that context's best blob (measured 90–92 %).
        assert result["best"] > 0.5, (context, result)
        assert np.argmax(result["fractions"]) == bandit.best_blob(context), (context, result)
