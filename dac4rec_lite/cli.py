"""``python -m dac4rec_lite``: train, evaluate and run the paper's studies from a terminal.

    python -m dac4rec_lite train --method DAC4Rec --preset quick --seeds 0 1 --out runs/
    python -m dac4rec_lite evaluate runs/DAC4Rec-seed0.pt --episodes 1000 --out runs/
    python -m dac4rec_lite study rq4 --preset quick --seeds 0 1 2 3 4 --out results/quick
    python -m dac4rec_lite study all --preset standard --backend ray --address auto --out results/standard

Everything runs on the built-in simulator (``dac4rec_lite/RecSim-v0``) with the mixture dataset. ``study``
writes one CSV per study (``<name>.csv``; ``<name>_runs.csv`` holds every run and is appended to as runs
finish, so rerunning the same command resumes where it stopped) and one self-contained ``report.html``.
Every file is written atomically. A user error (a bad argument, a missing or unreadable checkpoint, a device
that is not there, an output folder that cannot be written) prints one line saying what to do and exits
with status 2; failed study runs exit with status 1 after the others finish.

Which preset runs: ``--preset`` when given (for every part of the run, whatever ``DAC4REC_PRESET`` says);
else ``DAC4REC_PRESET`` when set; else ``quick``.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from typing import Sequence

import pandas as pd

from .presets import ENV_VAR, PRESETS, resolve_preset

__all__ = ["main", "build_parser", "UsageError"]

STUDY_NAMES = ("rq1", "rq2", "rq3", "rq4", "rq5", "energy")
PRESET_HELP = ("sizes: tiny (seconds, CI), quick (minutes), standard (an evening on 2 cores), full (the paper's "
               f"budget). Default: ${ENV_VAR} when set, else quick; an explicit --preset wins over ${ENV_VAR} "
               "for every part of the run")


class UsageError(Exception):
    """A user error discovered after parsing: the CLI prints its message on one line and exits with 2."""


def _seed_tokens(text: str) -> list[int]:
    seeds = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise argparse.ArgumentTypeError(
                f"--seeds takes non-negative integers, e.g. --seeds 0 1 2 (or 0,1,2); got {text!r}")
        seeds.append(int(part))
    if not seeds:
        raise argparse.ArgumentTypeError(f"--seeds needs at least one non-negative integer, got {text!r}")
    return seeds


def _seeds(groups: Sequence[Sequence[int]] | None) -> tuple[int, ...] | None:
    """``--seeds 0 1 2``, ``--seeds 0,1,2`` or both mixed, as one tuple; a repeated seed is a user error."""
    if groups is None:
        return None
    seeds = tuple(s for group in groups for s in group)
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise UsageError(f"--seeds lists seed {', '.join(map(str, repeated))} more than once; give each seed once.")
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
    parser.add_argument("--preset", choices=PRESETS, default=None, help=PRESET_HELP)
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    parser.add_argument("--out", default="dac4rec_runs", help="output folder (created if missing)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def build_parser() -> argparse.ArgumentParser:
    from .experiments.methods import METHODS

    parser = argparse.ArgumentParser(prog="python -m dac4rec_lite", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,evaluate,study}")
    seeds_help = "seeds, space- or comma-separated (e.g. --seeds 0 1 2)"

    train = commands.add_parser("train", help="collect the mixture dataset, train a method, save checkpoints",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--method", default="DAC4Rec", choices=list(METHODS), metavar="METHOD",
                       help=f"one of: {', '.join(METHODS)} (default DAC4Rec)")
    train.add_argument("--encoder", choices=("none", "gru", "sasrec"), default="none", help="sequence encoder")
    train.add_argument("--seeds", type=_seed_tokens, nargs="+", default=None, help=seeds_help + "; one run each (default 0)")
    _common(train)

    evaluate_cmd = commands.add_parser("evaluate", help="evaluate a saved agent on fresh simulated users")
    evaluate_cmd.add_argument("checkpoint", help="a .pt file written by `train` (or agent.save)")
    evaluate_cmd.add_argument("--episodes", type=_positive, default=None, help="users to evaluate (default: the preset's)")
    evaluate_cmd.add_argument("--seeds", type=_seed_tokens, nargs="+", default=None, help=seeds_help + " (default 0)")
    _common(evaluate_cmd)

    study = commands.add_parser(
        "study", help="run the paper's studies and write CSV + an HTML report",
        description="Run a study and write <out>/<name>.csv, <out>/<name>_runs.csv and <out>/report.html (every study "
                    "saved in <out>, not only this one). Each finished "
                    "run is appended to <name>_runs.csv at once; rerunning the same command resumes (finished runs are "
                    "skipped; delete the run table to start afresh). A run that fails twice is named at the end and "
                    "the command exits 1.")
    study.add_argument("name", choices=[*STUDY_NAMES, "all"], help="rq1 … rq5, energy, or all")
    study.add_argument("--seeds", type=_seed_tokens, nargs="+", default=None, help=seeds_help + " (default: the preset's)")
    study.add_argument("--workers", type=_positive, default=None,
                       help="local: parallel processes (default 2, tiny 1); ray: CPUs of a new local instance")
    study.add_argument("--backend", choices=("local", "ray"), default="local",
                       help="local processes (default) or a Ray cluster (pip install ray)")
    study.add_argument("--address", default=None,
                       help="ray only: 'auto' joins the cluster started with `ray start`; default: a new local instance")
    study.add_argument("--encoders", choices=("gru", "sasrec"), nargs="+", default=None,
                       help="rq1 only: the sequence encoders to compare (default: gru sasrec)")
    _common(study)
    return parser


def _check_device(device: str) -> str:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available on this machine; use --device cpu.")
    try:
        torch.empty(0, device=device)
    except (RuntimeError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UsageError(f"--device {device!r} is not available here ({reason}); use --device cpu.") from None
    return device


def _check_out(out: str) -> str:
    """Create ``out`` if needed and check that files can be written in it."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out} is a file, not a folder; give a folder path.")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create the --out folder {out} ({err.strerror or err}); choose another folder.") from None
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise UsageError(f"cannot write in the --out folder {out} ({err.strerror or err}); choose a writable folder.") from None
    return out


