"""Loaders for the logged recommendation datasets of the paper's offline study, read exactly as their
publishers ship them.

| name        | files (in the folder you name)                                                        |
|-------------|---------------------------------------------------------------------------------------|
| coat        | ``train.ascii``, ``test.ascii`` (dense users × items, 0 = unobserved); optional        |
|             | ``user_item_features/`` and the completed matrix ``coat_pseudoGT_ratingM.ascii``       |
| movielens   | ml-100k: ``u.data`` (tab: user item rating timestamp); ml-1m: ``ratings.dat``           |
|             | (``UserID::MovieID::Rating::Timestamp``); which one is detected from the folder         |
| kuairec     | ``small_matrix.csv`` and/or ``big_matrix.csv`` (user_id, video_id, …, watch_ratio),     |
|             | ``item_categories.csv`` (video_id, feat); the files may sit in a ``data/`` subfolder    |
| kuairand    | KuaiRand-Pure: ``log_standard_*.csv`` (user_id, video_id, time_ms, is_click, …),        |
|             | optional ``log_random_*.csv`` (test) and ``video_features_basic_pure.csv`` (tag)        |
| yahoo       | ``ydata-ymusic-rating-study-v1_0-train.txt`` / ``-test.txt`` (tab: user item rating);   |
|             | optional completed matrix ``yahoo_pseudoGT_ratingM.ascii`` (RL4Rec)                   |

Nothing is downloaded: you fetch each dataset from its publisher (``docs/real_data.md`` says where) and
pass its folder, or set ``DAC4REC_DATA`` to that folder or to a folder holding one subfolder per dataset.
Anything that is not the published format fails with a ``ValueError`` that names the file, the line and the
fix; a missing folder or file with a ``FileNotFoundError`` that says what was looked for.

Every loader returns a ``LoggedData``: the training log as a table ``user, item, reward, time`` with
0-based contiguous ids, each user's rows in the order the user produced them (by timestamp; Coat and Yahoo
have none, so matrix/file order), plus what else the publisher ships.
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .parsing import check_range, index_ids, read_csv, read_delimited, read_dense_matrix, sorted_log, to_numbers

__all__ = [
    "DATASETS", "LoggedData", "find_dataset", "load_logged", "load_coat", "load_movielens", "load_kuairec",
    "load_kuairand", "load_yahoo", "read_dense_matrix", "write_synthetic_coat", "coat_or_synthetic",
]

DATA_ENV_VAR = "DAC4REC_DATA"

# Where each dataset comes from (also in the README and docs/real_data.md).
SOURCES = {
    "coat": "https://www.cs.cornell.edu/~schnabts/mnar/ (Schnabel et al., ICML 2016)",
    "movielens": "https://grouplens.org/datasets/movielens/ (ml-100k or ml-1m)",
    "kuairec": "https://kuairec.com/ (KuaiRec 2.0)",
    "kuairand": "https://kuairand.com/ (KuaiRand-Pure)",
    "yahoo": "https://webscope.sandbox.yahoo.com/ (R3, Yahoo! Music ratings for user-selected and random songs)",
}
# Sub-folder names tried under DAC4REC_DATA (case-insensitive), as each archive unpacks.
_FOLDER_NAMES = {
    "coat": ("coat",),
    "movielens": ("ml-1m", "ml-100k", "movielens", "movielens-1m", "movielens-100k"),
    "kuairec": ("KuaiRec 2.0", "KuaiRec", "KuaiRec2.0", "kuairec"),
    "kuairand": ("KuaiRand-Pure", "kuairand-pure", "KuaiRand", "kuairand"),
    "yahoo": ("yahoo", "yahoo-r3", "yahoo_r3", "YahooR3", "R3", "ydata-ymusic-rating-study-v1_0"),
}
DATASETS = tuple(_FOLDER_NAMES)

YAHOO_TRAIN = "ydata-ymusic-rating-study-v1_0-train.txt"
YAHOO_TEST = "ydata-ymusic-rating-study-v1_0-test.txt"


@dataclass
class LoggedData:
    """A logged dataset as its publisher ships it, with 0-based contiguous ids.

    Attributes:
        name: ``coat``, ``movielens-100k``, ``movielens-1m``, ``kuairec``, ``kuairand`` or ``yahoo``.
        train: the training log, columns ``user, item, reward, time`` (``time`` NaN when the data has
            none); rows grouped by user, each user's rows in the order the user produced them.
        test: the test log in the same layout, or None.
        n_users, n_items: sizes of the id spaces (every id in ``train``/``test`` is below them).
        reward_name: what ``reward`` is (``rating``, ``watch_ratio``, ``is_click``).
        reward_range: (low, high) of the reward scale, used to min–max normalise rewards.
        reward_matrix: a complete (n_users, n_items) reward matrix shipped beside the data (Coat's and
            Yahoo's pseudo ground truth), or None: the environment then fits a user model on ``train``.
        observed_rewards: KuaiRec only: the fully observed ``small_matrix`` as (users, items, watch_ratio)
            arrays; it overrides the user model where it has a value.
        env_users: users an environment episode may start with (None: all). KuaiRec: the small matrix's.
        item_categories: per item, a tuple of category ids (KuaiRec, KuaiRand), or None.
        user_features: (n_users, f) array (Coat's one-hot user features), or None.
        user_ids, item_ids: the publisher's ids, indexed by the 0-based ids.
        folder: where the files were read from.
    """

    name: str
    train: pd.DataFrame
    test: pd.DataFrame | None
    n_users: int
    n_items: int
    reward_name: str
    reward_range: tuple[float, float]
    reward_matrix: np.ndarray | None = None
    observed_rewards: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    env_users: np.ndarray | None = None
    item_categories: list[tuple[int, ...]] | None = None
    user_features: np.ndarray | None = None
    user_ids: np.ndarray | None = None
    item_ids: np.ndarray | None = None
    folder: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def family(self) -> str:
        """The dataset family (``movielens`` for both MovieLens sizes), which picks the leave rule."""
        return self.name.split("-")[0]

    def rating_matrix(self, split: str = "train") -> np.ndarray:
        """The log as a dense (n_users, n_items) matrix, 0 where unobserved (the last value of repeats)."""
        table = self.train if split == "train" else self.test
        if table is None:
            raise ValueError(f"{self.name} has no {split} log.")
        matrix = np.zeros((self.n_users, self.n_items), dtype=np.float32)
        matrix[table["user"].to_numpy(), table["item"].to_numpy()] = table["reward"].to_numpy()
        return matrix

    def __repr__(self) -> str:
        test = "none" if self.test is None else f"{len(self.test)} rows"
        return (f"LoggedData({self.name!r}, users={self.n_users}, items={self.n_items}, train={len(self.train)} rows, "
                f"test={test}, reward={self.reward_name} in {self.reward_range}, "
                f"complete matrix={'yes' if self.reward_matrix is not None else 'no'})")


# ----- finding folders ------------------------------------------------------------------------------------
def _family(name: str) -> str:
    key = str(name).lower().replace("_", "-")
    aliases = {"ml-1m": "movielens", "ml-100k": "movielens", "movielens-1m": "movielens",
               "movielens-100k": "movielens", "kuairand-pure": "kuairand", "yahoo-r3": "yahoo", "yahoor3": "yahoo"}
    key = aliases.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    return key


def _has_files(folder: Path, family: str) -> bool:
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    data = {p.name for p in (folder / "data").iterdir()} if (folder / "data").is_dir() else set()
    both = names | data
    if family == "coat":
        return "train.ascii" in names
    if family == "movielens":
        return "u.data" in names or "ratings.dat" in names
    if family == "kuairec":
        return bool({"small_matrix.csv", "big_matrix.csv"} & both)
    if family == "kuairand":
        return any(n.startswith("log_standard") and n.endswith(".csv") for n in both)
    return YAHOO_TRAIN in names


def find_dataset(name: str, path: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding dataset ``name``: ``path`` when given, else ``$DAC4REC_DATA``.

    The folder may hold the dataset's files directly or one sub-folder per dataset (``coat/``, ``ml-1m/``,
    ``KuaiRec 2.0/``, ``KuaiRand-Pure/``, ``yahoo/`` …). Raises ``FileNotFoundError`` saying what was looked
    for and where to get the data."""
    family = _family(name)
    if path is None:
        env = os.environ.get(DATA_ENV_VAR)
        if not env:
            raise FileNotFoundError(
                f"no folder given for {family} and {DATA_ENV_VAR} is not set. Download it from {SOURCES[family]}, "
                f"unpack it, and pass path=FOLDER or set {DATA_ENV_VAR}=FOLDER (the dataset's folder, or a folder "
                f"holding one sub-folder per dataset). Nothing is downloaded automatically."
            )
        root, source = Path(env).expanduser(), f"{DATA_ENV_VAR}={env!r}"
    else:
        root, source = Path(path).expanduser(), f"path={os.fspath(path)!r}"
    if not root.is_dir():
        raise FileNotFoundError(f"{source}: {root} is not a folder. Point it at the unpacked {family} dataset "
                                f"({SOURCES[family]}).")
    if _has_files(root, family):
        return root
    children = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    for candidate in _FOLDER_NAMES[family]:
        sub = children.get(candidate.lower())
        if sub is not None and _has_files(sub, family):
            return sub
    listing = ", ".join(sorted(p.name for p in root.iterdir())[:12]) or "(empty)"
    raise FileNotFoundError(
        f"{source}: no {family} files in {root} (it holds: {listing}), nor in a sub-folder named "
        f"{' / '.join(_FOLDER_NAMES[family])}. Expected {_expected_files(family)}; get them from {SOURCES[family]}."
    )


def _expected_files(family: str) -> str:
    return {
        "coat": "train.ascii and test.ascii",
        "movielens": "u.data (ml-100k) or ratings.dat (ml-1m)",
        "kuairec": "small_matrix.csv and/or big_matrix.csv, item_categories.csv",
        "kuairand": "log_standard_*.csv (KuaiRand-Pure)",
        "yahoo": f"{YAHOO_TRAIN} and {YAHOO_TEST}",
    }[family]


def load_logged(name: str, path: str | os.PathLike[str] | None = None) -> LoggedData:
    """Load dataset ``name`` (coat, movielens, kuairec, kuairand, yahoo) from ``path`` or ``$DAC4REC_DATA``."""
    family = _family(name)
    folder = find_dataset(family, path)
    return {"coat": load_coat, "movielens": load_movielens, "kuairec": load_kuairec, "kuairand": load_kuairand,
            "yahoo": load_yahoo}[family](folder)


# ----- parsing helpers ------------------------------------------------------------------------------------
def _require_file(folder: Path, name: str, dataset: str) -> Path:
    path = folder / name
    if not path.is_file():
        listing = ", ".join(sorted(p.name for p in folder.iterdir())[:12]) if folder.is_dir() else "(not a folder)"
        raise FileNotFoundError(f"{dataset}: {path} is missing (the folder holds: {listing}). "
                                f"Use the files exactly as the publisher ships them ({SOURCES[_family(dataset.split('-')[0])]}).")
    return path


# ----- Coat -----------------------------------------------------------------------------------------------
def load_coat(folder: str | os.PathLike[str]) -> LoggedData:
    """Coat (Schnabel et al. 2016): ``train.ascii`` / ``test.ascii`` dense users × items, ratings 1..5, 0 =
    unobserved. Optional: ``user_item_features/user_features.ascii`` and ``coat_pseudoGT_ratingM.ascii`` (the
    completed matrix EasyRL4Rec uses as ground truth; no zeros). Coat has no timestamps: each user's log is in
    item order (matrix order)."""
    folder = Path(folder)
    what = "coat"
    train = read_dense_matrix(_require_file(folder, "train.ascii", what), what, allowed=(0, 5))
    test = read_dense_matrix(_require_file(folder, "test.ascii", what), what, allowed=(0, 5), shape=train.shape)
    n_users, n_items = train.shape
    reward_matrix = None
    gt_path = folder / "coat_pseudoGT_ratingM.ascii"
    if gt_path.is_file():
        reward_matrix = read_dense_matrix(gt_path, what, integer=False, allowed=(1, 5), shape=train.shape)
    user_features = None
    feature_path = folder / "user_item_features" / "user_features.ascii"
    if feature_path.is_file():
        user_features = read_dense_matrix(feature_path, what, allowed=(0, 1)).astype(np.float32)
        if user_features.shape[0] != n_users:
            raise ValueError(f"coat: user_features.ascii has {user_features.shape[0]} rows but train.ascii has "
                             f"{n_users} users; they must describe the same users.")
    def table(matrix: np.ndarray) -> pd.DataFrame:
        users, items = np.nonzero(matrix)  # row-major: each user's items in matrix order
        return sorted_log(users, items, matrix[users, items], None)
    return LoggedData(
        name="coat", train=table(train), test=table(test), n_users=n_users, n_items=n_items, reward_name="rating",
        reward_range=(1.0, 5.0), reward_matrix=None if reward_matrix is None else reward_matrix.astype(np.float32),
        user_features=user_features, user_ids=np.arange(n_users), item_ids=np.arange(n_items), folder=folder,
    )


# ----- MovieLens ------------------------------------------------------------------------------------------
def load_movielens(folder: str | os.PathLike[str]) -> LoggedData:
    """MovieLens ml-100k (``u.data``: tab-separated user item rating timestamp) or ml-1m (``ratings.dat``:
    ``UserID::MovieID::Rating::Timestamp``), detected from the folder. Ratings 1..5, ids from 1. No test split
    ships with ml-1m (ml-100k's u1..u5 splits are ignored): ``test`` is None."""
    folder = Path(folder)
    if (folder / "ratings.dat").is_file():
        name, file, sep, sep_name = "movielens-1m", "ratings.dat", "::", "'::'"
    elif (folder / "u.data").is_file():
        name, file, sep, sep_name = "movielens-100k", "u.data", "\t", "tabs"
    else:
        raise FileNotFoundError(f"movielens: {folder} has neither u.data (ml-100k) nor ratings.dat (ml-1m); "
                                f"unpack ml-100k.zip or ml-1m.zip from {SOURCES['movielens']} and point at its folder.")
    raw = read_delimited(folder / file, sep, ["user", "item", "rating", "timestamp"], name, sep_name)
    users = to_numbers(raw, "user", name, file, integer=True)
    items = to_numbers(raw, "item", name, file, integer=True)
    ratings = to_numbers(raw, "rating", name, file, integer=True)
    times = to_numbers(raw, "timestamp", name, file, integer=True)
    check_range(users, "user id", name, file, 1)
    check_range(items, "movie id", name, file, 1)
    check_range(ratings, "rating", name, file, 1, 5)
    user_ids, (u,) = index_ids(users)
    item_ids, (i,) = index_ids(items)
    return LoggedData(name=name, train=sorted_log(u, i, ratings, times), test=None, n_users=len(user_ids),
                      n_items=len(item_ids), reward_name="rating", reward_range=(1.0, 5.0), user_ids=user_ids,
                      item_ids=item_ids, folder=folder)


# ----- KuaiRec --------------------------------------------------------------------------------------------
WATCH_RATIO_CAP = 5.0  # EasyRL4Rec caps watch_ratio at 5 (looped videos reach hundreds)


def _data_folder(folder: Path, marker) -> Path:
    return folder / "data" if not marker(folder) and (folder / "data").is_dir() and marker(folder / "data") else folder


def _parse_categories(values: pd.Series, ids: np.ndarray, what: str, file: str, empty: tuple[int, ...]) -> dict:
    categories = {}
    for row, (item, text) in enumerate(zip(ids, values)):
        if pd.isna(text) or str(text).strip() in ("", "[]"):
            categories[int(item)] = empty
            continue
        tokens = re.findall(r"-?\d+", str(text))
        if not tokens or re.sub(r"[\[\]\s,\-\d]", "", str(text)):
            raise ValueError(f"{what}: {file} line {row + 2}: {text!r} is not a list of category ids "
                             f"(expected e.g. '[8]' or '[27, 9]').")
        categories[int(item)] = tuple(int(t) for t in tokens)
    return categories


def load_kuairec(folder: str | os.PathLike[str]) -> LoggedData:
    """KuaiRec 2.0 (Gao et al. 2022): ``big_matrix.csv`` is the training log and ``small_matrix.csv`` the fully
    observed block (1411 users × 3327 videos) that, as in EasyRL4Rec, defines the environment: its users start
    the episodes, its videos are the items, and its watch ratios are the rewards where observed. Rows of the
    big matrix on other videos are dropped. With only one of the two files, it serves as both. Reward:
    ``watch_ratio`` capped at 5; order: ``timestamp`` (rows without one go last, in file order).
    ``item_categories.csv`` (video_id, feat such as "[27, 9]") feeds the leave rule."""
    folder = _data_folder(Path(folder), lambda f: (f / "small_matrix.csv").is_file() or (f / "big_matrix.csv").is_file())
    what = "kuairec"
    columns = ["user_id", "video_id", "watch_ratio", "timestamp"]
    small_path, big_path = folder / "small_matrix.csv", folder / "big_matrix.csv"
    if not small_path.is_file() and not big_path.is_file():
        raise FileNotFoundError(f"kuairec: neither small_matrix.csv nor big_matrix.csv in {folder}; get KuaiRec 2.0 "
                                f"from {SOURCES['kuairec']}.")
    tables = {}
    for key, path in (("small", small_path), ("big", big_path)):
        if path.is_file():
            raw = read_csv(path, columns, what)
            tables[key] = {c: to_numbers(raw, c, what, path.name, integer=c.endswith("_id"), first_line=2)
                           for c in columns}
            check_range(tables[key]["user_id"], "user_id", what, path.name, 0, first_line=2)
            check_range(tables[key]["video_id"], "video_id", what, path.name, 0, first_line=2)
            ratio = tables[key]["watch_ratio"]
            bad = ~np.isfinite(ratio) | (ratio < 0)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise ValueError(f"kuairec: {path.name} line {row + 2}: watch_ratio = {ratio[row]} (must be a "
                                 f"non-negative number).")
    env_table = tables.get("small", tables.get("big"))
    log_table = tables.get("big", tables.get("small"))
    env_videos = np.unique(env_table["video_id"])
    keep = np.isin(log_table["video_id"], env_videos)
    user_ids, (u_log, u_env) = index_ids(log_table["user_id"][keep], env_table["user_id"])
    item_ids = env_videos
    i_log, i_env = np.searchsorted(item_ids, log_table["video_id"][keep]), np.searchsorted(item_ids, env_table["video_id"])
    cap = lambda x: np.minimum(x, WATCH_RATIO_CAP)
    train = sorted_log(u_log, i_log, cap(log_table["watch_ratio"][keep]), log_table["timestamp"][keep])
    categories = None
    cat_path = folder / "item_categories.csv"
    if cat_path.is_file():
        raw = read_csv(cat_path, ["video_id", "feat"], what)
        ids = to_numbers(raw, "video_id", what, cat_path.name, integer=True, first_line=2)
        by_video = _parse_categories(raw["feat"], ids, what, cat_path.name, empty=(-1,))
        missing = [int(v) for v in item_ids if int(v) not in by_video]
        if missing:
            raise ValueError(f"kuairec: item_categories.csv has no row for video_id {missing[0]} "
                             f"({len(missing)} video(s) of the log missing).")
        categories = [by_video[int(v)] for v in item_ids]
    notes = [] if "big" in tables else ["big_matrix.csv not found: small_matrix.csv serves as the log too."]
    return LoggedData(
        name="kuairec", train=train, test=None, n_users=len(user_ids), n_items=len(item_ids),
        reward_name="watch_ratio", reward_range=(0.0, WATCH_RATIO_CAP),
        observed_rewards=(u_env, i_env, cap(env_table["watch_ratio"])), env_users=np.unique(u_env),
        item_categories=categories, user_ids=user_ids, item_ids=item_ids, folder=folder, notes=notes,
    )


# ----- KuaiRand -------------------------------------------------------------------------------------------
def load_kuairand(folder: str | os.PathLike[str]) -> LoggedData:
    """KuaiRand-Pure (Gao et al. 2022): the ``log_standard_*.csv`` files are the training log, the
    ``log_random_*.csv`` file (random exposures) the test log. Reward: ``is_click``; order: ``time_ms``.
    ``video_features_basic_pure.csv`` (its ``tag`` column, e.g. "2,73") feeds the leave rule; a video without
    tags gets the category -1, as in EasyRL4Rec."""
    def marker(f: Path) -> bool:
        return f.is_dir() and any(p.name.startswith("log_standard") and p.suffix == ".csv" for p in f.iterdir())
    folder = _data_folder(Path(folder), marker)
    what = "kuairand"
    columns = ["user_id", "video_id", "time_ms", "is_click"]
    standard = sorted(folder.glob("log_standard*.csv"))
    if not standard:
        raise FileNotFoundError(f"kuairand: no log_standard_*.csv in {folder}; get KuaiRand-Pure from {SOURCES['kuairand']}.")
    def read(paths: list[Path]) -> dict[str, np.ndarray]:
        parts = []
        for path in paths:
            raw = read_csv(path, columns, what)
            part = {c: to_numbers(raw, c, what, path.name, integer=True, first_line=2) for c in columns}
            check_range(part["user_id"], "user_id", what, path.name, 0, first_line=2)
            check_range(part["video_id"], "video_id", what, path.name, 0, first_line=2)
            check_range(part["is_click"], "is_click", what, path.name, 0, 1, first_line=2)
            parts.append(part)
        return {c: np.concatenate([p[c] for p in parts]) for c in columns}
    log = read(standard)
    random_paths = sorted(folder.glob("log_random*.csv"))
    test = read(random_paths) if random_paths else None
    all_users = [log["user_id"]] + ([test["user_id"]] if test else [])
    all_items = [log["video_id"]] + ([test["video_id"]] if test else [])
    user_ids, user_index = index_ids(*all_users)
    item_ids, item_index = index_ids(*all_items)
    train = sorted_log(user_index[0], item_index[0], log["is_click"], log["time_ms"])
    test_table = sorted_log(user_index[1], item_index[1], test["is_click"], test["time_ms"]) if test else None
    categories = None
    feature_paths = sorted(folder.glob("video_features_basic*.csv"))
    if feature_paths:
        raw = read_csv(feature_paths[0], ["video_id", "tag"], what)
        ids = to_numbers(raw, "video_id", what, feature_paths[0].name, integer=True, first_line=2)
        by_video = _parse_categories(raw["tag"], ids, what, feature_paths[0].name, empty=(-1,))
        categories = [by_video.get(int(v), (-1,)) for v in item_ids]
    return LoggedData(name="kuairand", train=train, test=test_table, n_users=len(user_ids), n_items=len(item_ids),
                      reward_name="is_click", reward_range=(0.0, 1.0), item_categories=categories,
                      user_ids=user_ids, item_ids=item_ids, folder=folder)


# ----- Yahoo R3 -------------------------------------------------------------------------------------------
def load_yahoo(folder: str | os.PathLike[str]) -> LoggedData:
    """Yahoo! R3 (Marlin & Zemel 2009): ``…-train.txt`` (ratings of songs users chose) and ``…-test.txt``
    (ratings of 10 random songs for 5400 users), tab-separated ``user item rating``, ids from 1, ratings 1..5.
    No timestamps: each user's log is in file order. An optional completed matrix
    ``yahoo_pseudoGT_ratingM.ascii`` (RL4Rec, users × items) is used as the ground-truth reward when present."""
    folder = Path(folder)
    what = "yahoo"
    parts = {}
    for key, file in (("train", YAHOO_TRAIN), ("test", YAHOO_TEST)):
        raw = read_delimited(_require_file(folder, file, what), "\t", ["user", "item", "rating"], what, "tabs")
        part = {c: to_numbers(raw, c, what, file, integer=True) for c in ("user", "item", "rating")}
        check_range(part["user"], "user id", what, file, 1)
        check_range(part["item"], "item id", what, file, 1)
        check_range(part["rating"], "rating", what, file, 1, 5)
        parts[key] = part
    n_users, n_items = int(parts["train"]["user"].max()), int(parts["train"]["item"].max())
    for column, limit in (("user", n_users), ("item", n_items)):
        over = parts["test"][column] > limit
        if over.any():
            row = int(np.flatnonzero(over)[0])
            raise ValueError(f"yahoo: {YAHOO_TEST} line {row + 1}: {column} id {parts['test'][column][row]} is out of "
                             f"range: the training file's {column} ids are 1..{limit}. Are the two files from the same "
                             f"release?")
    tables = {key: sorted_log(p["user"] - 1, p["item"] - 1, p["rating"], None) for key, p in parts.items()}
    reward_matrix = None
    gt_path = folder / "yahoo_pseudoGT_ratingM.ascii"
    if gt_path.is_file():
        reward_matrix = read_dense_matrix(gt_path, what, integer=False, allowed=(1, 5),
                                          shape=(n_users, n_items)).astype(np.float32)
    return LoggedData(name="yahoo", train=tables["train"], test=tables["test"], n_users=n_users, n_items=n_items,
                      reward_name="rating", reward_range=(1.0, 5.0), reward_matrix=reward_matrix,
                      user_ids=np.arange(1, n_users + 1), item_ids=np.arange(1, n_items + 1), folder=folder)


# ----- a synthetic stand-in ------------------------------------------------------------------------------
def write_synthetic_coat(folder: str | os.PathLike[str], n_users: int = 290, n_items: int = 300, rank: int = 3,
                         n_clusters: int = 40, n_train: int = 24, n_test: int = 16, selection: float = 2.0,
                         seed: int = 0) -> Path:
    """Write a SYNTHETIC dataset in Coat's exact format (not Coat): a low-rank rating matrix as
    ``coat_pseudoGT_ratingM.ascii``, ``train.ascii`` with ``n_train`` ratings per user on items the user chose
    (self-selection: item k drawn ∝ exp(selection · score), so the log is informative, as Coat's is) and
    ``test.ascii`` with ``n_test`` ratings on uniformly random items. For notebooks and tests run without the
    real files. Returns the folder.

    Ratings: ``clip(round(2.6 + quality_i + 0.6 u·v_i / √rank), 1, 5)``, u, v ~ N(0, I). Items come in
    ``n_clusters`` groups of near-copies (v_i and quality_i jittered around their group's), so that, as in
    Coat, some item columns lie close together and Coat's leave rule (distance 6, window 7) gives episodes
    of about a dozen turns to a random policy."""
    if n_train + n_test > n_items:
        raise ValueError(f"n_train + n_test = {n_train + n_test} exceeds n_items = {n_items}.")
    rng = np.random.default_rng(seed)
    users = rng.normal(0, 1, (n_users, rank))
    group = rng.integers(0, n_clusters, n_items)
    items = rng.normal(0, 1, (n_clusters, rank))[group] + rng.normal(0, 0.15, (n_items, rank))
    quality = rng.normal(0, 0.6, n_clusters)[group] + rng.normal(0, 0.1, n_items)
    scores = 2.6 + quality + 0.6 * users @ items.T / np.sqrt(rank)
    ratings = np.clip(np.round(scores), 1, 5).astype(int)
    train = np.zeros_like(ratings)
    test = np.zeros_like(ratings)
    for u in range(n_users):
        logits = selection * scores[u]
        p = np.exp(logits - logits.max())
        chosen = rng.choice(n_items, n_train, replace=False, p=p / p.sum())
        train[u, chosen] = ratings[u, chosen]
        rest = np.setdiff1d(np.arange(n_items), chosen)
        shown = rng.choice(rest, n_test, replace=False)
        test[u, shown] = ratings[u, shown]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, matrix in (("train.ascii", train), ("test.ascii", test), ("coat_pseudoGT_ratingM.ascii", ratings)):
        np.savetxt(folder / name, matrix, fmt="%d", delimiter=" ")
    (folder / "SYNTHETIC_NOT_COAT.txt").write_text(
        f"Synthetic data in Coat's file format, written by dac4rec_lite.write_synthetic_coat(seed={seed}); "
        "not the Coat dataset.\n")
    return folder


def coat_or_synthetic(path: str | os.PathLike[str] | None = None, synthetic_folder: str | os.PathLike[str] | None = None,
                      seed: int = 0) -> tuple[Path, bool]:
    """Coat's folder (``path`` or ``$DAC4REC_DATA``, as ``find_dataset``) when it is there; otherwise a
    synthetic stand-in in Coat's format written by ``write_synthetic_coat`` to ``synthetic_folder`` (default: a
    new temporary folder). Returns ``(folder, is_synthetic)``; notebooks use it so they run without the files."""
    try:
        return find_dataset("coat", path), False
    except FileNotFoundError:
        folder = Path(synthetic_folder) if synthetic_folder is not None else Path(tempfile.mkdtemp(prefix="synthetic_coat_"))
        return write_synthetic_coat(folder, seed=seed), True
