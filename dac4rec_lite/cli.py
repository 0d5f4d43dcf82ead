"""``python -m dac4rec_lite``: train, evaluate and run the paper's studies from a terminal.

    python -m dac4rec_lite train --method DAC4Rec --preset quick --seeds 0,1 --out runs/
    python -m dac4rec_lite evaluate runs/DAC4Rec-seed0.pt --episodes 1000 --out runs/
    python -m dac4rec_lite study rq3 --preset quick --out results/

Everything runs on the built-in simulator (``dac4rec_lite/RecSim-v0``) with the mixture dataset. ``study``
writes one CSV per study (``<rq>.csv``, and ``<rq>_runs.csv`` with every seed) and one self-contained
``report.html``. Bad arguments print a clear message and exit with status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence

import gymnasium as gym
import pandas as pd
import torch

from .agents import load_agent
from .evaluation import collect_mixture, evaluate
from .studies import METHODS, STUDIES, STUDY_SETTINGS, batch_size_for, build_agent, format_table, rq2
from .utils import PRESETS

__all__ = ["main", "build_parser"]


class UsageError(Exception):
    """A bad argument discovered after parsing (a missing file, a device that is not there)."""


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(",") if part.strip() != "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes integers separated by commas (e.g. 0,1,2), got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"--seeds needs at least one non-negative integer, got {text!r}")
    return seeds


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=PRESETS, default="quick", help="sizes: tiny (seconds), quick (minutes), full")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    parser.add_argument("--out", default="dac4rec_runs", help="output folder (created if missing)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dac4rec_lite", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,evaluate,study}")

    train = commands.add_parser("train", help="collect the mixture dataset, train a method, save checkpoints")
    train.add_argument("--method", default="DAC4Rec", choices=list(METHODS), metavar="METHOD",
                       help=f"one of: {', '.join(METHODS)} (default DAC4Rec)")
    train.add_argument("--encoder", choices=("none", "gru", "sasrec"), default="none", help="sequence encoder")
    train.add_argument("--seeds", type=_seeds, default=(0,), help="comma-separated seeds, one run each (default 0)")
    _common(train)

    evaluate_cmd = commands.add_parser("evaluate", help="evaluate a saved agent on fresh simulated users")
    evaluate_cmd.add_argument("checkpoint", help="a .pt file written by `train` (or agent.save)")
    evaluate_cmd.add_argument("--episodes", type=_positive, default=None, help="users to evaluate (default: the preset's)")
    evaluate_cmd.add_argument("--seeds", type=_seeds, default=(0,), help="evaluation seeds (default 0)")
    _common(evaluate_cmd)

    study = commands.add_parser("study", help="run the paper's studies and write CSV + an HTML report")
    study.add_argument("name", choices=[*STUDIES, "all"], help="rq1 … rq5, or all")
    study.add_argument("--seeds", type=_seeds, default=None, help="override the preset's seeds")
    study.add_argument("--workers", type=_positive, default=None, help="parallel processes (default: 2, tiny: 1)")
    _common(study)
    return parser


def _check_device(device: str) -> str:
    try:
        torch.empty(0, device=device)
    except (RuntimeError, ValueError) as err:
        raise UsageError(f"--device {device!r} is not available here ({err}); use --device cpu.") from None
    return device


def _train(args: argparse.Namespace) -> None:
    settings = STUDY_SETTINGS[args.preset]
    env = gym.make("dac4rec_lite/RecSim-v0")
    encoder = None if args.encoder == "none" else args.encoder
    for seed in args.seeds:
        dataset = collect_mixture(env, settings["n_episodes"], seed=seed, progress=not args.no_progress)
        agent = build_agent(args.method, dataset.obs_dim, dataset.action_dim, args.preset, seed, encoder,
                            env.unwrapped.obs_layout, device=args.device)
        start = time.time()
        log = agent.fit(dataset, settings["train_steps"], batch_size=batch_size_for(args.method, args.preset),
                        progress=not args.no_progress)
        stem = os.path.join(args.out, f"{args.method.replace(' ', '_')}-seed{seed}")
        agent.save(stem + ".pt")
        log.to_csv(stem + "_log.csv", index=False)
        print(f"{args.method} seed {seed}: {settings['train_steps']} updates in {time.time() - start:.0f} s → {stem}.pt")


def _load_agent(path: str, device: str):
    try:
        return load_agent(path, device=device)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(f"{err} Train one with: python -m dac4rec_lite train --out DIR") from None


def _evaluate(args: argparse.Namespace) -> None:
    agent = _load_agent(args.checkpoint, args.device)
    env = gym.make("dac4rec_lite/RecSim-v0")
    episodes = args.episodes or STUDY_SETTINGS[args.preset]["eval_episodes"]
    rows, name = [], os.path.splitext(os.path.basename(args.checkpoint))[0]
    for seed in args.seeds:
        result = evaluate(env, agent, episodes, seed=seed, progress=not args.no_progress)
        rows.append({"checkpoint": name, "seed": seed, **{k: result[k] for k in ("R_cumu", "R_avg", "Length", "CTR")}})
        result["episodes"].to_csv(os.path.join(args.out, f"{name}_episodes_seed{seed}.csv"), index=False)
    table = pd.DataFrame(rows)
    table.to_csv(os.path.join(args.out, f"{name}_evaluation.csv"), index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def _study(args: argparse.Namespace) -> None:
    from .viz.studies import write_report  # plotting only where a report is written

    names = list(STUDIES) if args.name == "all" else [args.name]
    common = dict(preset=args.preset, seeds=args.seeds, workers=args.workers, progress=not args.no_progress)
    results: dict[str, pd.DataFrame] = {}
    for name in names:
        start = time.time()
        if name == "rq2" and "rq1" in results:  # reuse RQ1's evaluations (same runs, GRU encoder)
            results[name] = rq2(args.preset, runs=results["rq1"])
        else:
            results[name] = STUDIES[name](**common)
        table = results[name]
        table.to_csv(os.path.join(args.out, f"{name}.csv"), index=False)
        if "runs" in table.attrs:
            table.attrs["runs"].to_csv(os.path.join(args.out, f"{name}_runs.csv"), index=False)
        shown = table if name == "rq2" else format_table(table)
        print(f"\n{name.upper()} ({time.time() - start:.0f} s)\n{shown.to_string(index=False)}")
    report = write_report(results, os.path.join(args.out, "report.html"),
                          notes=f"preset {args.preset}; simulator dac4rec_lite/RecSim-v0; mixture dataset.")
    print(f"\nreport: {report}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check_device(args.device)
        os.makedirs(args.out, exist_ok=True)
        {"train": _train, "evaluate": _evaluate, "study": _study}[args.command](args)
    except UsageError as err:
        parser.exit(2, f"{parser.prog} {args.command}: error: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