def _resolve(args: argparse.Namespace) -> str:
    """One preset for the whole run (see the module docstring), exported as DAC4REC_PRESET while the command
    runs, so that every function and worker process that resolves a preset agrees with it."""
    try:
        preset = resolve_preset(args.preset, explicit=True) if args.preset else resolve_preset("quick")
    except ValueError as err:
        raise UsageError(f"{err} Set {ENV_VAR} to one of them, unset it, or pass --preset.") from None
    os.environ[ENV_VAR] = preset
    return preset


def _write_csv(table: pd.DataFrame, path: str) -> None:
    from .io import atomic_write

    atomic_write(path, lambda f: table.to_csv(f, index=False), mode="w")


def _train(args: argparse.Namespace) -> None:
    import gymnasium as gym

    from .evaluation import collect_mixture
    from .experiments.methods import STUDY_SETTINGS, batch_size_for, build_agent

    settings = STUDY_SETTINGS[args.preset]
    env = gym.make("dac4rec_lite/RecSim-v0")
    encoder = None if args.encoder == "none" else args.encoder
    for seed in args.seeds or (0,):
        dataset = collect_mixture(env, settings["n_episodes"], seed=seed, progress=not args.no_progress)
        agent = build_agent(args.method, dataset.obs_dim, dataset.action_dim, args.preset, seed, encoder,
                            env.unwrapped.obs_layout, device=args.device)
        start = time.time()
        log = agent.fit(dataset, settings["train_steps"], batch_size=batch_size_for(args.method, args.preset),
                        progress=not args.no_progress)
        stem = os.path.join(args.out, f"{args.method.replace(' ', '_')}-seed{seed}")
        agent.save(stem + ".pt")
        _write_csv(log, stem + "_log.csv")
        print(f"{args.method} seed {seed}: {settings['train_steps']} updates in {time.time() - start:.0f} s → {stem}.pt")


def _load_agent(path: str, device: str, obs_dim: int, action_dim: int):
    """The agent in ``path``, checked to fit RecSim-v0's observations and actions (a UsageError otherwise)."""
    from .agents import load_agent
    from .agents.checkpoint import read_checkpoint

    fix = "train one with: python -m dac4rec_lite train --out DIR"
    try:
        config = read_checkpoint(path)["config"]
    except FileNotFoundError:
        raise UsageError(f"no checkpoint at {path}; check the path, or {fix}.") from None
    except (ValueError, OSError) as err:
        raise UsageError(f"cannot read checkpoint {path}: {str(err).splitlines()[0]} ({fix}).") from None
    trained = (config.get("obs_dim"), config.get("action_dim"))
    if trained != (obs_dim, action_dim):
        layout = config.get("obs_layout")
        made = f" (observation layout {tuple(layout)})" if layout else ""
        raise UsageError(f"checkpoint {path} was trained for an environment with observations of size {trained[0]} "
                         f"and actions of size {trained[1]}{made}, not dac4rec_lite/RecSim-v0 ({obs_dim} and {action_dim}), "
                         "the environment `evaluate` runs; evaluate it in Python on the environment it was trained for.")
    try:
        return load_agent(path, device=device)
    except (ValueError, OSError, RuntimeError, KeyError, TypeError) as err:
        raise UsageError(f"cannot load checkpoint {path}: {str(err).splitlines()[0]} ({fix}).") from None


