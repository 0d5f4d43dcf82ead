"""Real logged data: loaders on fixture files in the publishers' exact formats, EasyRL4Rec's leave rules, the
Logged-v0 environment, the offline buffer cut from a log, Coat's published random-policy numbers (with the
shared copy of Coat) and DAC4Rec against the random policy on a synthetic matrix."""
from __future__ import annotations

import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import dac4rec_lite as dl
from dac4rec_lite.data.logged import (
    load_coat, load_kuairand, load_kuairec, load_logged, load_movielens, load_yahoo, write_synthetic_coat,
)
from dac4rec_lite.data.logged_world import LEAVE_RULES, LeaveRule, build_world, item_embeddings_from_matrix
from dac4rec_lite.data.user_model import fit_matrix_factorization
from dac4rec_lite.envs.logged_env import ENV_ID, LoggedEnv, logged_dataset
from dac4rec_lite.evaluation import evaluate_logged, random_policy_rollout

COAT = Path(__file__).resolve().parents[2] / "shared" / "data" / "coat"
needs_coat = pytest.mark.skipif(
    not (COAT / "train.ascii").is_file(),
    reason=f"the Coat files are not at {COAT} (download Coat from https://www.cs.cornell.edu/~schnabts/mnar/ and "
           "copy train.ascii, test.ascii and coat_pseudoGT_ratingM.ascii there to run these tests)",
)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def dense(matrix) -> str:
    return "".join(" ".join(str(v) for v in row) + "\n" for row in matrix)


# ----- fixtures in the publishers' formats -----------------------------------------------------------------
COAT_TRAIN = [[0, 3, 0, 5, 0], [1, 0, 0, 0, 2], [0, 0, 4, 4, 4]]
COAT_TEST = [[2, 0, 1, 0, 0], [0, 5, 0, 0, 0], [0, 0, 0, 0, 3]]
COAT_GT = [[2, 3, 1, 5, 4], [1, 5, 3, 2, 2], [3, 1, 4, 4, 4]]


def coat_folder(root: Path, gt: bool = True) -> Path:
    folder = root / "coat"
    write(folder / "train.ascii", dense(COAT_TRAIN))
    write(folder / "test.ascii", dense(COAT_TEST))
    write(folder / "user_item_features" / "user_features.ascii", dense([[1, 0], [0, 1], [1, 0]]))
    if gt:
        write(folder / "coat_pseudoGT_ratingM.ascii", dense(COAT_GT))
    return folder


ML100K = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t10\t5\t881250900\n22\t377\t1\t878887116\n"
ML1M = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n1::914::3::978301968\n"


def kuairec_folder(root: Path) -> Path:
    data = root / "KuaiRec 2.0" / "data"
    header = "user_id,video_id,play_duration,video_duration,time,date,timestamp,watch_ratio\n"
    write(data / "small_matrix.csv", header + "\n".join([
        "14,148,4381,6067,2020-07-05 05:27:48.378,20200705.0,1593898068.378,0.722",
        "14,183,11635,6100,2020-07-05 05:28:00.057,20200705.0,1593898080.057,1.907",
        "19,148,2000,6067,2020-07-05 06:00:00.000,20200705.0,1593900000.0,0.33",
        "19,183,70000,6100,2020-07-05 06:01:00.000,20200705.0,1593900060.0,11.47",
    ]) + "\n")
    write(data / "big_matrix.csv", header + "\n".join([
        "0,183,1000,6100,2020-07-05 00:00:02.000,20200705.0,1593878402.0,0.16",
        "0,148,6067,6067,2020-07-05 00:00:01.000,20200705.0,1593878401.0,1.0",
        "0,999,5000,5000,2020-07-05 00:00:03.000,20200705.0,1593878403.0,1.0",
        "14,183,3000,6100,2020-07-04 00:00:00.000,20200704.0,1593820800.0,0.49",
    ]) + "\n")
    write(data / "item_categories.csv", 'video_id,feat\n148,"[27, 9]"\n183,[8]\n999,[8]\n')
    return root / "KuaiRec 2.0"


