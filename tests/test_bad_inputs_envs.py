"""Bad inputs to the environments, the logged-data loaders and the evaluation loop: each ends in a clear error
(the exception type and a phrase of the message are asserted), nothing is clipped, truncated or dropped.

Issue 19's cases (NaN / out-of-box / non-integer inputs, a bogus split, KuaiRec rows with extra fields, a
catalogue too large for memory) sit beside the ones the kit already handled, so none of them comes back."""
from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import dac4rec_lite as dl
from dac4rec_lite.data.logged import load_coat, load_kuairec, load_movielens, load_yahoo, write_synthetic_coat
from dac4rec_lite.data.logged_world import LeaveRule, build_world
from dac4rec_lite.data.user_model import fit_matrix_factorization
from dac4rec_lite.envs.recsim import MEMORY_BUDGET_BYTES, RecSimConfig
from dac4rec_lite.envs.virtualtaobao import VirtualTaobao
from dac4rec_lite.observation import ObsLayout
from dac4rec_lite.evaluation import episode_metrics, first_pages_ctr, random_policy_rollout, rollout, trace_episode

NAN, INF = float("nan"), float("inf")


# ----- fixtures ----------------------------------------------------------------------------------------
def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


KUAIREC_HEADER = "user_id,video_id,play_duration,video_duration,time,date,timestamp,watch_ratio\n"
KUAIREC_ROWS = ["14,148,4381,6067,2020-07-05 05:27:48.378,20200705.0,1593898068.378,0.722",
                "14,183,11635,6100,2020-07-05 05:28:00.057,20200705.0,1593898080.057,1.907",
                "19,148,2000,6067,2020-07-05 06:00:00.000,20200705.0,1593900000.0,0.33"]


def kuairec(root: Path, rows: list[str], header: str = KUAIREC_HEADER) -> Path:
    folder = root / "kuairec"
    write(folder / "small_matrix.csv", header + "\n".join(rows) + "\n")
    write(folder / "item_categories.csv", 'video_id,feat\n148,"[27, 9]"\n183,[8]\n')
    return folder


def coat(root: Path, train: str = "0 3 0 5 0\n1 0 0 0 2\n0 0 4 4 4\n") -> Path:
    folder = root / "coat"
    write(folder / "train.ascii", train)
    write(folder / "test.ascii", "2 0 1 0 0\n0 5 0 0 0\n0 0 0 0 3\n")
    write(folder / "coat_pseudoGT_ratingM.ascii", "2 3 1 5 4\n1 5 3 2 2\n3 1 4 4 4\n")
    return folder


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    folder = write_synthetic_coat(tmp_path_factory.mktemp("synthetic"), n_users=40, n_items=60, n_clusters=10,
                                  n_train=8, n_test=4, seed=0)
    logged = dl.LoggedEnv("coat", folder, progress=False)
    logged.reset(seed=0)
    recsim = gym.make("dac4rec_lite/RecSim-v0", n_items=50, max_pages=3)
    recsim.reset(seed=0)
    return SimpleNamespace(folder=folder, logged=logged, recsim=recsim, d=logged.action_space.shape[0],
                           tmp=tmp_path_factory.mktemp("files"))


def logged_env(ctx, **kwargs):
    return dl.LoggedEnv("coat", ctx.folder, progress=False, **kwargs)


def fresh_logged(ctx):
    env = dl.LoggedEnv(world=ctx.logged.world)
    env.reset(seed=0)
    return env


def ended_recsim(ctx):
    env = gym.make("dac4rec_lite/RecSim-v0", n_items=50, max_pages=1).unwrapped
    env.reset(seed=0)
    env.step(np.zeros(16, dtype=np.float32))
    return env


def movielens(ctx):
    """A MovieLens log (no test split, no complete matrix: the environment fits a user model)."""
    return load_movielens(write(ctx.tmp / "ml" / "u.data", "1\t1\t5\t10\n1\t2\t3\t11\n2\t1\t4\t12\n").parent)


def movielens_without_test(ctx):
    return dl.LoggedEnv(data=movielens(ctx), progress=False, user_model={"epochs": 1})


class _StillVirtualTB:
    """The smallest object with virtualTB's interface: one user, a response that never ends the episode."""

    def reset(self):
        return np.zeros(91, dtype=np.float32)

    def step(self, action):
        return np.zeros(91, dtype=np.float32), 0, False, {}


def virtual_taobao():
    env = VirtualTaobao(simulator=_StillVirtualTB())
    env.reset(seed=0)
    return env