def _evaluate(args: argparse.Namespace) -> None:
    import gymnasium as gym

    from .evaluation import evaluate
    from .experiments.methods import METRICS, STUDY_SETTINGS

    env = gym.make("dac4rec_lite/RecSim-v0")
    agent = _load_agent(args.checkpoint, args.device, env.observation_space.shape[0], env.action_space.shape[0])
    episodes = args.episodes or STUDY_SETTINGS[args.preset]["eval_episodes"]
    rows, name = [], os.path.splitext(os.path.basename(args.checkpoint))[0]
    for seed in args.seeds or (0,):
        result = evaluate(env, agent, episodes, seed=seed, progress=not args.no_progress)
        rows.append({"checkpoint": name, "seed": seed, **{k: result[k] for k in METRICS}})
        _write_csv(result["episodes"], os.path.join(args.out, f"{name}_episodes_seed{seed}.csv"))
    table = pd.DataFrame(rows)
    _write_csv(table, os.path.join(args.out, f"{name}_evaluation.csv"))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def _check_run_table(name: str, path: str) -> None:
    """A study resumes from its run table: refuse one this kit cannot resume (another study's, or one written
    before the runs had flat CTR-by-length columns) instead of mixing it into new results."""
    if not os.path.exists(path):
        return
    try:
        columns = set(pd.read_csv(path, nrows=1).columns)
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise UsageError(f"{path} is not a readable run table ({type(err).__name__}); delete it or choose another --out.") from None
    needed = {"R_cumu@0"} if name == "energy" else {"R_cumu", "CTR_11_20"}
    if columns and not needed <= columns:
        raise UsageError(f"{path} was written by an older kit or another study (no {', '.join(sorted(needed - columns))} "
                         "column), so the study cannot resume from it; delete it or choose another --out.")


def _study(args: argparse.Namespace) -> int:
    from .experiments.results import format_summary, load_saved
    from .experiments.studies import STUDIES, rq2
    from .viz.studies import write_report  # plotting only where a report is written

    names = list(STUDY_NAMES) if args.name == "all" else [args.name]
    if args.encoders is not None and args.name != "rq1":
        raise UsageError(f"--encoders is for rq1 only (the studies compared by encoder), not {args.name}; drop it.")
    common = dict(preset=args.preset, seeds=args.seeds, workers=args.workers, progress=not args.no_progress,
                  device=args.device, backend=args.backend, address=args.address,
                  num_gpus=1.0 if args.device.startswith("cuda") and args.backend == "ray" else 0.0)
    for name in names:
        _check_run_table(name, os.path.join(args.out, f"{name}_runs.csv"))
    results: dict[str, pd.DataFrame] = {}
    failed: list[str] = []
    for name in names:
        start = time.time()
        runs_path = os.path.join(args.out, f"{name}_runs.csv")
        if name == "rq2" and "rq1" in results:  # reuse RQ1's evaluations (same runs, GRU encoder)
            results[name] = rq2(args.preset, runs=results["rq1"])
            _write_csv(results[name].attrs["runs"], runs_path)
        else:
            extra = {"encoders": tuple(dict.fromkeys(args.encoders))} if name == "rq1" and args.encoders else {}
            results[name] = STUDIES[name](**common, **extra, table_path=runs_path)
        table = results[name]
        failed += [f"{name}: {run}" for run in table.attrs.get("failed", [])]
        _write_csv(table, os.path.join(args.out, f"{name}.csv"))
        print(f"\n{name.upper()} ({time.time() - start:.0f} s)\n{format_summary(table).to_string(index=False)}")
    # the report covers every study saved in --out, not only this command's: one command per study still
    # leaves one report of them all
    for name in STUDY_NAMES:
        if name not in results:
            try:
                saved = load_saved(name, args.preset, folder=args.out)
            except (ValueError, OSError, pd.errors.ParserError) as err:
                print(f"report: left out {name} ({err})", file=sys.stderr)
                continue
            if saved is not None:
                results[name] = saved
    results = {name: results[name] for name in STUDY_NAMES if name in results}
    report = write_report(results, os.path.join(args.out, "report.html"),
                          notes=f"preset {args.preset}; simulator dac4rec_lite/RecSim-v0; behaviour logs of "
                                "dac4rec_lite.experiments.methods.BEHAVIOUR_LOGS.")
    print(f"\nreport: {report}")
    if failed:
        print(f"{len(failed)} run(s) failed twice: {'; '.join(failed)}. The tables above leave them out; "
              "rerun the same command to retry only those.", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = os.environ.get(ENV_VAR)
    try:
        args.preset = _resolve(args)
        args.seeds = _seeds(args.seeds)
        if args.command == "study" and args.address is not None and args.backend != "ray":
            raise UsageError("--address is for the ray backend; add --backend ray or drop --address.")
        if args.command == "study" and args.backend == "ray" and importlib.util.find_spec("ray") is None:
            raise UsageError("--backend ray needs Ray, which is not installed: pip install -r requirements.txt "
                             "(it pins ray), or use --backend local.")
        _check_device(args.device)
        _check_out(args.out)
        status = {"train": _train, "evaluate": _evaluate, "study": _study}[args.command](args)
    except UsageError as err:
        parser.exit(2, f"{parser.prog} {args.command}: error: {err}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog} {args.command}: interrupted; finished study runs are saved in their "
                         "run tables, so rerunning the same command resumes.\n")
    finally:  # main() called from Python leaves the caller's environment as it was
        if previous is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = previous
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