def kuairand_folder(root: Path) -> Path:
    data = root / "KuaiRand-Pure" / "data"
    header = ("user_id,video_id,date,hourmin,time_ms,is_click,is_like,is_follow,is_comment,is_forward,is_hate,"
              "long_view,play_time_ms,duration_ms,profile_stay_time,comment_stay_time,is_profile_enter,is_rand,tab\n")
    row = "{u},{v},20220408,1000,{t},{c},0,0,0,0,0,0,1000,2000,0,0,0,0,1"
    write(data / "log_standard_4_08_to_4_21_pure.csv",
          header + "\n".join([row.format(u=0, v=10, t=300, c=1), row.format(u=0, v=11, t=100, c=0)]) + "\n")
    write(data / "log_standard_4_22_to_5_08_pure.csv", header + row.format(u=3, v=12, t=200, c=1) + "\n")
    write(data / "log_random_4_22_to_5_08_pure.csv", header + row.format(u=3, v=10, t=900, c=0) + "\n")
    write(data / "video_features_basic_pure.csv",
          "video_id,author_id,video_type,upload_dt,upload_type,visible_status,video_duration,server_width,"
          "server_height,music_id,music_type,tag\n"
          '10,1,NORMAL,2022-01-01,ShortImport,public,5000,720,1280,0,0,"2,73"\n'
          "11,1,NORMAL,2022-01-01,ShortImport,public,5000,720,1280,0,0,9\n"
          "12,1,NORMAL,2022-01-01,ShortImport,public,5000,720,1280,0,0,\n")
    return root / "KuaiRand-Pure"


def yahoo_folder(root: Path, test: str = "1\t3\t2\n2\t1\t4\n") -> Path:
    folder = root / "yahoo"
    write(folder / "ydata-ymusic-rating-study-v1_0-train.txt", "1\t1\t5\n1\t3\t1\n2\t2\t3\n3\t3\t4\n")
    write(folder / "ydata-ymusic-rating-study-v1_0-test.txt", test)
    return folder


# ----- loaders ---------------------------------------------------------------------------------------------
def test_coat_loader_reads_dense_matrices_in_matrix_order(tmp_path):
    data = load_coat(coat_folder(tmp_path))
    assert (data.n_users, data.n_items) == (3, 5)
    assert len(data.train) == 7 and len(data.test) == 4
    user0 = data.train[data.train["user"] == 0]
    assert user0["item"].tolist() == [1, 3] and user0["reward"].tolist() == [3, 5]  # matrix order, no times
    assert np.array_equal(data.reward_matrix, np.asarray(COAT_GT, dtype=np.float32))
    assert np.array_equal(data.rating_matrix("train"), np.asarray(COAT_TRAIN, dtype=np.float32))
    assert data.user_features.shape == (3, 2)


@pytest.mark.parametrize("text, message", [
    ("0 3 0 5 0\n1,0,0,0,2\n0 0 4 4 4\n", "line 2 is not whitespace-separated"),
    ("0 3 0 5 0\n1 0 0 2\n0 0 4 4 4\n", "line 2 has 4 values but line 1 has 5"),
    ("0 3 0 5 0\n1 0 x 0 2\n0 0 4 4 4\n", "line 2, column 3: 'x' is not a number"),
    ("0 3 0 5 0\n1 0 0 0 7\n0 0 4 4 4\n", "line 2, column 5 is 7, outside 0..5"),
    ("0 3 0 5 0\n1 0 0 0 2.5\n0 0 4 4 4\n", "whole numbers"),
])
def test_coat_loader_rejects_malformed_matrices(tmp_path, text, message):
    folder = coat_folder(tmp_path)
    write(folder / "train.ascii", text)
    with pytest.raises(ValueError, match=message):
        load_coat(folder)


def test_coat_loader_rejects_mismatched_or_missing_files(tmp_path):
    folder = coat_folder(tmp_path)
    write(folder / "test.ascii", dense([[0, 1, 0, 0, 0]] * 4))
    with pytest.raises(ValueError, match="test.ascii is 4×5 but it must be 3×5"):
        load_coat(folder)
    folder = coat_folder(tmp_path / "b")
    write(folder / "coat_pseudoGT_ratingM.ascii", dense([[0, 3, 1, 5, 4], [1, 5, 3, 2, 2], [3, 1, 4, 4, 4]]))
    with pytest.raises(ValueError, match="outside 1..5"):  # a completed matrix has no zeros
        load_coat(folder)
    (folder / "test.ascii").unlink()
    with pytest.raises(FileNotFoundError, match="test.ascii is missing"):
        load_coat(folder)