def kuairec_row(ctx, name, row):
    return load_kuairec(kuairec(ctx.tmp / name, KUAIREC_ROWS[:1] + [row] + KUAIREC_ROWS[2:]))


# ----- the table: (id, call, exception, phrase of the message) -------------------------------------------
CASES = [
    # RecSim-v0 configuration (checked at construction)
    ("recsim n_items=1e8 exceeds the memory budget", lambda c: RecSimConfig(n_items=10**8), ValueError,
     r"over the simulator's memory budget of 2 GiB.*MEMORY_BUDGET_BYTES"),
    ("recsim n_items=0", lambda c: RecSimConfig(n_items=0), ValueError, r"n_items must be an integer >= 1, got 0"),
    ("recsim n_items=2.5", lambda c: RecSimConfig(n_items=2.5), TypeError, r"n_items must be an integer, got 2.5"),
    ("recsim n_items='500'", lambda c: RecSimConfig(n_items="500"), TypeError, r"n_items must be an integer, got '500'"),
    ("recsim action_dim=True", lambda c: RecSimConfig(action_dim=True), TypeError, r"action_dim must be an integer"),
    ("recsim page_size > n_items", lambda c: RecSimConfig(n_items=5, page_size=10), ValueError,
     r"page_size \(10\) cannot exceed n_items \(5\)"),
    ("recsim drift=NaN", lambda c: RecSimConfig(drift=NAN), ValueError, r"drift must be a finite number, got nan"),
    ("recsim drift=1.5", lambda c: RecSimConfig(drift=1.5), ValueError, r"drift must be in \[0, 1\], got 1.5"),
    ("recsim click_scale=inf", lambda c: RecSimConfig(click_scale=INF), ValueError, r"click_scale must be a finite"),
    ("recsim leave_bias=NaN", lambda c: RecSimConfig(leave_bias=NAN), ValueError, r"leave_bias must be a finite"),
    ("recsim leave_bias=np.float32(NaN)", lambda c: RecSimConfig(leave_bias=np.float32("nan")), ValueError,
     r"leave_bias must be a finite"),
    ("recsim profile_noise=-0.1", lambda c: RecSimConfig(profile_noise=-0.1), ValueError, r"profile_noise must be >= 0"),
    ("recsim profile_noise='0.3'", lambda c: RecSimConfig(profile_noise="0.3"), TypeError,
     r"profile_noise must be a number, got '0.3'"),
    ("recsim profile_dim=-1", lambda c: RecSimConfig(profile_dim=-1), ValueError, r"profile_dim must be an integer >= 0"),
    ("recsim catalogue_seed=-1", lambda c: RecSimConfig(catalogue_seed=-1), ValueError, r"catalogue_seed"),
    ("recsim unknown setting", lambda c: gym.make("dac4rec_lite/RecSim-v0", n_itmes=50), TypeError, r"n_itmes"),
    # RecSim-v0 steps
    ("recsim action outside the box", lambda c: c.recsim.unwrapped.step(np.full(16, 2.0)), ValueError,
     r"must lie in \[-1, 1\]\^16.*never clips"),
    ("recsim NaN action", lambda c: c.recsim.unwrapped.step(np.full(16, NAN)), ValueError, r"NaN or inf"),
    ("recsim action of the wrong size", lambda c: c.recsim.unwrapped.step(np.zeros(15)), ValueError,
     r"shape \(1, 16\)"),
    ("recsim step before reset", lambda c: gym.make("dac4rec_lite/RecSim-v0").unwrapped.step(np.zeros(16)),
     RuntimeError, r"reset\(\)"),
    ("recsim step after the episode ended", lambda c: ended_recsim(c).step(np.zeros(16)), RuntimeError,
     r"episode has ended"),
    # Logged-v0 settings (checked before any file is read)
    ("logged leave_threshold=NaN", lambda c: logged_env(c, leave_threshold=NAN), ValueError,
     r"leave_threshold must be a finite number, got nan"),
    ("logged leave_threshold=inf", lambda c: logged_env(c, leave_threshold=INF), ValueError, r"leave_threshold"),
    ("logged leave_threshold=-1", lambda c: logged_env(c, leave_threshold=-1.0), ValueError,
     r"leave_threshold must be >= 0"),
    ("logged leave_window=2.7", lambda c: logged_env(c, leave_window=2.7), TypeError, r"leave_window must be an integer"),
    ("logged max_turn=0", lambda c: logged_env(c, max_turn=0), ValueError, r"max_turn must be an integer >= 1"),
    ("logged window=0", lambda c: logged_env(c, window=0), ValueError, r"window must be an integer >= 1"),
    ("logged window=2.5", lambda c: logged_env(c, window=2.5), TypeError, r"window must be an integer, got 2.5"),
    ("logged embedding_dim='16'", lambda c: logged_env(c, embedding_dim="16"), TypeError, r"embedding_dim"),
    ("logged positive_threshold=NaN", lambda c: logged_env(c, positive_threshold=NAN), ValueError,
     r"positive_threshold must be a finite"),
    ("logged no_repeat='no'", lambda c: logged_env(c, no_repeat="no"), TypeError, r"no_repeat must be True or False"),
    ("logged exact_window=1", lambda c: logged_env(c, exact_window=1), TypeError, r"exact_window must be True or False"),
    ("logged leave_rule='time'", lambda c: logged_env(c, leave_rule="time"), ValueError,
     r"leave_rule must be one of \('distance', 'category'\)"),
    ("logged world of the wrong type", lambda c: dl.LoggedEnv(world="coat"), TypeError, r"world must be a LoggedWorld"),
    ("logged user features the data lacks", lambda c: dl.LoggedEnv(world=c.logged.world, user_features=True),
     ValueError, r"ships no user features"),
    ("logged unknown dataset", lambda c: dl.LoggedEnv("netflix", c.folder), ValueError, r"unknown dataset 'netflix'"),
    ("logged missing folder", lambda c: dl.LoggedEnv("coat", c.tmp / "nowhere"), FileNotFoundError, r"is not a folder"),
    ("leave rule NaN threshold", lambda c: LeaveRule("distance", NAN, 7), ValueError, r"finite number >= 0"),
    ("leave rule unknown kind", lambda c: LeaveRule("time", 1.0, 7), ValueError, r"'distance' or 'category'"),
    ("build_world max_turn=2.5", lambda c: build_world(c.logged.world.data, max_turn=2.5), ValueError,
     r"max_turn must be an integer >= 1"),
    # Logged-v0 steps
    ("logged action outside the box", lambda c: fresh_logged(c).step(np.full(c.d, 2.7)), ValueError,
     r"must lie in \[-1, 1\]\^16.*never clips"),
    ("logged NaN action", lambda c: fresh_logged(c).step(np.full(c.d, NAN)), ValueError, r"NaN or inf"),
    ("logged action of the wrong size", lambda c: fresh_logged(c).step(np.zeros(c.d + 1)), ValueError,
     r"vector of 16 numbers"),
    ("logged step_item(2.7)", lambda c: fresh_logged(c).step_item(2.7), TypeError, r"item must be an integer, got 2.7"),
    ("logged step_item(True)", lambda c: fresh_logged(c).step_item(True), TypeError, r"item must be an integer"),
    ("logged step_item out of range", lambda c: fresh_logged(c).step_item(60), ValueError, r"in \[0, 59\], got 60"),
    ("logged step_item(-1)", lambda c: fresh_logged(c).step_item(-1), ValueError, r"in \[0, 59\], got -1"),
    ("logged step before reset", lambda c: dl.LoggedEnv(world=c.logged.world).step(np.zeros(c.d)), RuntimeError,
     r"call reset\(\)"),
    ("logged reset with an unknown user", lambda c: fresh_logged(c).reset(options={"user": 10**6}), ValueError,
     r"options\['user'\] must be an integer in \[0, 39\]"),
    ("logged reset with user=1.5", lambda c: fresh_logged(c).reset(options={"user": 1.5}), TypeError, r"options\['user'\]"),
    ("user model epochs=NaN", lambda c: dl.LoggedEnv(data=movielens(c), user_model={"epochs": NAN}, progress=False),
     ValueError, r"user model: epochs must be an integer >= 1, got nan"),
    ("user model lr=0", lambda c: fit_matrix_factorization(c.logged.world.data.train, 40, 60, lr=0.0, progress=False),
     ValueError, r"lr must be a finite number > 0"),
    # VirtualTaobao adapter and the observation layout
    ("virtualtaobao action outside the box", lambda c: virtual_taobao().step(np.full(27, 3.0)), ValueError,
     r"\[-1, 1\]\^27.*never clips"),
    ("virtualtaobao NaN action", lambda c: virtual_taobao().step(np.full(27, NAN)), ValueError, r"NaN or inf"),
    ("virtualtaobao action of the wrong size", lambda c: virtual_taobao().step(np.zeros(26)), ValueError,
     r"27 item-attribute weights"),
    ("virtualtaobao step before reset", lambda c: VirtualTaobao(simulator=_StillVirtualTB()).step(np.zeros(27)),
     RuntimeError, r"call reset\(\)"),
    ("ObsLayout window=2.5", lambda c: ObsLayout(profile_dim=0, window=2.5, step_dim=3), TypeError,
     r"ObsLayout.window must be an integer"),
    ("ObsLayout step_dim=1", lambda c: ObsLayout(profile_dim=0, window=2, step_dim=1), ValueError, r"step_dim >= 2"),
    # the offline buffer
    ("logged_dataset split='bogus'", lambda c: dl.logged_dataset(env=c.logged, split="bogus"), ValueError,
     r"split must be one of \('train', 'test'\), got 'bogus'"),
    ("logged_dataset test split that does not ship", lambda c: dl.logged_dataset(env=movielens_without_test(c), split="test"),
     ValueError, r"ships no test log"),
    ("logged_dataset of a RecSim env", lambda c: dl.logged_dataset(env=c.recsim), TypeError, r"expected a LoggedEnv"),
    # loaders: the publisher's formats only
    ("kuairec row with an extra field", lambda c: kuairec_row(c, "k1", KUAIREC_ROWS[1] + ",7"), ValueError,
     r"small_matrix.csv line 3 has 9 fields but the header has 8"),
    ("kuairec every row with an extra field (pandas would shift the columns)",
     lambda c: load_kuairec(kuairec(c.tmp / "k2", [r + ",7" for r in KUAIREC_ROWS])), ValueError,
     r"small_matrix.csv line 2 has 9 fields but the header has 8"),
    ("kuairec negative watch_ratio", lambda c: kuairec_row(c, "k3", KUAIREC_ROWS[1].rsplit(",", 1)[0] + ",-1"),
     ValueError, r"line 3: watch_ratio = -1.0"),
    ("kuairec missing column", lambda c: load_kuairec(kuairec(c.tmp / "k4", [r.rsplit(",", 1)[0] for r in KUAIREC_ROWS],
                                                              KUAIREC_HEADER.replace(",watch_ratio", ""))),
     ValueError, r"lacks column\(s\) \['watch_ratio'\]"),
    ("kuairec semicolon-separated", lambda c: load_kuairec(kuairec(c.tmp / "k5", [r.replace(",", ";") for r in KUAIREC_ROWS],
                                                                   KUAIREC_HEADER.replace(",", ";"))),
     ValueError, r"must be comma-separated"),
    ("coat comma-separated matrix", lambda c: load_coat(coat(c.tmp / "c1", "0 3 0 5 0\n1,0,0,0,2\n0 0 4 4 4\n")),
     ValueError, r"line 2 is not whitespace-separated"),
    ("coat ragged matrix", lambda c: load_coat(coat(c.tmp / "c2", "0 3 0 5 0\n1 0 0 2\n0 0 4 4 4\n")), ValueError,
     r"line 2 has 4 values but line 1 has 5"),
    ("coat rating 7", lambda c: load_coat(coat(c.tmp / "c3", "0 3 0 5 0\n1 0 0 0 7\n0 0 4 4 4\n")), ValueError,
     r"outside 0..5"),
    ("movielens with commas", lambda c: load_movielens(write(c.tmp / "m1" / "u.data", "1,2,3,4\n").parent), ValueError,
     r"separated by tabs"),
    ("movielens rating 6", lambda c: load_movielens(write(c.tmp / "m2" / "u.data", "1\t2\t6\t4\n").parent), ValueError,
     r"rating = 6 is out of range"),
    ("yahoo test ids beyond the training file's",
     lambda c: load_yahoo(write(write(c.tmp / "y" / "ydata-ymusic-rating-study-v1_0-train.txt", "1\t1\t5\n").parent
                                / "ydata-ymusic-rating-study-v1_0-test.txt", "2\t1\t4\n").parent),
     ValueError, r"user id 2 is out of range"),
    # evaluation inputs
    ("n_episodes=0", lambda c: dl.evaluate(c.recsim, dl.envs.MyopicPolicy(), 0), ValueError, r"n_episodes must be a positive"),
    ("n_episodes=2.5", lambda c: dl.evaluate(c.recsim, dl.envs.MyopicPolicy(), 2.5), ValueError, r"n_episodes"),
    ("seed=-1", lambda c: dl.evaluate(c.recsim, dl.envs.MyopicPolicy(), 2, seed=-1), ValueError, r"seed must be a non-negative"),
    ("seed=1.5", lambda c: dl.collect(c.recsim, dl.envs.MyopicPolicy(), 2, seed=1.5), ValueError, r"seed"),
    ("batch_size=0", lambda c: rollout(c.recsim, dl.envs.MyopicPolicy(), 2, batch_size=0), ValueError, r"batch_size"),
    ("policy given by name", lambda c: dl.evaluate(c.recsim, "expert", 2), TypeError, r"policy must be an agent"),
    ("policy function of two arguments", lambda c: dl.evaluate(c.recsim, lambda obs, users: obs, 2), TypeError,
     r"policy\(obs\) or policy\(obs, users, rng\)"),
    ("not a gymnasium environment", lambda c: dl.evaluate("RecSim-v0", dl.envs.MyopicPolicy(), 2), TypeError,
     r"gymnasium environment"),
    ("policy outside the box (recsim)", lambda c: dl.evaluate(c.recsim, lambda obs: np.full((len(obs), 16), 1.5), 2),
     ValueError, r"\[-1, 1\]\^16"),
    ("policy outside the box (logged)", lambda c: dl.evaluate_logged(c.logged, lambda obs: np.full((len(obs), 16), 1.5), 2),
     ValueError, r"\[-1, 1\]\^16"),
    ("policy returning NaN (logged)", lambda c: dl.evaluate_logged(c.logged, lambda obs: np.full((len(obs), 16), NAN), 2),
     ValueError, r"NaN or inf"),
    ("evaluate_logged on RecSim", lambda c: dl.evaluate_logged(c.recsim, dl.envs.MyopicPolicy(), 2), TypeError,
     r"expected a LoggedEnv"),
    ("random_policy_rollout on RecSim", lambda c: random_policy_rollout(c.recsim, 2), TypeError, r"expected a LoggedEnv"),
    ("trace_episode on Logged-v0", lambda c: trace_episode(c.logged, lambda obs: np.zeros((len(obs), 16))), ValueError,
     r"needs RecSim-v0"),
    ("trace_episode max_pages=0", lambda c: trace_episode(c.recsim, dl.envs.MyopicPolicy(), max_pages=0), ValueError,
     r"max_pages must be a positive integer"),
    ("trace_episode seed=-3", lambda c: trace_episode(c.recsim, dl.envs.MyopicPolicy(), seed=-3), ValueError, r"seed"),
    ("first_pages_ctr pages=0", lambda c: first_pages_ctr(pd.DataFrame({"step": [0], "clicks": [1], "shown": [10]}), 0),
     ValueError, r"pages must be a positive integer"),
    ("collect_mixture unknown component", lambda c: dl.collect_mixture(c.recsim, 3, components=("oracle",)), ValueError,
     r"components must be names"),
    ("metrics without the items shown", lambda c: episode_metrics(pd.DataFrame({"return": [1.0], "length": [2], "clicks": [1]})),
     ValueError, r"'shown' column .* or page_size"),
]


