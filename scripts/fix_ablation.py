"""Issue 15's per-fix ablation: DAC4Rec with one of the four fixes undone, paired with results/quick's RQ1 rows.

The kit has no switch to undo a fix (each one corrects the maths), so this script undoes it for the length of
a run by replacing one function:

* ``no-target-encoder`` (fix 1): the target encoder is hard-copied from the online one after every update
  (Polyak rate 1 for the encoder only), so the TD target encodes s′ with the online encoder, as before the fix.
  The target critic and target policy keep τ.
* ``raw-kappa`` (fix 2): f_ψ's targets use κ·Q in reward units (``standardize=False``) with κ = 0.3, the value
  the studies had to use before κ was made unit-free.

``control`` undoes nothing, to check that a run here reproduces the reference row. Fix 3 (awr's clip) does
not touch the default ``direct`` action approximation, and fix 4 is a setting (``policy_encoder``, measured
in docs/backbones.md), so neither needs this script.

    python scripts/fix_ablation.py control no-target-encoder raw-kappa --seeds 0 1 2 3 4 --out runs/fix_ablation

Each run is DAC4Rec at the quick RQ1 settings with the GRU encoder (the same logged data and evaluation users
per seed as results/quick/rq1_runs.csv); the script prints each ablation − the committed DAC4Rec row, paired by
seed, with a 95 % t-interval. Runs go one after another in this process with one torch thread, as the
studies' workers run them (the replaced function would not reach worker processes); each ablation's finished
runs are kept in ``<out>/<ablation>_runs.csv`` and skipped when the command is rerun.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys

import pandas as pd

from dac4rec_lite.agents import diffusion_actor, encoding
from dac4rec_lite.critics import soft_update
from dac4rec_lite.experiments.methods import Run, execute_run
from dac4rec_lite.experiments.paired import mean_interval
from dac4rec_lite.experiments.runner import execute

RAW_KAPPA = 0.3  # the studies' κ in reward units before fix 2


@contextlib.contextmanager
def _no_target_encoder():
    original = encoding.AgentEncoders.update_critic_target

    def hard_copy(self, tau: float) -> None:
        soft_update(self.target_encoder, self.encoder, 1.0)

    encoding.AgentEncoders.update_critic_target = hard_copy
    try:
        yield
    finally:
        encoding.AgentEncoders.update_critic_target = original


@contextlib.contextmanager
def _raw_kappa():
    original = diffusion_actor.train_energy

    @functools.wraps(original)
    def raw(*args, **kwargs):
        return original(*args, **{**kwargs, "standardize": False, "beta": RAW_KAPPA})

    diffusion_actor.train_energy = raw
    try:
        yield
    finally:
        diffusion_actor.train_energy = original


# "control" undoes nothing: its rows must equal the reference's (same seed → same numbers).
ABLATIONS = {"control": contextlib.nullcontext, "no-target-encoder": _no_target_encoder, "raw-kappa": _raw_kappa}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ablations", nargs="+", choices=sorted(ABLATIONS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--reference", default="results/quick/rq1_runs.csv")
    parser.add_argument("--out", default="runs/fix_ablation", help="folder of the run tables, <ablation>_runs.csv")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.reference):
        parser.exit(2, f"{args.reference} not found: run `python -m dac4rec_lite study rq1 --preset quick "
                       "--out results/quick` first, or pass --reference.\n")
    reference = pd.read_csv(args.reference)
    reference = reference[(reference["method"] == "DAC4Rec") & (reference["encoder"] == "gru")].set_index("seed")
    os.makedirs(args.out, exist_ok=True)
    for name in args.ablations:
        runs = [Run("DAC4Rec", seed, "quick", encoder="gru") for seed in args.seeds]
        with ABLATIONS[name]():  # in this process (workers=1, one torch thread), so the replacement applies
            rows, failed = execute(runs, execute_run, table_path=os.path.join(args.out, f"{name}_runs.csv"),
                                   workers=1, progress=True)
        if failed:
            print(f"{name}: failed runs {failed}", file=sys.stderr)
            return 1
        rows = rows.set_index("seed").loc[args.seeds]
        for metric in ("R_cumu", "CTR", "Length"):
            with_fix = reference.loc[args.seeds, metric].to_numpy(dtype=float)
            print(f"{name}: with the fix − without, {metric}: {mean_interval(with_fix - rows[metric].to_numpy(dtype=float))}; "
                  f"without, per seed {rows[metric].astype(float).round(3).tolist()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