def test_movielens_100k_and_1m_are_detected_and_ordered_by_time(tmp_path):
    small = load_movielens(write(tmp_path / "ml-100k" / "u.data", ML100K).parent)
    assert small.name == "movielens-100k" and (small.n_users, small.n_items) == (3, 4)
    user196 = small.train[small.train["user"] == int(np.searchsorted(small.user_ids, 196))]
    assert small.item_ids[user196["item"]].tolist() == [10, 242]  # sorted by timestamp, not file order
    large = load_movielens(write(tmp_path / "ml-1m" / "ratings.dat", ML1M).parent)
    assert large.name == "movielens-1m" and large.family == "movielens"
    assert large.item_ids[large.train[large.train["user"] == 0]["item"]].tolist() == [1193, 914, 661]
    assert large.train["reward"].tolist() == [5, 3, 3, 4]


@pytest.mark.parametrize("file, text, message", [
    ("ratings.dat", "1\t1193\t5\t978300760\n", r"1 field\(s\) separated by '::'.*contains tabs"),
    ("ratings.dat", "1::1193::6::978300760\n", "rating = 6 is out of range"),
    ("ratings.dat", "0::1193::5::978300760\n", "user id = 0 is out of range"),
    ("ratings.dat", "1::1193::5\n", r"3 field\(s\)"),
    ("u.data", "196,242,3,881250949\n", "contains commas"),
    ("u.data", "196\tabc\t3\t881250949\n", "line 1: item is 'abc', not a whole number"),
])
def test_movielens_loader_rejects_malformed_rows(tmp_path, file, text, message):
    folder = write(tmp_path / "ml" / file, text).parent
    with pytest.raises(ValueError, match=message):
        load_movielens(folder)


def test_movielens_folder_without_ratings_says_what_it_needs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither u.data .* nor ratings.dat"):
        load_movielens(tmp_path / "empty")


def test_kuairec_loader_uses_the_small_matrix_as_environment(tmp_path):
    data = load_kuairec(kuairec_folder(tmp_path))
    assert list(data.item_ids) == [148, 183]                     # the small matrix's videos
    assert len(data.train) == 3                                   # the big-matrix row on video 999 is dropped
    user0 = data.train[data.train["user"] == int(np.searchsorted(data.user_ids, 0))]
    assert data.item_ids[user0["item"]].tolist() == [148, 183]   # ordered by timestamp
    assert set(data.user_ids[data.env_users]) == {14, 19}
    users, items, values = data.observed_rewards
    assert values.max() == 5.0 and np.isclose(values.min(), 0.33)  # watch_ratio capped at 5
    assert data.item_categories == [(27, 9), (8,)]


def test_kuairec_environment_pays_the_small_matrix_and_leaves_by_category(tmp_path):
    data = load_kuairec(kuairec_folder(tmp_path))
    env = LoggedEnv(data=data, user_model={"dim": 2, "epochs": 5}, window=4, progress=False)
    users, items, values = data.observed_rewards
    assert np.allclose(env.world.rewards[users, items], values)   # observed cells are the small matrix's
    assert (env.world.rule.kind, env.world.rule.threshold, env.world.rule.window) == ("category", 1.0, 9)
    assert {env.reset(seed=s)[1]["user"] for s in range(20)} <= set(data.env_users.tolist())
    env.reset(seed=0)
    # video 148 has categories (27, 9), video 183 has (8,): category 8 seen twice, then a third time: leave
    assert not env.step_item(1)[2] and not env.step_item(1)[2]
    assert env.step_item(1)[2]
    kuairand = LoggedEnv(data=load_kuairand(kuairand_folder(tmp_path)), user_model={"dim": 2, "epochs": 5},
                         window=4, progress=False)
    kuairand.reset(seed=0)
    assert not kuairand.step_item(0)[2] and not kuairand.step_item(1)[2]   # tags (2, 73) then (9,): no repeat
    assert kuairand.step_item(0)[2]                                         # tag 2 again, threshold 0: leave