@pytest.mark.parametrize("call, error, message", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_raises_a_clear_error(ctx, call, error, message):
    with pytest.raises(error, match=message):
        call(ctx)


def test_the_table_is_large_enough_and_names_are_unique():
    assert len(CASES) >= 30 and len({case[0] for case in CASES}) == len(CASES)


def test_a_huge_catalogue_is_refused_in_milliseconds_before_any_allocation():
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"needs 11\.9 GiB"):
        gym.make("dac4rec_lite/RecSim-v0", n_items=10**8)
    assert time.perf_counter() - start < 0.5
    # the budget is what the tables need: the largest allowed catalogue builds, one item more is refused
    largest = MEMORY_BUDGET_BYTES // (8 * 16) - 16
    assert RecSimConfig(n_items=largest).table_bytes <= MEMORY_BUDGET_BYTES
    with pytest.raises(ValueError, match="memory budget"):
        RecSimConfig(n_items=largest + 1)


def test_in_box_actions_and_integer_items_still_play(ctx):
    """The refusals above are not over-eager: the box's edge, numpy integers and item embeddings are fine."""
    env = fresh_logged(ctx)
    _, _, _, _, info = env.step(np.ones(ctx.d, dtype=np.float32))             # on the edge of the box
    _, _, _, _, info = env.step_item(np.int64(3))
    assert info["item"] == 3
    env.reset(options={"user": np.int64(2)})
    _, reward, *_ = env.step(env.item_embeddings[5])
    assert reward == env.world.rewards[2, 5]
