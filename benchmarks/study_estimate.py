"""How long would the studies take at a preset? Measured pieces, extrapolated.

Every run of a study collects its behaviour log, fits ``train_steps`` updates, for energy methods trains f_ψ
(supports for up to 4,096 states from the N-step chain, then ``energy_steps`` steps) and evaluates
``eval_episodes`` fresh users (the energy study: once per guidance scale). Running each piece at the preset's
size is the point of the estimate, so this script times each piece briefly at those sizes and scales it:

* collection: a tenth of the preset's sessions from the run's behaviour log, × 10;
* updates: the best of ``--repeats`` fits of ``--updates`` updates, per update × ``train_steps`` (energy
  methods train the same updates, then f_ψ, timed on its own);
* f_ψ: ``fit_energy`` with 1 and 1 + m steps (m = 50, or fewer when the preset trains fewer), best of
  ``--repeats`` each: the difference is m steps' cost, the rest the supports' cost (a difference of two
  larger times, so noisy: the best of several keeps one slow repeat from counting 600-fold);
* evaluation: ``--eval-users`` users (default: the preset's count, at most 100), × ``eval_episodes`` / that,
  at each guidance scale the run evaluates (users step in lockstep in batches of up to 1,000, so with fewer
  users than the run evaluates this over-estimates: small batches cost more per user). The agent being
  timed is barely trained, so its sessions may be shorter or longer than a trained agent's.

The runs are the studies' own: each study function of ``dac4rec_lite.experiments.studies`` is called with
its ``run_study`` replaced by one that records the runs and stops, so the lists (methods, encoders, N values,
behaviour logs, guidance scales) are exactly the ones ``python -m dac4rec_lite study`` would run. Each distinct
(method, encoder, overrides) is measured once, with one torch thread (as the studies run). ``rq1-gru`` /
``rq1-sasrec`` are RQ1 with one encoder; ``rq2`` adds no runs beside RQ1 (``study all`` reads Table 3 from
RQ1's GRU runs); ``all`` is ``study all``.

Times are the process's CPU seconds (``time.process_time``): with one thread that is the wall time the piece
takes on an idle core, and it does not grow when other work shares the machine (wall time does). Totals are
given serially and on k cores: the CLI runs the studies one after another and each study's runs k at a time
in order (each run starts on the first core to come free), simulated here per study.

    python benchmarks/study_estimate.py [--preset full --studies all --updates 5 --repeats 2 --cores 2 8 32 128]
    python benchmarks/study_estimate.py --preset standard --studies rq1-gru rq4 rq5 energy --cores 2
    python benchmarks/study_estimate.py --preset quick --studies energy --compare results/quick/energy_runs.csv
"""
from __future__ import annotations

import argparse
import contextlib
import heapq
import os
import time
from typing import Iterator, Sequence

import gymnasium as gym
import pandas as pd
import torch

from dac4rec_lite.agents.base import OfflineAgent
from dac4rec_lite.cli import STUDY_NAMES
from dac4rec_lite.evaluation import collect_mixture, evaluate
from dac4rec_lite.experiments import studies
from dac4rec_lite.experiments.methods import STUDY_SETTINGS, EnergyRun, Run, batch_size_for, build_agent
from dac4rec_lite.presets import ENV_VAR, PRESETS

# what ``--studies`` accepts → (study function name, its keyword arguments)
STUDY_CHOICES: dict[str, tuple[str, dict]] = {
    "rq1": ("rq1", {}), "rq1-gru": ("rq1", {"encoders": ("gru",)}), "rq1-sasrec": ("rq1", {"encoders": ("sasrec",)}),
    "rq2": ("rq2", {}), "rq3": ("rq3", {}), "rq4": ("rq4", {}), "rq5": ("rq5", {}), "energy": ("energy", {}),
}
ALL = STUDY_NAMES  # ``study all``


class _Captured(Exception):
    def __init__(self, runs: list[Run]):
        self.runs = runs


@contextlib.contextmanager
def _recording() -> Iterator[None]:
    """``studies.run_study`` records its runs and stops; ``DAC4REC_PRESET`` is unset (the preset asked for wins)."""
    original, preset_var = studies.run_study, os.environ.pop(ENV_VAR, None)

    def record(runs, *args, **kwargs):
        raise _Captured(list(runs))

    studies.run_study = record
    try:
        yield
    finally:
        studies.run_study = original
        if preset_var is not None:
            os.environ[ENV_VAR] = preset_var


def study_runs(preset: str, names: Sequence[str] = ("all",)) -> list[tuple[str, Run]]:
    """(study, run) for every run the named studies execute at ``preset``, in the order they run; ``"all"``
    is ``study all``. ``rq2`` contributes no runs when RQ1's GRU runs are already among them (as in
    ``study all``), else its own."""
    if preset not in PRESETS:
        raise ValueError(f"preset {preset!r} is not a preset; choose one of {', '.join(PRESETS)}.")
    names = [n for name in names for n in (ALL if name == "all" else (name,))]
    unknown = [n for n in names if n not in STUDY_CHOICES]
    if unknown:
        raise ValueError(f"unknown study {unknown}; choose among {', '.join([*STUDY_CHOICES, 'all'])}.")
    names = list(dict.fromkeys(names))
    out: list[tuple[str, Run]] = []
    with _recording():
        for name in names:
            if name == "rq2" and {"rq1", "rq1-gru"} & set(names):
                continue
            function, kwargs = STUDY_CHOICES[name]
            try:
                getattr(studies, function)(preset, progress=False, **kwargs)
            except _Captured as captured:
                out += [(name, run) for run in captured.runs]
            else:  # pragma: no cover - a study that ran nothing through run_study
                raise RuntimeError(f"study {name} did not hand its runs to run_study; the estimate cannot see them.")
    return out