def test_kuairec_loader_rejects_bad_columns_and_categories(tmp_path):
    folder = kuairec_folder(tmp_path)
    csv = folder / "data" / "small_matrix.csv"
    write(csv, csv.read_text().replace(",", ";"))
    with pytest.raises(ValueError, match="lacks column.*must be comma-separated"):
        load_kuairec(folder)
    folder = kuairec_folder(tmp_path / "b")
    write(folder / "data" / "small_matrix.csv", "user_id,video_id,timestamp\n14,148,1.0\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['watch_ratio'\]"):
        load_kuairec(folder)
    folder = kuairec_folder(tmp_path / "c")
    write(folder / "data" / "item_categories.csv", "video_id,feat\n148,music\n183,[8]\n")
    with pytest.raises(ValueError, match="line 2: 'music' is not a list of category ids"):
        load_kuairec(folder)
    folder = kuairec_folder(tmp_path / "d")
    csv = folder / "data" / "big_matrix.csv"
    write(csv, csv.read_text().replace("0,183,1000", "-3,183,1000"))
    with pytest.raises(ValueError, match="user_id = -3 is out of range"):
        load_kuairec(folder)


def test_kuairand_loader_concatenates_logs_and_reads_tags(tmp_path):
    data = load_kuairand(kuairand_folder(tmp_path))
    assert len(data.train) == 3 and len(data.test) == 1
    user0 = data.train[data.train["user"] == 0]
    assert data.item_ids[user0["item"]].tolist() == [11, 10]     # by time_ms
    assert data.item_categories == [(2, 73), (9,), (-1,)]        # a video without tags gets -1
    assert data.reward_range == (0.0, 1.0)


