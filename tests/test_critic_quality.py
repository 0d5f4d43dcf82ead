"""scripts/critic_quality.py: the within-state scores of a critic against the simulator's expected click rate."""
import numpy as np
import pytest
from helpers import load_script

critic_quality = load_script("critic_quality")


def test_scores_are_one_for_a_critic_that_ranks_as_users_click_and_minus_one_reversed():
    ctr = np.random.default_rng(0).uniform(0.1, 0.6, size=(50, 12))
    perfect = critic_quality.score_candidates(10 * ctr + 3, ctr, n_policy=6)  # any increasing map of the CTR
    np.testing.assert_allclose(perfect["rank_corr"], 1.0, atol=1e-12)
    np.testing.assert_allclose(perfect["rank_corr_policy"], 1.0, atol=1e-12)
    np.testing.assert_allclose(perfect["top1_ctr_gain"], ctr.max(axis=1) - ctr.mean(axis=1))
    reversed_ = critic_quality.score_candidates(-ctr, ctr, n_policy=6)
    np.testing.assert_allclose(reversed_["rank_corr"], -1.0, atol=1e-12)
    np.testing.assert_allclose(reversed_["top1_ctr_gain"], ctr.min(axis=1) - ctr.mean(axis=1))


def test_a_critic_of_pure_noise_scores_zero_on_average():
    rng = np.random.default_rng(1)
    ctr, q = rng.uniform(size=(4000, 16)), rng.normal(size=(4000, 16))
    scores = critic_quality.score_candidates(q, ctr, n_policy=8)
    # the mean of 4000 independent within-state correlations: sd ≈ 1/√(15·4000) ≈ 0.004
    assert abs(scores["rank_corr"].mean()) < 0.02 and abs(scores["top1_ctr_gain"].mean()) < 0.01


def test_policy_columns_only_count_in_rank_corr_policy():
    ctr = np.tile(np.arange(8.0), (3, 1))
    q = ctr.copy()
    q[:, 4:] = -q[:, 4:]  # the random candidates ranked backwards, the policy's 4 ranked right
    scores = critic_quality.score_candidates(q, ctr, n_policy=4)
    np.testing.assert_allclose(scores["rank_corr_policy"], 1.0, atol=1e-12)
    assert (scores["rank_corr"] < 0.5).all()


@pytest.mark.parametrize("q, ctr, n", [(np.zeros((3, 4)), np.zeros((3, 5)), 2), (np.zeros((3, 4)), np.zeros((3, 4)), 1)])
def test_bad_shapes_are_refused(q, ctr, n):
    with pytest.raises(ValueError, match="n_policy"):
        critic_quality.score_candidates(q, ctr, n)
