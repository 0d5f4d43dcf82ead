"""Bad inputs, as a hostile but realistic user makes them (issue 19): agent configs, hand-made batches,
fit/act arguments, the offline dataset and energy guidance. Each case asserts the exception type and a phrase
of its message (what was wrong, and how to fix it). Checkpoints, interrupted saves, Ctrl-C and random streams:
tests/test_agent_faults.py."""
from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch

import dac4rec_lite as dl
from bad_input_helpers import ACT, N, NAN, NO_CUDA, OBS, TINY, make_dict, tiny_agent


@pytest.fixture(scope="module")
def data() -> dl.OfflineDataset:
    return dl.OfflineDataset.from_dict(make_dict())


def batch(**changes) -> dict[str, torch.Tensor]:
    b = dl.OfflineDataset.from_dict(make_dict()).sample(6, generator=torch.Generator().manual_seed(0))
    b.update(changes)
    return b


# ----- configs (validated by the shared config base, issue 18) ------------------------------------------
CONFIG_CASES = [
    (dl.DAC4Rec, {"q_weight": NAN}, ValueError, "q_weight"),
    (dl.DAC4Rec, {"q_weight": -1.0}, ValueError, "q_weight"),
    (dl.DAC4Rec, {"grad_clip": NAN}, ValueError, "grad_clip"),
    (dl.DAC4Rec, {"energy_scale": NAN}, ValueError, "energy_scale"),
    (dl.DAC4Rec, {"gamma": NAN}, ValueError, "gamma"),
    (dl.DAC4Rec, {"gamma": 1.5}, ValueError, "gamma"),
    (dl.DAC4Rec, {"tau": NAN}, ValueError, "tau"),
    (dl.DAC4Rec, {"tau": 2.0}, ValueError, "tau"),
    (dl.DAC4Rec, {"actor_lr": NAN}, ValueError, "actor_lr"),
    (dl.DAC4Rec, {"critic_lr": -1e-3}, ValueError, "critic_lr"),
    (dl.DAC4Rec, {"hidden_dim": 0}, ValueError, "hidden_dim"),
    (dl.DAC4Rec, {"hidden_dim": -4}, ValueError, "hidden_dim"),
    (dl.DAC4Rec, {"hidden_dim": "6"}, TypeError, "hidden_dim"),
    (dl.DAC4Rec, {"hidden_dim": 6.5}, TypeError, "hidden_dim"),
    (dl.DAC4Rec, {"n_steps": 0}, ValueError, "n_steps"),
    (dl.DAC4Rec, {"n_steps": 2.5}, TypeError, "n_steps"),
    (dl.DAC4Rec, {"seed": 1.5}, TypeError, "seed"),
    (dl.DAC4Rec, {"seed": "1"}, TypeError, "seed"),
    (dl.DAC4Rec, {"gamma": "0.9"}, TypeError, "gamma"),
    (dl.DAC4Rec, {"policy_improvement": "bogus"}, ValueError, "policy_improvement"),
    (dl.DAC4Rec, {"td_sampler": "bogus"}, ValueError, "td_sampler"),
    (dl.DAC4Rec, {"eps_activation": "bogus"}, ValueError, "eps_activation"),
    (dl.DAC4Rec, {"device": "bogus-device"}, ValueError, "device"),
    (dl.DDPG, {"hidden_dim": 0}, ValueError, "hidden_dim"),
    (dl.DDPG, {"grad_clip": NAN}, ValueError, "grad_clip"),
    (dl.TD3, {"seed": 1.5}, TypeError, "seed"),
    (dl.TD3, {"gamma": NAN}, ValueError, "gamma"),
    (dl.SAC, {"hidden_dim": -4}, ValueError, "hidden_dim"),
    (dl.SAC, {"tau": NAN}, ValueError, "tau"),
    (dl.BehaviorCloning, {"hidden_dim": 0}, ValueError, "hidden_dim"),
    (dl.BehaviorCloning, {"lr": NAN}, ValueError, "lr"),
    (dl.TD3BC, {"bc_weight": NAN}, ValueError, "bc_weight"),
    (dl.DecisionTransformer, {"embed_dim": 0}, ValueError, "embed_dim"),
    (dl.DecisionTransformer, {"dropout": NAN}, ValueError, "dropout"),
    (dl.DecisionTransformer, {"seed": 1.5}, TypeError, "seed"),
]