def test_kuairand_loader_rejects_non_binary_clicks(tmp_path):
    folder = kuairand_folder(tmp_path)
    log = folder / "data" / "log_standard_4_22_to_5_08_pure.csv"
    lines = log.read_text().splitlines()
    lines[1] = lines[1].replace(",200,1,", ",200,2,")
    write(log, "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="is_click = 2 is out of range"):
        load_kuairand(folder)


def test_yahoo_loader_and_out_of_range_test_ids(tmp_path):
    data = load_yahoo(yahoo_folder(tmp_path))
    assert (data.n_users, data.n_items) == (3, 3)
    assert data.train[data.train["user"] == 0]["item"].tolist() == [0, 2]   # file order, ids from 1
    with pytest.raises(ValueError, match="item id 9 is out of range: the training file's item ids are 1..3"):
        load_yahoo(yahoo_folder(tmp_path / "b", test="1\t9\t2\n"))
    with pytest.raises(ValueError, match="contains commas"):
        load_yahoo(yahoo_folder(tmp_path / "c", test="1,2,3\n"))


def test_folder_from_argument_or_environment_variable(tmp_path, monkeypatch):
    coat_folder(tmp_path)
    yahoo_folder(tmp_path)
    monkeypatch.setenv("DAC4REC_DATA", str(tmp_path))
    assert dl.find_dataset("coat") == tmp_path / "coat"
    assert load_logged("yahoo").name == "yahoo"
    assert dl.find_dataset("coat", tmp_path / "coat") == tmp_path / "coat"
    with pytest.raises(FileNotFoundError, match="no kuairand files"):
        dl.find_dataset("kuairand")
    monkeypatch.delenv("DAC4REC_DATA")
    with pytest.raises(FileNotFoundError, match="DAC4REC_DATA is not set"):
        dl.find_dataset("coat")
    with pytest.raises(ValueError, match="unknown dataset 'netflix'"):
        dl.find_dataset("netflix", tmp_path)


# ----- leave rules -----------------------------------------------------------------------------------------
def easyrl4rec_window(sequence: list[int], t: int, k: int) -> list[int]:
    """EasyRL4Rec's line, verbatim: window_actions = self.sequence_action[t - self.num_leave_compute:t]."""
    return sequence[t - k:t]


def test_window_quirk_matches_python_slicing():
    quirk, exact = LeaveRule("distance", 1.0, 7), LeaveRule("distance", 1.0, 7, exact_window=True)
    sizes = [len(range(*quirk.window_bounds(t))) for t in range(1, 9)]
    assert sizes == [1, 2, 3, 3, 2, 1, 7, 7]   # the 1, 2, 3, 3, 2, 1 at t = 1..6
    assert [len(range(*exact.window_bounds(t))) for t in range(1, 9)] == [1, 2, 3, 4, 5, 6, 7, 7]
    sequence = list(range(100, 130))
    for k in (1, 3, 7, 9, 10):
        rule = LeaveRule("category", 0.0, k)
        for t in range(1, 30):
            start, stop = rule.window_bounds(t)
            assert sequence[:t][start:stop] == easyrl4rec_window(sequence[:t], t, k)


def reference_leaves(world, sequence: list[int], item: int) -> bool:
    """EasyRL4Rec's _determine_whether_to_leave, written out with lists and loops."""
    t, k, threshold = len(sequence), world.rule.window, world.rule.threshold
    if t == 0:
        return False
    window = easyrl4rec_window(sequence, t, k)
    if world.rule.kind == "distance":
        columns = world.rewards.astype(np.float64)
        return any(np.sqrt(((columns[:, item] - columns[:, j]) ** 2).sum()) < threshold for j in window)
    from collections import Counter
    counts = Counter(c for j in window for c in world.data.item_categories[j])
    return any(counts[c] > threshold for c in world.data.item_categories[item])


@pytest.mark.parametrize("kind", ["distance", "category"])
def test_leave_rule_matches_easyrl4rec_reference(tmp_path, kind):
    data = load_coat(write_synthetic_coat(tmp_path, n_users=40, n_items=30, n_train=6, n_test=4, seed=1))
    rng = np.random.default_rng(0)
    data.item_categories = [tuple(rng.choice(5, size=rng.integers(1, 3), replace=False)) for _ in range(30)]
    world = build_world(data, leave_rule=kind, leave_threshold=2.0 if kind == "distance" else 1,
                        leave_window=7, progress=False)
    decisions = []
    for _ in range(300):
        t = int(rng.integers(0, 15))
        sequence = rng.integers(0, 30, size=t)
        item = int(rng.integers(0, 30))
        got = bool(world.leaves(sequence[None, :], np.array([item]))[0])
        assert got == reference_leaves(world, sequence.tolist(), item)
        decisions.append(got)
    assert 0.05 < np.mean(decisions) < 0.95   # both outcomes were exercised


def test_default_leave_rules_are_easyrl4rec_defaults():
    assert LEAVE_RULES["coat"] == ("distance", 6.0, 7)
    assert LEAVE_RULES["movielens-1m"] == ("distance", 75.0, 7)
    assert LEAVE_RULES["yahoo"] == ("distance", 120.0, 3)
    assert LEAVE_RULES["kuairec"] == ("category", 1.0, 9)
    assert LEAVE_RULES["kuairand"] == ("category", 0.0, 10)


def test_category_rule_needs_categories(tmp_path):
    data = load_coat(coat_folder(tmp_path))
    with pytest.raises(ValueError, match="category leave rule needs item categories"):
        build_world(data, leave_rule="category", progress=False)


# ----- user model, embeddings, environment -----------------------------------------------------------------
def test_matrix_factorisation_recovers_held_out_entries():
    rng = np.random.default_rng(0)
    n_users, n_items = 120, 80
    truth = 3 + rng.normal(0, 0.5, (n_users, 2)) @ rng.normal(0, 1, (2, n_items)) + rng.normal(0, 0.5, n_items)
    observed = rng.random((n_users, n_items)) < 0.4
    users, items = np.nonzero(observed)
    log = pd.DataFrame({"user": users, "item": items, "reward": truth[users, items]})
    model = fit_matrix_factorization(log, n_users, n_items, dim=8, epochs=40, weight_decay=0.01, progress=False)
    predicted = model.predict_matrix()
    held_out = ~observed
    rmse = np.sqrt(((predicted - truth)[held_out] ** 2).mean())
    baseline = np.sqrt(((truth[observed].mean() - truth)[held_out] ** 2).mean())
    assert rmse < 0.5 * baseline, (rmse, baseline)
    again = fit_matrix_factorization(log, n_users, n_items, dim=8, epochs=2, progress=False).predict_matrix()
    assert np.array_equal(again, fit_matrix_factorization(log, n_users, n_items, dim=8, epochs=2,
                                                          progress=False).predict_matrix())  # seeded


def test_without_a_complete_matrix_the_user_model_fills_it(tmp_path):
    env = LoggedEnv(data=load_coat(coat_folder(tmp_path, gt=False)), user_model={"dim": 2, "epochs": 50},
                    progress=False)
    rewards = env.world.rewards
    assert rewards.shape == (3, 5) and rewards.min() >= 1 and rewards.max() <= 5   # clipped to the scale
    train = np.asarray(COAT_TRAIN)
    assert np.abs(rewards[train > 0] - train[train > 0]).mean() < 1.0               # it fits the log


def test_item_embeddings_map_back_to_their_items():
    rng = np.random.default_rng(0)
    matrix = rng.integers(1, 6, size=(50, 40)).astype(np.float32)
    embeddings = item_embeddings_from_matrix(matrix, dim=8)
    assert embeddings.shape == (40, 8) and np.isclose(np.abs(embeddings).max(), 1.0)
    folder_world = build_world(dl.LoggedData("coat", pd.DataFrame({"user": [0], "item": [0], "reward": [1.0],
                                                                    "time": [np.nan]}), None, 50, 40, "rating",
                                             (1.0, 5.0), reward_matrix=matrix), progress=False)
    items = folder_world.items_from_actions(folder_world.item_embeddings)
    assert np.array_equal(items, np.arange(40))
    # cosine: a positive rescaling of an action recommends the same item
    assert np.array_equal(folder_world.items_from_actions(0.3 * folder_world.item_embeddings), np.arange(40))


@pytest.fixture(scope="module")
def synthetic_folder(tmp_path_factory) -> Path:
    return write_synthetic_coat(tmp_path_factory.mktemp("synthetic_coat"), seed=0)


@pytest.fixture(scope="module")
def synthetic_env(synthetic_folder) -> LoggedEnv:
    return LoggedEnv("coat", synthetic_folder, progress=False)


def test_logged_env_passes_gymnasium_checks(synthetic_folder):
    env = gym.make(ENV_ID, dataset="coat", path=synthetic_folder, progress=False)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.unwrapped.item_embeddings.shape == (300, 16)
    assert env.unwrapped.obs_layout.obs_dim == env.observation_space.shape[0] == 10 * 18


def test_logged_env_step_semantics(synthetic_env):
    env, world = synthetic_env, synthetic_env.world
    obs, info = env.reset(seed=3, options={"user": 7})
    assert info["user"] == 7 and not obs.any()            # empty history: all padding
    item = 11
    obs, reward, terminated, truncated, info = env.step(env.item_embeddings[item])
    assert info["item"] == item and reward == world.rewards[7, item] and not terminated
    _, history, valid = env.obs_layout.split(torch.as_tensor(obs)[None])
    assert valid[0].tolist() == [False] * 9 + [True]      # newest step last, left-padded
    assert np.allclose(history[0, -1, :-1].numpy(), env.item_embeddings[item])
    assert np.isclose(history[0, -1, -1].item(), (reward - 1) / 4)   # min–max normalised reward
    # the same item again is at distance 0 < 6: the user leaves, and that step still pays
    obs, reward, terminated, truncated, info = env.step(env.item_embeddings[item])
    assert terminated and not truncated and info["left"] and reward == world.rewards[7, item]
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(env.item_embeddings[0])


def test_logged_env_caps_at_30_turns(synthetic_folder):
    env = LoggedEnv("coat", synthetic_folder, leave_threshold=0.0, progress=False)   # nobody ever leaves
    env.reset(seed=0)
    for turn in range(1, 31):
        _, _, terminated, truncated, info = env.step(env.item_embeddings[turn % 5])
        assert not terminated and truncated == (turn == 30)


def test_no_repeat_skips_items_already_shown(synthetic_folder):
    env = LoggedEnv("coat", synthetic_folder, no_repeat=True, leave_threshold=0.0, progress=False)
    env.reset(seed=0)
    shown = [env.step(env.item_embeddings[4])[4]["item"] for _ in range(30)]
    assert shown[0] == 4 and len(set(shown)) == 30


def test_logged_dataset_replays_the_log_through_the_environment(synthetic_folder, synthetic_env):
    data = synthetic_env.world.data
    dataset = logged_dataset(env=synthetic_env)
    arrays = dataset.to_dict()
    assert len(dataset) == len(data.train)
    assert arrays["rewards"].min() >= 0 and arrays["rewards"].max() <= 1
    assert np.allclose(arrays["rewards"], (data.train["reward"].to_numpy() - 1) / 4)
    assert np.array_equal(synthetic_env.world.items_from_actions(arrays["actions"]), data.train["item"].to_numpy())
    # replay each logged episode in the environment: same observations, same leave decisions
    env, row = synthetic_env, 0
    for user in range(5):
        items = data.train[data.train["user"] == user]["item"].to_numpy()
        for item in items:
            if arrays["episode_starts"][row]:
                obs, _ = env.reset(options={"user": user})
            assert np.allclose(obs, arrays["observations"][row])
            obs, _, terminated, truncated, _ = env.step_item(int(item))
            assert terminated == bool(arrays["terminals"][row])
            # a timeout ends the log's episode early (end of the user's log) or at the cap, as the env does
            assert (truncated or row + 1 == len(arrays["rewards"]) or arrays["episode_starts"][row + 1]
                    or not arrays["timeouts"][row])
            row += 1
    assert arrays["terminals"].sum() > 0 and arrays["timeouts"].sum() >= data.n_users - arrays["terminals"].sum()


def test_batched_evaluation_matches_the_gymnasium_loop(synthetic_env):
    env = synthetic_env

    def policy(obs):  # deterministic: the item index follows the number of valid history steps
        _, _, valid = env.obs_layout.split(torch.as_tensor(obs))
        return env.item_embeddings[(valid.sum(1).numpy() * 37 + 5) % env.n_items]

    result = evaluate_logged(env, policy, n_episodes=40, seed=1)
    for _, row in result["episodes"].iterrows():
        obs, _ = env.reset(options={"user": int(row["user"])})
        total, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs[None])[0])
            total, length, done = total + reward, length + 1, terminated or truncated
        assert (length, total) == (row["length"], pytest.approx(row["return"]))
    assert result["R_avg"] == pytest.approx(result["R_cumu"] / result["Length"])   # ratio of means