def config_key(run: Run) -> tuple:
    """What a run's training cost depends on: method, encoder and overrides (not the seed or the log)."""
    return run.method, run.encoder, run.overrides


def config_name(key: tuple) -> str:
    method, encoder, overrides = key
    return " ".join([method, *([encoder] if encoder else []), *(f"{k}={v}" for k, v in overrides)])


def makespan(durations: Sequence[float], cores: int) -> float:
    """Wall time of ``durations`` run in order, ``cores`` at a time, each starting on the first core to come
    free (the runner's pool): never less than the longest, nor than the total / cores."""
    if cores < 1:
        raise ValueError(f"cores must be ≥ 1, got {cores}.")
    free = [0.0] * min(cores, max(1, len(durations)))
    for d in durations:
        heapq.heappush(free, heapq.heappop(free) + d)
    return max(free)


def _timed(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def measure(preset: str, runs: Sequence[Run], updates: int, repeats: int, eval_users: int | None,
            log=print) -> tuple[dict[tuple, dict[str, float]], dict[tuple, float], dict[tuple, float]]:
    """Time the pieces of every distinct run configuration. Returns the seconds per configuration (of the
    updates and of f_ψ), of collection per behaviour log and of evaluation per (configuration, scales)."""
    settings = STUDY_SETTINGS[preset]
    env = gym.make("dac4rec_lite/RecSim-v0")
    users = min(eval_users or 100, settings["eval_episodes"])
    sessions = max(1, settings["n_episodes"] // 10)

    collect: dict[tuple, float] = {}
    for components in dict.fromkeys(run.components for run in runs):
        seconds = _timed(lambda: collect_mixture(env, sessions, seed=0, components=components, progress=False))
        collect[components] = seconds * settings["n_episodes"] / sessions
    # the run's own amount of data (at most 1,000 sessions) to sample batches and f_ψ's states from
    data = collect_mixture(env, min(settings["n_episodes"], 1000), seed=0, progress=False)

    rows, evals = {}, {}
    for key in dict.fromkeys(config_key(run) for run in runs):
        method, encoder, overrides = key
        agent = build_agent(method, data.obs_dim, data.action_dim, preset, 0, encoder, env.unwrapped.obs_layout,
                            **dict(overrides))
        has_energy = getattr(agent, "energy_model", None) is not None
        batch = batch_size_for(method, preset)

        def fit(steps: int) -> None:  # the updates only (f_ψ is timed on its own below)
            (OfflineAgent.fit(agent, data, steps, batch_size=batch, progress=False) if has_energy
             else agent.fit(data, steps, batch_size=batch, progress=False))

        fit(1)
        per_update = min(_timed(lambda: fit(updates)) for _ in range(repeats)) / updates
        energy = 0.0
        if has_energy:  # f_ψ with 1 and 1 + m steps, best of ``repeats`` each: the difference is m steps' cost
            m = min(settings["energy_steps"] - 1, 50)
            one = min(_timed(lambda: agent.fit_energy(data, 1, progress=False)) for _ in range(repeats))
            more = min(_timed(lambda: agent.fit_energy(data, 1 + m, progress=False)) for _ in range(repeats)) if m else one
            per_step = max(0.0, (more - one) / m) if m else 0.0
            energy = one + per_step * (settings["energy_steps"] - 1)
        for scales in dict.fromkeys(getattr(r, "scales", None) for r in runs if config_key(r) == key):
            seconds = 0.0
            for scale in scales or (None,):
                if scale is not None:
                    agent.config.energy_scale = float(scale)
                seconds += _timed(lambda: evaluate(env, agent, users, seed=10_000, progress=False))
            evals[key, scales] = seconds * settings["eval_episodes"] / users
        rows[key] = {"s / update": per_update, "updates (s)": per_update * settings["train_steps"],
                     "f_ψ (s)": energy}
        log(f"  measured {config_name(key)}: {per_update:.4g} s / update", flush=True)
    return rows, collect, evals


def run_seconds(run: Run, configs: dict, collect: dict, evals: dict) -> dict[str, float]:
    """One run's estimated seconds by piece."""
    key = config_key(run)
    return {"collection (s)": collect[run.components], "updates (s)": configs[key]["updates (s)"],
            "f_ψ (s)": configs[key]["f_ψ (s)"], "evaluation (s)": evals[key, getattr(run, "scales", None)]}


def estimate(preset: str, names: Sequence[str], updates: int = 5, repeats: int = 2, eval_users: int | None = None,
             cores: Sequence[int] = (2,), log=print) -> dict[str, pd.DataFrame]:
    """Measure and extrapolate. Returns ``per_run`` (one row per configuration and evaluation: its runs and
    minutes per run by piece), ``per_study`` (runs, serial hours, hours on each k in ``cores``) and ``runs``
    (every run with its estimated seconds)."""
    runs = study_runs(preset, names)
    configs, collect, evals = measure(preset, [r for _, r in runs], updates, repeats, eval_users, log)
    rows = []
    for study, run in runs:
        pieces = run_seconds(run, configs, collect, evals)
        rows.append({"study": study, "run": config_name(config_key(run)),
                     "evaluations": len(getattr(run, "scales", None) or (None,)), **pieces,
                     "seconds": sum(pieces.values())})
    flat = pd.DataFrame(rows)
    per_run = flat.groupby(["study", "run"], sort=False).agg(
        runs=("seconds", "size"), evaluations=("evaluations", "first"),
        **{c: (c, "mean") for c in ("collection (s)", "updates (s)", "f_ψ (s)", "evaluation (s)")},
        minutes=("seconds", lambda s: s.mean() / 60))
    per_study = flat.groupby("study", sort=False)["seconds"].agg(runs="size", serial=lambda s: s.sum() / 3600)
    per_study = per_study.rename(columns={"serial": "serial (h)"})
    for k in cores:
        per_study[f"{k} cores (h)"] = [makespan(part["seconds"].tolist(), k) / 3600
                                       for _, part in flat.groupby("study", sort=False)]
    return {"per_run": per_run, "per_study": per_study, "runs": flat}


def compare(result: dict[str, pd.DataFrame], path: str) -> pd.DataFrame:
    """Estimated against measured seconds per method (and encoder) of a run table (``<study>_runs.csv``, whose
    ``train_seconds`` = updates + f_ψ and ``eval_seconds`` = every evaluation, both wall clock; collection is
    not timed there)."""
    measured = pd.read_csv(path)
    flat = result["runs"]
    rows = []
    encoder = measured["encoder"].fillna("none") if "encoder" in measured else pd.Series("none", measured.index)
    names = measured["method"].where(encoder.eq("none"), measured["method"] + " " + encoder)
    for name, part in measured.groupby(names, sort=False):
        mine = flat[flat["run"] == name]
        if mine.empty:
            continue
        train = float((mine["updates (s)"] + mine["f_ψ (s)"]).mean())
        ev = float(mine["evaluation (s)"].mean())
        rows.append({"run": name, "runs": len(part), "measured train (s)": part["train_seconds"].mean(),
                     "estimated train (s)": train, "estimate / measured (train)": train / part["train_seconds"].mean(),
                     "measured eval (s)": part["eval_seconds"].mean(), "estimated eval (s)": ev,
                     "estimate / measured (eval)": ev / part["eval_seconds"].mean()})
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=PRESETS, default="full")
    parser.add_argument("--studies", nargs="+", choices=[*STUDY_CHOICES, "all"], default=["all"])
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--eval-users", type=int, default=None, help="default: the preset's count, at most 100")
    parser.add_argument("--cores", type=int, nargs="+", default=[2, 8, 32, 128])
    parser.add_argument("--compare", metavar="RUNS_CSV", default=None,
                        help="a run table with train_seconds / eval_seconds to set the estimate against")
    args = parser.parse_args(argv)
    for name, value in (("--updates", args.updates), ("--repeats", args.repeats), ("--eval-users", args.eval_users),
                        *(("--cores", k) for k in args.cores)):
        if value is not None and not value >= 1:
            parser.error(f"{name} must be ≥ 1, got {value}.")
    torch.set_num_threads(1)
    result = estimate(args.preset, args.studies, args.updates, args.repeats, args.eval_users, args.cores)
    settings = STUDY_SETTINGS[args.preset]
    fmt = lambda v: f"{v:.3g}"  # noqa: E731
    print(f"\nper run at --preset {args.preset} (1 torch thread; {args.updates} updates × best of {args.repeats}, "
          f"scaled to {settings['train_steps']}; {settings['eval_episodes']} users per evaluation; "
          f"{settings['n_episodes']} sessions; CPU seconds)")
    print(result["per_run"].to_string(float_format=fmt))
    per_study = result["per_study"]
    print(f"\n{' '.join(args.studies)} at --preset {args.preset} (hours; on k cores: each study's runs k at a time, "
          "studies one after another)")
    print(per_study.to_string(float_format=fmt))
    longest = result["runs"]["seconds"].max() / 3600
    print(f"total: {int(per_study['runs'].sum())} runs, {per_study['serial (h)'].sum():.3g} h serially; "
          + ", ".join(f"k={k}: {per_study[f'{k} cores (h)'].sum():.3g} h" for k in args.cores)
          + f" (the longest run: {longest:.3g} h)")
    if args.compare:
        print(f"\nestimate against {args.compare} (measured wall seconds; under load they are upper bounds)")
        print(compare(result, args.compare).to_string(index=False, float_format=fmt))


if __name__ == "__main__":
    main()