@pytest.mark.parametrize("cls, kwargs, error, phrase", CONFIG_CASES,
                         ids=[f"{c.__name__}-{next(iter(k))}={next(iter(k.values()))!r}" for c, k, _, _ in CONFIG_CASES])
def test_bad_config_fields_are_refused_naming_the_field(cls, kwargs, error, phrase):
    extra = {"hidden_dim": 8} if "hidden_dim" in {f.name for f in dataclasses.fields(cls.Config)} else {}
    with pytest.raises(error, match=phrase):
        cls(OBS, ACT, **{**extra, **kwargs})


@pytest.mark.parametrize("obs_dim, action_dim, phrase", [(0, ACT, "obs_dim"), (OBS, 0, "action_dim"),
                                                          (-3, ACT, "obs_dim"), (OBS, 2.0, "action_dim")])
def test_zero_width_agents_are_refused(obs_dim, action_dim, phrase):
    with pytest.raises((ValueError, TypeError), match=phrase):
        dl.DAC4Rec(obs_dim, action_dim, **TINY)


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("cls", [dl.DAC4Rec, dl.DDPG, dl.TD3, dl.SAC, dl.BehaviorCloning, dl.TD3BC,
                                 dl.DecisionTransformer])
def test_cuda_without_cuda_says_so(cls):
    with pytest.raises(ValueError, match="CUDA is not available"):
        cls(OBS, ACT, device="cuda")


# ----- update(): hand-made batches ------------------------------------------------------------------------
def _flags(value: float, key: str = "terminals") -> dict:
    b = batch()
    b[key] = b[key].clone()
    b[key][2] = value
    return {key: b[key]}


BATCH_CASES = [
    ("terminals=0.5", lambda: batch(**_flags(0.5)), ValueError, "only 0 or 1"),
    ("terminals=7", lambda: batch(**_flags(7.0)), ValueError, "only 0 or 1, found 7.0 at row 2"),
    ("terminals=-1", lambda: batch(**_flags(-1.0)), ValueError, "only 0 or 1"),
    ("timeouts=0.5", lambda: batch(**_flags(0.5, "timeouts")), ValueError, r"batch\['timeouts'\] must hold only 0 or 1"),
    ("empty", lambda: {k: v[:0] for k, v in batch().items()}, ValueError, "empty"),
    ("not a dict", lambda: list(batch().values()), TypeError, "dict of tensors"),
    ("missing key", lambda: {k: v for k, v in batch().items() if k != "rewards"}, ValueError, "missing"),
    ("numpy values", lambda: {k: v.numpy() for k, v in batch().items()}, TypeError, "must be a torch.Tensor"),
    ("rewards (B,)", lambda: batch(rewards=torch.zeros(6)), ValueError, r"\(B, 1\) columns"),
    ("NaN observation", lambda: batch(observations=torch.full((6, OBS), NAN)), ValueError, "NaN or inf"),
    ("inf reward", lambda: batch(rewards=torch.full((6, 1), math.inf)), ValueError, "NaN or inf"),
    ("wrong obs width", lambda: batch(observations=torch.zeros(6, OBS + 1)), ValueError, "expected"),
]


@pytest.mark.parametrize("name, make, error, phrase", BATCH_CASES, ids=[c[0] for c in BATCH_CASES])
def test_update_refuses_bad_batches(name, make, error, phrase):
    agent = tiny_agent()
    with pytest.raises(error, match=phrase):
        agent.update(make())
    assert agent.n_updates == 0