class _HideSimulator(gym.Wrapper):
    """The same environment without its batched core: forces gymnasium's one-episode-at-a-time loop."""

    @property
    def unwrapped(self):
        return self


def test_one_rollout_protocol_for_both_environments(synthetic_env):
    """dl.evaluate and evaluate_logged are one loop: same numbers for the same seed; the gymnasium loop (other
    random stream) agrees in distribution; CTR is clicks per recommended item (one item per Logged-v0 turn)."""
    env = synthetic_env
    agent = _NoisyAgent(env.action_space.shape[0])
    batched = dl.evaluate(env, agent, 300, seed=3, progress=False)
    logged = evaluate_logged(env, agent, 300, seed=3)
    pd.testing.assert_frame_equal(batched["episodes"], logged["episodes"])
    episodes = batched["episodes"]
    assert (episodes["shown"] == episodes["length"]).all()                     # one item per turn
    assert batched["CTR"] == pytest.approx(episodes["clicks"].sum() / episodes["length"].sum())
    assert batched["R_avg"] == pytest.approx(episodes["return"].sum() / episodes["length"].sum())
    sequential = dl.evaluate(_HideSimulator(env), agent, 300, seed=4, progress=False)
    # different random streams, same distribution: Length within ~4 standard errors, CTR within 0.05
    assert abs(sequential["Length"] - batched["Length"]) < 4 * episodes["length"].std() / np.sqrt(300) * np.sqrt(2)
    assert abs(sequential["CTR"] - batched["CTR"]) < 0.05
    # the metrics function is the same one on RecSim-v0, where a step recommends a page of 10
    recsim = dl.evaluate(gym.make("dac4rec_lite/RecSim-v0"), dl.envs.MyopicPolicy(), 50, seed=0, progress=False)
    assert (recsim["episodes"]["shown"] == 10 * recsim["episodes"]["length"]).all()
    assert recsim["CTR"] == pytest.approx(recsim["episodes"]["clicks"].sum() / (10 * recsim["episodes"]["length"].sum()))


