"""Behavioural tests for dac4rec_lite.data.dataset.OfflineDataset."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dac4rec_lite.data.dataset import OfflineDataset


def reward_of(obs: np.ndarray) -> np.ndarray:
    """The known reward function used by the fixtures: reward = 2 * obs[0] - obs[1]."""
    return 2.0 * obs[..., 0] - obs[..., 1]


def make_dict(n: int = 8, obs_dim: int = 3, action_dim: int = 2) -> dict[str, np.ndarray]:
    """A valid dataset whose row k is fully identifiable from observations[k, 0] == k.

    rewards, actions and next_observations are all deterministic functions of the observation,
    so any row mix-up in a sampled batch is detectable.
    """
    obs = np.zeros((n, obs_dim), dtype=np.float32)
    obs[:, 0] = np.arange(n)
    obs[:, 1:] = np.linspace(-1.0, 1.0, n * (obs_dim - 1), dtype=np.float32).reshape(n, obs_dim - 1)
    actions = np.tile(np.linspace(-1.0, 1.0, n, dtype=np.float32)[:, None], (1, action_dim))
    terminals = np.zeros(n, dtype=np.float32)
    terminals[n // 2 - 1] = 1.0
    timeouts = np.zeros(n, dtype=np.float32)
    timeouts[-1] = 1.0
    return {
        "observations": obs,
        "actions": actions,
        "rewards": reward_of(obs).astype(np.float32),
        "next_observations": obs + 0.5,
        "terminals": terminals,
        "timeouts": timeouts,
    }


def with_changes(**changes: object) -> dict[str, object]:
    """A valid dict with some keys replaced (value None deletes the key)."""
    d: dict[str, object] = dict(make_dict())
    for key, value in changes.items():
        if value is None:
            del d[key]
        else:
            d[key] = value
    return d


# --------------------------------------------------------------------------- construction & accessors


def test_from_dict_round_trips_through_to_dict_and_copies() -> None:
    d = make_dict()
    ds = OfflineDataset.from_dict(d)
    out = ds.to_dict()
    assert set(out) == set(d)
    for key in d:
        assert out[key].dtype == np.float32
        assert np.array_equal(out[key], d[key]), key
    assert out["rewards"].shape == (8,) and out["terminals"].shape == (8,) and out["timeouts"].shape == (8,)
    # The dataset neither aliases the caller's arrays nor hands out its own.
    d["observations"][0, 0] = 123.0
    out["rewards"][0] = 123.0
    assert ds.to_dict()["observations"][0, 0] == 0.0
    assert ds.to_dict()["rewards"][0] == d["rewards"][0]


def test_properties_len_and_repr() -> None:
    ds = OfflineDataset.from_dict(make_dict(n=8, obs_dim=3, action_dim=2))
    assert len(ds) == 8 and ds.obs_dim == 3 and ds.action_dim == 2 and ds.max_action == 1.0
    text = repr(ds)
    for part in ("n=8", "obs_dim=3", "action_dim=2", "mean_reward=", "terminal_fraction=0.125"):
        assert part in text


def test_missing_timeouts_become_zeros() -> None:
    ds = OfflineDataset.from_dict(with_changes(timeouts=None))
    timeouts = ds.to_dict()["timeouts"]
    assert timeouts.dtype == np.float32 and np.array_equal(timeouts, np.zeros(8, dtype=np.float32))
    batch = ds.sample(5, generator=torch.Generator().manual_seed(0))
    assert batch["timeouts"].shape == (5, 1) and not batch["timeouts"].any()


def test_int_bool_and_float64_inputs_are_converted_to_float32() -> None:
    d = make_dict()
    d["observations"] = d["observations"].astype(np.float64)
    d["next_observations"] = d["next_observations"].astype(np.float64)
    d["terminals"] = d["terminals"].astype(bool)
    d["timeouts"] = d["timeouts"].astype(np.int64)
    out = OfflineDataset.from_dict(d).to_dict()
    assert all(out[key].dtype == np.float32 for key in out)
    assert np.array_equal(out["terminals"], d["terminals"].astype(np.float32))
    assert np.array_equal(out["timeouts"], d["timeouts"].astype(np.float32))


def test_max_action_none_disables_bound_check() -> None:
    ds = OfflineDataset.from_dict(with_changes(actions=np.full((8, 2), 5.0, dtype=np.float32)), max_action=None)
    assert ds.max_action is None and float(ds.to_dict()["actions"].max()) == 5.0
    wider = OfflineDataset.from_dict(with_changes(actions=np.full((8, 2), 5.0, dtype=np.float32)), max_action=5.0)
    assert wider.max_action == 5.0


def test_episode_starts_are_kept_as_bool() -> None:
    starts = np.zeros(8, dtype=bool)
    starts[[0, 4]] = True  # row 3 is terminal, so row 4 must start a new trajectory
    out = OfflineDataset.from_dict(with_changes(episode_starts=starts)).to_dict()
    assert out["episode_starts"].dtype == bool and np.array_equal(out["episode_starts"], starts)


# --------------------------------------------------------------------------- sampling


def test_sample_shapes_dtypes_and_device() -> None:
    ds = OfflineDataset.from_dict(make_dict())
    for device in ("cpu", torch.device("cpu")):
        batch = ds.sample(16, generator=torch.Generator().manual_seed(1), device=device)
        assert set(batch) == {"observations", "actions", "rewards", "next_observations", "terminals", "timeouts"}
        assert batch["observations"].shape == (16, 3) and batch["next_observations"].shape == (16, 3)
        assert batch["actions"].shape == (16, 2)
        for key in ("rewards", "terminals", "timeouts"):
            assert batch[key].shape == (16, 1), key
        assert all(t.dtype == torch.float32 and t.device.type == "cpu" for t in batch.values())


def test_sample_rows_are_consistent() -> None:
    d = make_dict(n=50)
    ds = OfflineDataset.from_dict(d)
    batch = ds.sample(500, generator=torch.Generator().manual_seed(2))
    obs = batch["observations"].numpy()
    rows = obs[:, 0].astype(int)  # observations[k, 0] == k identifies the source row
    assert np.allclose(batch["rewards"].numpy()[:, 0], reward_of(obs))
    assert np.array_equal(batch["next_observations"].numpy(), obs + 0.5)
    assert np.array_equal(batch["actions"].numpy(), d["actions"][rows])
    assert np.array_equal(batch["terminals"].numpy()[:, 0], d["terminals"][rows])
    assert np.array_equal(batch["timeouts"].numpy()[:, 0], d["timeouts"][rows])


def test_sample_is_with_replacement() -> None:
    ds = OfflineDataset.from_dict(make_dict(n=4))
    batch = ds.sample(10, generator=torch.Generator().manual_seed(3))  # more draws than transitions
    rows = batch["observations"][:, 0].long()
    assert rows.shape == (10,) and len(torch.unique(rows)) < 10


def test_sample_is_deterministic_per_seed() -> None:
    ds = OfflineDataset.from_dict(make_dict(n=100))
    a = ds.sample(32, generator=torch.Generator().manual_seed(7))
    b = ds.sample(32, generator=torch.Generator().manual_seed(7))
    c = ds.sample(32, generator=torch.Generator().manual_seed(8))
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert not torch.equal(a["observations"], c["observations"])
    # Indices come from torch.randint with the given generator.
    expected_rows = torch.randint(0, 100, (32,), generator=torch.Generator().manual_seed(7))
    assert torch.equal(a["observations"][:, 0].long(), expected_rows)


def test_sample_is_uniform() -> None:
    ds = OfflineDataset.from_dict(make_dict(n=4))
    rows = ds.sample(40_000, generator=torch.Generator().manual_seed(4))["observations"][:, 0].long()
    freq = torch.bincount(rows, minlength=4).double() / 40_000
    # Tolerance: the std of one frequency is sqrt(0.25 * 0.75 / 40_000) ~= 0.0022, so +-0.01 is ~4.6 sigma.
    assert torch.all((freq - 0.25).abs() < 0.01), freq


@pytest.mark.parametrize("bad", [0, -3])
def test_sample_rejects_non_positive_batch_size(bad: int) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        OfflineDataset.from_dict(make_dict()).sample(bad)


@pytest.mark.parametrize("bad", [2.0, True, "4"])
def test_sample_rejects_non_int_batch_size(bad: object) -> None:
    with pytest.raises(TypeError, match="batch_size"):
        OfflineDataset.from_dict(make_dict()).sample(bad)  # type: ignore[arg-type]


def test_sample_rejects_bad_device() -> None:
    with pytest.raises(ValueError, match="device"):
        OfflineDataset.from_dict(make_dict()).sample(4, device="not-a-device")


# --------------------------------------------------------------------------- save / load


@pytest.mark.parametrize("max_action", [1.0, None])
def test_save_load_round_trip_is_exact(tmp_path, max_action: float | None) -> None:
    starts = np.zeros(8, dtype=bool)
    starts[[0, 4]] = True
    ds = OfflineDataset.from_dict(with_changes(episode_starts=starts), max_action=max_action)
    path = tmp_path / "data.npz"
    ds.save(path)
    loaded = OfflineDataset.load(path)
    original, restored = ds.to_dict(), loaded.to_dict()
    assert set(original) == set(restored)
    for key in original:
        assert original[key].dtype == restored[key].dtype and np.array_equal(original[key], restored[key]), key
    assert loaded.max_action == max_action
    a = ds.sample(64, generator=torch.Generator().manual_seed(5))
    b = loaded.sample(64, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_save_writes_exactly_the_given_path(tmp_path) -> None:
    path = tmp_path / "data.bin"  # np.savez would normally append ".npz"
    OfflineDataset.from_dict(make_dict()).save(path)
    assert path.is_file() and len(OfflineDataset.load(str(path))) == 8


def test_load_missing_file(tmp_path) -> None:
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        OfflineDataset.load(path)


def test_load_corrupt_file(tmp_path) -> None:
    path = tmp_path / "corrupt.npz"
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    with pytest.raises(ValueError, match="not a saved OfflineDataset"):
        OfflineDataset.load(path)


def test_load_truncated_archive(tmp_path) -> None:
    path = tmp_path / "truncated.npz"
    OfflineDataset.from_dict(make_dict()).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a saved OfflineDataset"):
        OfflineDataset.load(path)


def test_load_foreign_npz_names_missing_keys(tmp_path) -> None:
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.ones(3))
    with pytest.raises(ValueError, match="not a saved OfflineDataset.*max_action"):
        OfflineDataset.load(path)


def test_load_plain_npy_is_rejected(tmp_path) -> None:
    path = tmp_path / "array.npy"
    np.save(path, np.ones(3))
    with pytest.raises(ValueError, match="not a saved OfflineDataset"):
        OfflineDataset.load(path)


# --------------------------------------------------------------------------- validation errors


def test_missing_key() -> None:
    with pytest.raises(ValueError, match="missing required key.*'terminals'.*expected keys"):
        OfflineDataset.from_dict(with_changes(terminals=None))


def test_extra_key_is_rejected_with_suggestion() -> None:
    d = make_dict()
    d["terminal"] = d["terminals"]
    with pytest.raises(ValueError, match="unknown key.*'terminal'.*did you mean 'terminals'"):
        OfflineDataset.from_dict(d)


def test_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(TypeError, match="dict"):
        OfflineDataset.from_dict([1, 2, 3])  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["rewards", "terminals", "timeouts"])
def test_column_vector_is_rejected_with_reshape_hint(key: str) -> None:
    d = make_dict()
    d[key] = d[key].reshape(-1, 1)
    with pytest.raises(ValueError, match=rf"{key} must be 1-D.*reshape\(-1\)"):
        OfflineDataset.from_dict(d)


@pytest.mark.parametrize("key", ["observations", "actions", "next_observations"])
def test_1d_matrix_key_is_rejected(key: str) -> None:
    d = make_dict()
    d[key] = d[key][:, 0]
    with pytest.raises(ValueError, match=rf"{key} must be 2-D.*reshape\(-1, 1\)"):
        OfflineDataset.from_dict(d)


@pytest.mark.parametrize("key", ["actions", "rewards", "next_observations", "terminals", "timeouts"])
def test_length_mismatch_names_both_lengths(key: str) -> None:
    d = make_dict()
    d[key] = d[key][:-1]
    with pytest.raises(ValueError, match=rf"{key} has 7 rows but observations has 8"):
        OfflineDataset.from_dict(d)


def test_next_observations_width_mismatch() -> None:
    d = make_dict()
    d["next_observations"] = d["next_observations"][:, :2]
    with pytest.raises(ValueError, match=r"next_observations has shape \(8, 2\) but observations has shape \(8, 3\)"):
        OfflineDataset.from_dict(d)


@pytest.mark.parametrize("key", ["observations", "actions", "rewards", "next_observations"])
@pytest.mark.parametrize("bad_value, word", [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")])
def test_non_finite_values_name_key_and_row(key: str, bad_value: float, word: str) -> None:
    d = make_dict()
    if d[key].ndim == 2:
        d[key][5, 1] = bad_value
        d[key][6, 0] = bad_value
    else:
        d[key][5] = bad_value
        d[key][6] = bad_value
    with pytest.raises(ValueError, match=rf"{key} contains {word} at row 5 \(2 bad row"):
        OfflineDataset.from_dict(d, max_action=None)


def test_float64_overflow_is_reported() -> None:
    d = make_dict()
    d["rewards"] = d["rewards"].astype(np.float64)
    d["rewards"][2] = 1e300
    with pytest.raises(ValueError, match=r"rewards contains a value too large for float32 \(max ~3.4e38\) at row 2"):
        OfflineDataset.from_dict(d)


def test_nan_terminal_is_reported_as_nan() -> None:
    d = make_dict()
    d["terminals"][1] = np.nan
    with pytest.raises(ValueError, match="terminals contains NaN at row 1"):
        OfflineDataset.from_dict(d)


def test_out_of_range_action_names_count_row_and_fixes() -> None:
    d = make_dict()
    d["actions"][3, 1] = 1.5
    d["actions"][6, 0] = -2.0
    with pytest.raises(ValueError, match=r"actions: 2 row\(s\) lie outside \[-1.0, 1.0\] \(first bad row: 3") as info:
        OfflineDataset.from_dict(d)
    assert "Rescale" in str(info.value) and "max_action=None" in str(info.value)


def test_action_exactly_at_bound_is_accepted() -> None:
    ds = OfflineDataset.from_dict(with_changes(actions=np.full((8, 2), -1.0, dtype=np.float32)))
    assert float(ds.to_dict()["actions"].min()) == -1.0


@pytest.mark.parametrize("key", ["terminals", "timeouts"])
def test_non_binary_flags_are_rejected(key: str) -> None:
    d = make_dict()
    d[key] = d[key].astype(np.int64)
    d[key][2] = 2
    with pytest.raises(ValueError, match=rf"{key} must contain only 0/1.*found 2.0 at row 2"):
        OfflineDataset.from_dict(d)


def test_empty_dataset() -> None:
    d = {key: value[:0] for key, value in make_dict().items()}
    with pytest.raises(ValueError, match="empty.*observations has 0 rows"):
        OfflineDataset.from_dict(d)


def test_zero_width_observations() -> None:
    d = make_dict()
    d["observations"] = d["observations"][:, :0]
    d["next_observations"] = d["next_observations"][:, :0]
    with pytest.raises(ValueError, match="observations and actions need at least one column"):
        OfflineDataset.from_dict(d)


@pytest.mark.parametrize("key", ["observations", "actions", "rewards", "terminals"])
def test_non_numeric_dtypes_are_rejected(key: str) -> None:
    d = make_dict()
    d[key] = d[key].astype(str)
    with pytest.raises(ValueError, match=rf"{key} has dtype <U.*np.asarray\({key}, dtype=np.float32\)"):
        OfflineDataset.from_dict(d)


def test_complex_dtype_is_rejected() -> None:
    d = make_dict()
    d["observations"] = d["observations"].astype(np.complex64)
    with pytest.raises(ValueError, match="observations has dtype complex64.*imaginary part"):
        OfflineDataset.from_dict(d)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_max_action_value(bad: float) -> None:
    with pytest.raises(ValueError, match="max_action must be a positive finite float"):
        OfflineDataset.from_dict(make_dict(), max_action=bad)


def test_bad_max_action_type() -> None:
    with pytest.raises(TypeError, match="max_action"):
        OfflineDataset.from_dict(make_dict(), max_action="1.0")  # type: ignore[arg-type]


def test_episode_starts_must_begin_with_a_start() -> None:
    starts = np.zeros(8, dtype=bool)
    starts[4] = True
    with pytest.raises(ValueError, match=r"episode_starts\[0\] must be 1"):
        OfflineDataset.from_dict(with_changes(episode_starts=starts))


def test_episode_starts_must_follow_terminals() -> None:
    starts = np.zeros(8, dtype=bool)
    starts[0] = True  # row 3 is terminal, but row 4 is not marked as a start
    with pytest.raises(ValueError, match="episode_starts is 0 at row 4, but row 3 ends an episode"):
        OfflineDataset.from_dict(with_changes(episode_starts=starts))


def test_episode_starts_must_be_binary() -> None:
    starts = np.zeros(8, dtype=np.int64)
    starts[[0, 4]] = 1
    starts[6] = 3
    with pytest.raises(ValueError, match="episode_starts must contain only 0/1.*row 6"):
        OfflineDataset.from_dict(with_changes(episode_starts=starts))


def test_sample_is_the_contract_name_of_sample_batch() -> None:
    """``sample_batch`` draws the mini-batch; ``sample`` (the contract's name) gives the same rows from the same
    generator state, and both move the generator by the same draws."""
    ds = OfflineDataset.from_dict(make_dict(n=40))
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a, b = ds.sample_batch(32, generator=g1), ds.sample(32, generator=g2)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(g1.get_state(), g2.get_state())
    assert len(set(a["observations"][:, 0].tolist())) > 1  # a random draw, not one row repeated