# ----- fit() and act() -----------------------------------------------------------------------------------
FIT_CASES = [
    ("steps=2.5", {"steps": 2.5}, TypeError, "steps must be an int"),
    ("steps='10'", {"steps": "10"}, TypeError, "steps must be an int"),
    ("steps=True", {"steps": True}, TypeError, "steps must be an int"),
    ("steps=0", {"steps": 0}, ValueError, "steps must be >= 1"),
    ("batch_size=0", {"batch_size": 0}, ValueError, "batch_size must be >= 1"),
    ("batch_size=2.5", {"batch_size": 2.5}, TypeError, "batch_size"),
    ("log_every=0", {"log_every": 0}, ValueError, "log_every"),
    ("dict dataset", {"dataset": make_dict()}, TypeError, "from_dict"),
    ("list dataset", {"dataset": [1, 2]}, TypeError, "expects an OfflineDataset"),
    ("other widths", {"dataset": dl.OfflineDataset.from_dict({**make_dict(), "observations": np.zeros((N, 5)),
                                                              "next_observations": np.zeros((N, 5))})},
     ValueError, "built for obs_dim=3"),
]


@pytest.mark.parametrize("name, kwargs, error, phrase", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_fit_refuses_bad_arguments(name, kwargs, error, phrase, data):
    agent = tiny_agent()
    args = {"dataset": data, "steps": 2, "batch_size": 8, "progress": False, **kwargs}
    with pytest.raises(error, match=phrase):
        agent.fit(**args)
    assert agent.n_updates == 0


@pytest.mark.parametrize("dataset, phrase", [(make_dict(), "from_dict"), ([1, 2], "expects an OfflineDataset")],
                         ids=["dict", "list"])
def test_decision_transformer_fit_refuses_what_is_not_a_dataset(dataset, phrase):
    with pytest.raises(TypeError, match=phrase):
        dl.DecisionTransformer(OBS, ACT).fit(dataset, 2, progress=False)


ACT_CASES = [
    ("numpy generator", {"generator": np.random.default_rng(0)}, TypeError, "torch.Generator"),
    ("int generator", {"generator": 0}, TypeError, "torch.Generator"),
    ("n_candidates=0", {"n_candidates": 0}, ValueError, "n_candidates"),
    ("n_candidates=1.5", {"n_candidates": 1.5}, ValueError, "n_candidates"),
    ("temperature=0", {"temperature": 0.0}, ValueError, "temperature"),
    ("temperature=NaN", {"temperature": NAN}, ValueError, "temperature"),
    ("temperature='hot'", {"temperature": "hot"}, TypeError, "temperature"),
    ("obs wrong width", {"obs": np.zeros(OBS + 1, dtype=np.float32)}, ValueError, "obs must have shape"),
    ("obs NaN", {"obs": np.full(OBS, NAN, dtype=np.float32)}, ValueError, "NaN"),
    ("obs list", {"obs": [0.0] * OBS}, TypeError, "numpy array or a torch.Tensor"),
]


@pytest.mark.parametrize("name, kwargs, error, phrase", ACT_CASES, ids=[c[0] for c in ACT_CASES])
def test_act_refuses_bad_arguments(name, kwargs, error, phrase):
    agent = tiny_agent()
    args = {"obs": np.zeros(OBS, dtype=np.float32), **kwargs}
    with pytest.raises(error, match=phrase):
        agent.act(**args)


# ----- dataset ----------------------------------------------------------------------------------------------
def _with(**changes):
    return lambda: dl.OfflineDataset.from_dict({**make_dict(), **changes})


DATASET_CASES = [
    ("not a dict", lambda: dl.OfflineDataset.from_dict([1, 2]), TypeError, "dict of numpy arrays"),
    ("missing key", lambda: dl.OfflineDataset.from_dict({k: v for k, v in make_dict().items() if k != "rewards"}),
     ValueError, "missing required key"),
    ("typo key", lambda: dl.OfflineDataset.from_dict({**make_dict(), "terminal": np.zeros(N)}), ValueError,
     "did you mean 'terminals'"),
    ("terminals 0.5", _with(terminals=np.full(N, 0.5)), ValueError, "terminals must contain only 0/1"),
    ("timeouts 7", _with(timeouts=np.full(N, 7.0)), ValueError, "timeouts must contain only 0/1"),
    ("NaN observation", _with(observations=np.full((N, OBS), NAN)), ValueError, "observations contains NaN at row 0"),
    ("inf reward", _with(rewards=np.full(N, math.inf)), ValueError, "rewards contains inf"),
    ("float32 overflow", _with(rewards=np.full(N, 1e300)), ValueError, "too large for float32"),
    ("ragged", _with(observations=[[1.0, 2.0], [1.0]]), ValueError, "could not be converted"),
    ("complex", _with(rewards=np.ones(N, dtype=complex)), ValueError, "imaginary part"),
    ("strings", _with(rewards=np.array(["1"] * N)), ValueError, "real numeric array"),
    ("lengths differ", _with(rewards=np.zeros(N - 1)), ValueError, "rewards has 47 rows"),
    ("rewards 2-D", _with(rewards=np.zeros((N, 1))), ValueError, r"reshape\(-1\)"),
    ("empty", lambda: dl.OfflineDataset.from_dict({k: v[:0] for k, v in make_dict().items()}), ValueError,
     "the dataset is empty"),
    ("action outside box", _with(actions=np.full((N, ACT), 1.5)), ValueError, "outside \\[-1.0, 1.0\\]"),
    ("max_action '1'", lambda: dl.OfflineDataset.from_dict(make_dict(), max_action="1"), TypeError, "max_action"),
    ("max_action NaN", lambda: dl.OfflineDataset.from_dict(make_dict(), max_action=NAN), ValueError, "max_action"),
    ("episode starts", _with(episode_starts=np.zeros(N)), ValueError, "episode_starts\\[0\\] must be 1"),
]


@pytest.mark.parametrize("name, make, error, phrase", DATASET_CASES, ids=[c[0] for c in DATASET_CASES])
def test_dataset_refuses_bad_arrays(name, make, error, phrase):
    with pytest.raises(error, match=phrase):
        make()


SAMPLE_CASES = [
    ("numpy generator", {"generator": np.random.default_rng(0)}, TypeError, "torch.Generator"),
    ("batch_size 0", {"batch_size": 0}, ValueError, "positive"),
    ("batch_size 2.5", {"batch_size": 2.5}, TypeError, "batch_size must be a positive int"),
    ("device bogus", {"device": "bogus-device"}, ValueError, "not a device"),
    ("device 3.0", {"device": 3.0}, TypeError, "device must be a string"),
]
if NO_CUDA:
    SAMPLE_CASES.append(("cuda without CUDA", {"device": "cuda"}, ValueError, "CUDA is not available"))
    SAMPLE_CASES.append(("cuda:1 without CUDA", {"device": torch.device("cuda", 1)}, ValueError, "CUDA is not available"))
if not torch.backends.mps.is_available():
    SAMPLE_CASES.append(("mps without MPS", {"device": "mps"}, ValueError, "MPS .* is not available"))


@pytest.mark.parametrize("name, kwargs, error, phrase", SAMPLE_CASES, ids=[c[0] for c in SAMPLE_CASES])
def test_dataset_sample_refuses_bad_arguments(name, kwargs, error, phrase, data):
    with pytest.raises(error, match=phrase):
        data.sample(**{"batch_size": 4, **kwargs})


def test_dataset_files_that_are_not_datasets(tmp_path):
    (tmp_path / "garbage.npz").write_bytes(b"garbage")
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    np.save(tmp_path / "single.npy", np.zeros(3))
    cases = [(tmp_path / "missing.npz", FileNotFoundError, "does not exist"),
             (tmp_path / "garbage.npz", ValueError, "could not be read as an .npz"),
             (tmp_path / "foreign.npz", ValueError, "missing key"),
             (tmp_path / "single.npy", ValueError, "single array")]
    for path, error, phrase in cases:
        with pytest.raises(error, match=phrase):
            dl.OfflineDataset.load(path)


# ----- energy guidance --------------------------------------------------------------------------------------
def _sample_with(energy, scale=1.0):
    schedule = dl.VPSchedule(3)
    policy = dl.DiffusionPolicy(OBS, ACT, schedule, hidden_dim=8)
    return policy.sample(torch.zeros(4, OBS), guidance=dl.EnergyGuidance(energy, scale),
                         generator=torch.Generator().manual_seed(0))


GUIDANCE_CASES = [
    ("energy NaN", lambda: _sample_with(lambda s, a, i: (a * NAN).sum(1)), ValueError,
     "guidance energy returned NaN or inf"),
    ("energy inf gradient", lambda: _sample_with(lambda s, a, i: (a * 1e38).exp().sum(1)), ValueError,
     "NaN or inf"),
    ("energy a float", lambda: _sample_with(lambda s, a, i: 1.0), TypeError, "must return a torch.Tensor"),
    ("energy wrong shape", lambda: _sample_with(lambda s, a, i: a), ValueError, "must return shape"),
    ("energy not callable", lambda: dl.EnergyGuidance(3.0), TypeError, "callable"),
    ("scale NaN", lambda: dl.EnergyGuidance(lambda s, a, i: a.sum(1), NAN), ValueError, "finite number >= 0"),
    ("scale -1", lambda: dl.EnergyGuidance(lambda s, a, i: a.sum(1), -1.0), ValueError, "finite number >= 0"),
    ("scale '1'", lambda: dl.EnergyGuidance(lambda s, a, i: a.sum(1), "1"), TypeError, "scale must be"),
]


@pytest.mark.parametrize("name, make, error, phrase", GUIDANCE_CASES, ids=[c[0] for c in GUIDANCE_CASES])
def test_energy_guidance_refuses_bad_energies(name, make, error, phrase):
    with pytest.raises(error, match=phrase):
        make()


def test_a_broken_energy_model_in_an_agent_is_an_error_not_nan_actions(data):
    agent = tiny_agent(energy=True, energy_steps=1, n_support=2, energy_states=8)
    with torch.no_grad():
        for p in agent.energy_model.parameters():
            p.fill_(NAN)
    agent.energy_updates = 1  # as if trained: act() now guides with it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="guidance energy returned NaN"):
            agent.act(np.zeros(OBS, dtype=np.float32))


# ----- the same checks hold for every agent class (they live in the shared base) -------------------------
OTHER_AGENTS = [dl.DDPG, dl.TD3, dl.SAC, dl.BehaviorCloning, dl.TD3BC]


@pytest.mark.parametrize("cls", OTHER_AGENTS, ids=lambda c: c.__name__)
def test_every_agent_refuses_non_binary_terminals(cls):
    with pytest.raises(ValueError, match="only 0 or 1, found 0.5"):
        cls(OBS, ACT, hidden_dim=8).update(batch(**_flags(0.5)))


@pytest.mark.parametrize("cls", [*OTHER_AGENTS, dl.DecisionTransformer], ids=lambda c: c.__name__)
def test_every_agent_refuses_fractional_steps(cls, data):
    with pytest.raises(TypeError, match="steps must be an int"):
        cls(OBS, ACT).fit(data, 2.5, progress=False)


@pytest.mark.parametrize("cls", OTHER_AGENTS, ids=lambda c: c.__name__)
def test_every_agent_refuses_a_numpy_generator(cls):
    with pytest.raises(TypeError, match="must be a torch.Generator"):
        cls(OBS, ACT, hidden_dim=8).act(np.zeros(OBS, dtype=np.float32), generator=np.random.default_rng(0))