class _NoisyAgent:
    """An 'agent' whose actions depend on the generator the rollout hands it."""

    def __init__(self, action_dim: int) -> None:
        self.action_dim = action_dim

    def act(self, obs, generator=None):
        noise = torch.rand(len(obs), self.action_dim, generator=generator) * 2 - 1
        return (0.5 * noise + 0.5 * torch.tanh(torch.as_tensor(obs)[:, :self.action_dim])).numpy()


class _EpisodicSpy(_NoisyAgent):
    def begin_episodes(self, n):
        self.running = n

    def observe_rewards(self, rewards, done):
        assert len(rewards) == self.running
        self.running -= int(np.sum(done))


def test_logged_rollouts_tell_episodic_agents_where_episodes_end_and_collect_keeps_them(synthetic_env):
    spy = _EpisodicSpy(synthetic_env.action_space.shape[0])
    evaluate_logged(synthetic_env, spy, 40, seed=0)
    assert spy.running == 0
    data = dl.collect(synthetic_env, _NoisyAgent(16), 30, seed=1, progress=False).to_dict()
    ends = data["terminals"].astype(bool) | data["timeouts"].astype(bool)
    assert ends.sum() == 30 and np.abs(data["actions"]).max() <= 1
    inside = ~ends[:-1]
    np.testing.assert_array_equal(data["next_observations"][:-1][inside], data["observations"][1:][inside])
    assert data["rewards"].min() >= 1 and data["rewards"].max() <= 5          # the environment's own scale


# ----- Coat: the published numbers and the pipeline --------------------------------------------------------
@pytest.fixture(scope="module")
def coat_env():
    if not (COAT / "train.ascii").is_file():
        pytest.skip(f"the Coat files are not at {COAT}")
    return LoggedEnv("coat", COAT, progress=False)


@needs_coat
def test_coat_counts_and_random_policy_numbers(coat_env):
    data = coat_env.world.data
    assert (len(data.train), len(data.test)) == (6960, 4640)
    assert (data.n_users, data.n_items) == (290, 300)
    assert np.array_equal(coat_env.world.items_from_actions(coat_env.item_embeddings), np.arange(300))
    result = random_policy_rollout(coat_env, n_episodes=5000, seed=0)
    assert result["Length"] == pytest.approx(12.6, abs=0.3)
    assert result["R_avg"] == pytest.approx(2.23, abs=0.03)
    exact = random_policy_rollout(LoggedEnv(world=build_world(data, exact_window=True, progress=False)), 5000, seed=0)
    assert exact["Length"] == pytest.approx(11.6, abs=0.3)   # the exact window makes users leave sooner


@needs_coat
def test_coat_offline_pipeline_trains_dac4rec_and_bc(coat_env):
    dataset = logged_dataset(env=coat_env)
    assert len(dataset) == 6960
    agent = dl.DAC4Rec(dataset.obs_dim, dataset.action_dim, n_steps=5, hidden_dim=64, actor_lr=3e-3, critic_lr=1e-3,
                       gamma=0.9, seed=0)
    log = agent.fit(dataset, steps=60, batch_size=128, progress=False)
    assert np.isfinite(log["critic_loss"]).all()
    bc = dl.GaussianPolicy(dataset.obs_dim, dataset.action_dim, hidden_dim=64)
    arrays = dataset.to_dict()
    dl.train_behavior_cloning(bc, arrays["observations"], arrays["actions"], steps=60, progress=False)

    @torch.no_grad()
    def bc_policy(obs):
        return bc.sample(torch.as_tensor(obs), deterministic=True).numpy()

    results = {"DAC4Rec": evaluate_logged(coat_env, agent, n_episodes=200, seed=0),
               "BC": evaluate_logged(coat_env, bc_policy, n_episodes=200, seed=0)}
    for result in results.values():
        episodes = result["episodes"]
        assert episodes["length"].between(1, 30).all()
        assert 1.0 <= result["R_avg"] <= 5.0
        assert result["R_cumu"] == pytest.approx(episodes["return"].mean())
    # the kit's generic evaluation loop runs on the same environment
    generic = dl.evaluate(coat_env, agent, n_episodes=5, seed=0, progress=False)
    assert {"R_cumu", "R_avg", "Length", "CTR"} <= set(generic)


# ----- DAC4Rec learns from an informative log --------------------------------------------------------------
def test_dac4rec_beats_the_random_policy_on_a_synthetic_low_rank_matrix(synthetic_env):
    start = time.perf_counter()
    dataset = logged_dataset(env=synthetic_env)
    agent = dl.DAC4Rec(dataset.obs_dim, dataset.action_dim, n_steps=5, hidden_dim=64, actor_lr=3e-3,
                       critic_lr=1e-3, gamma=0.9, q_weight=1.0, seed=0)
    agent.fit(dataset, steps=300, batch_size=256, progress=False)
    trained = evaluate_logged(synthetic_env, agent, n_episodes=500, seed=0)
    random = random_policy_rollout(synthetic_env, n_episodes=5000, seed=0)
    assert trained["R_avg"] >= 1.10 * random["R_avg"], (trained["R_avg"], random["R_avg"])
    assert time.perf_counter() - start < 60
