"""``python -m dac4rec_lite``: the end-to-end path at tiny, and every user error exiting 2 with one line."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

import dac4rec_lite as dl
import dac4rec_lite.studies  # noqa: F401  (dl.studies)
from dac4rec_lite.cli import main


def cli(*argv: str, env: dict[str, str] | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter (one torch thread) and return the finished process."""
    environment = {k: v for k, v in os.environ.items() if k != "DAC4REC_PRESET"}
    environment.update(OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "dac4rec_lite", *argv], capture_output=True, text=True,
                          timeout=timeout, env=environment)


def one_line_error(done: subprocess.CompletedProcess, phrase: str) -> None:
    """Exit status 2, no traceback, one line on stderr that contains ``phrase``."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert phrase in lines[-1], done.stderr
    assert len([line for line in lines if "error:" in line]) == 1, done.stderr


pytestmark = pytest.mark.usefixtures("no_preset_one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny DAC4Rec checkpoint trained by the CLI itself."""
    out = tmp_path_factory.mktemp("trained")
    assert main(["train", "--method", "DAC4Rec", "--preset", "tiny", "--seeds", "0", "--out", str(out), "--no-progress"]) == 0
    return out / "DAC4Rec-seed0.pt"


def test_train_evaluate_study_end_to_end(tmp_path, checkpoint):
    out = str(tmp_path)
    assert os.path.exists(str(checkpoint).replace(".pt", "_log.csv"))
    assert main(["evaluate", str(checkpoint), "--preset", "tiny", "--episodes", "5", "--seeds", "0", "1", "--out", out,
                 "--no-progress"]) == 0
    evaluation = pd.read_csv(os.path.join(out, "DAC4Rec-seed0_evaluation.csv"))
    assert evaluation["seed"].tolist() == [0, 1] and evaluation[["R_cumu", "R_avg", "Length", "CTR"]].notna().all().all()
    assert main(["study", "rq3", "--preset", "tiny", "--out", out, "--no-progress"]) == 0
    assert pd.read_csv(os.path.join(out, "rq3.csv"))["n_steps"].tolist() == [3, 5]
    assert os.path.exists(os.path.join(out, "rq3_runs.csv")) and os.path.exists(os.path.join(out, "report.html"))
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]        # atomic writes leave no temp files


def test_seeds_take_spaces_or_commas_and_reach_the_study(tmp_path):
    out = str(tmp_path)
    assert main(["study", "rq4", "--preset", "tiny", "--seeds", "0", "1,2", "--out", out, "--no-progress"]) == 0
    runs = pd.read_csv(os.path.join(out, "rq4_runs.csv"))
    assert sorted(runs["seed"].unique()) == [0, 1, 2] and len(runs) == 9
    summary = pd.read_csv(os.path.join(out, "rq4.csv"))
    assert (summary["n_seeds"] == 3).all()


def test_explicit_preset_wins_over_the_environment_for_every_part(tmp_path, monkeypatch):
    monkeypatch.setenv("DAC4REC_PRESET", "quick")
    out = str(tmp_path)
    assert main(["train", "--method", "BC", "--preset", "tiny", "--out", out, "--no-progress"]) == 0
    log = pd.read_csv(os.path.join(out, "BC-seed0_log.csv"))
    assert len(log) <= dl.presets.table["tiny"]["study"]["train_steps"]            # tiny's 8 updates, not quick's 1000
    assert main(["study", "rq4", "--preset", "tiny", "--out", out, "--no-progress"]) == 0
    assert len(pd.read_csv(os.path.join(out, "rq4_runs.csv"))) == 3                 # tiny's one seed, not quick's five
    assert os.environ["DAC4REC_PRESET"] == "quick"                                    # the caller's environment is restored


def test_help_states_the_preset_rule():
    done = cli("study", "--help")
    assert done.returncode == 0 and "energy" in done.stdout and "--backend" in done.stdout
    assert "explicit --preset wins over $DAC4REC_PRESET" in " ".join(done.stdout.split())
    top = cli("--help")
    assert top.returncode == 0 and "train" in top.stdout and "study" in top.stdout


@pytest.mark.parametrize("argv, phrase", [
    (["study", "rq9"], "invalid choice"),
    (["train", "--seeds", "a,b"], "--seeds takes non-negative integers"),
    (["train", "--seeds", "-1"], "--seeds takes non-negative integers"),
    (["train", "--seeds", "0", "0"], "more than once"),
    (["train", "--method", "PPO"], "invalid choice"),
    (["train", "--device", "nosuchdevice"], "not available"),
    (["study", "rq4", "--address", "auto"], "--address is for the ray backend"),
    (["study", "rq4", "--encoders", "gru"], "--encoders is for rq1 only"),
    (["study", "rq1", "--encoders", "lstm"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, argv, phrase):
    one_line_error(cli(*argv, "--out", str(tmp_path)) if argv[1] != "rq9" else cli(*argv), phrase)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_cuda(tmp_path):
    one_line_error(cli("train", "--preset", "tiny", "--device", "cuda", "--out", str(tmp_path)), "CUDA is not available")


def test_bogus_preset_variable(tmp_path):
    done = cli("train", "--out", str(tmp_path), env={"DAC4REC_PRESET": "bogus"})
    one_line_error(done, "DAC4REC_PRESET='bogus' is not a preset")


def test_out_under_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    one_line_error(cli("train", "--preset", "tiny", "--out", str(tmp_path / "file" / "runs")), "cannot create the --out folder")
    one_line_error(cli("train", "--preset", "tiny", "--out", str(tmp_path / "file")), "is a file, not a folder")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_out_unwritable(tmp_path):
    if os.geteuid() == 0:  # root writes through permission bits: use a folder no one can create files in
        if not os.path.isdir("/proc/self"):
            pytest.skip("needs /proc (Linux) when run as root")
        one_line_error(cli("train", "--preset", "tiny", "--out", "/proc/self"), "cannot write in the --out folder")
        return
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        one_line_error(cli("train", "--preset", "tiny", "--out", str(locked)), "cannot write in the --out folder")
    finally:
        locked.chmod(0o700)


def test_missing_and_corrupt_checkpoints(tmp_path, checkpoint):
    one_line_error(cli("evaluate", str(tmp_path / "missing.pt"), "--out", str(tmp_path)), "no checkpoint at")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    one_line_error(cli("evaluate", str(tmp_path / "junk.pt"), "--out", str(tmp_path)), "cannot read checkpoint")
    flipped = bytearray(checkpoint.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF                                                # one byte in the weights
    (tmp_path / "flipped.pt").write_bytes(bytes(flipped))
    done = cli("evaluate", str(tmp_path / "flipped.pt"), "--preset", "tiny", "--out", str(tmp_path))
    one_line_error(done, "flipped.pt")


def test_checkpoint_of_another_environment(tmp_path):
    dl.BehaviorCloning(12, 3, hidden_dim=8, seed=0).save(tmp_path / "other.pt")
    done = cli("evaluate", str(tmp_path / "other.pt"), "--preset", "tiny", "--out", str(tmp_path))
    one_line_error(done, "observations of size 12 and actions of size 3")
    assert "RecSim-v0" in done.stderr


def test_ray_backend_without_ray_or_with_it(tmp_path):
    try:
        import ray  # noqa: F401
    except ImportError:
        one_line_error(cli("study", "rq4", "--preset", "tiny", "--backend", "ray", "--out", str(tmp_path)),
                       "needs Ray")
    else:
        pytest.skip("Ray is installed: tests/test_runner.py runs the ray backend")


def test_written_files_are_complete_csvs(tmp_path, checkpoint):
    assert main(["evaluate", str(checkpoint), "--preset", "tiny", "--episodes", "3", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    episodes = pd.read_csv(tmp_path / "DAC4Rec-seed0_episodes_seed0.csv")
    assert len(episodes) == 3 and np.isfinite(episodes["return"]).all()


def test_a_run_table_it_cannot_resume_is_refused(tmp_path):
    pd.DataFrame({"method": ["DAC4Rec"], "encoder": ["none"], "seed": [0], "R_cumu": [1.0]}).to_csv(
        tmp_path / "rq4_runs.csv", index=False)                                      # written before the flat buckets
    one_line_error(cli("study", "rq4", "--preset", "tiny", "--out", str(tmp_path)), "cannot resume from it")


def test_study_energy_writes_its_tables_and_report(tmp_path):
    out = str(tmp_path)
    assert main(["study", "energy", "--preset", "tiny", "--out", out, "--no-progress"]) == 0
    table = pd.read_csv(os.path.join(out, "energy.csv"))
    assert sorted(table["scale"].unique()) == [0.0, 0.5, 1.0, 2.0, 4.0]
    assert set(table["log"]) == set(dl.studies.BEHAVIOUR_LOGS) and set(table["method"]) == set(dl.studies.ENERGY_METHODS)
    runs = pd.read_csv(os.path.join(out, "energy_runs.csv"))
    assert len(runs) == len(dl.studies.BEHAVIOUR_LOGS) * len(dl.studies.ENERGY_METHODS)   # trained once per (log, method)
    loaded = dl.studies.load_saved("energy", "tiny", folder=out)
    assert "runs" in loaded.attrs and len(dl.studies.check_claims("energy", loaded)) == 48
    assert "guidance scale" in open(os.path.join(out, "report.html"), encoding="utf-8").read()


def test_encoders_choose_rq1s_encoders_and_the_report_keeps_every_saved_study(tmp_path):
    """``--encoders gru`` runs RQ1 with the GRU encoder only; a later command for another study writes a report
    that still shows RQ1 (every study saved in --out), so one command per study leaves one report of them all."""
    out = str(tmp_path)
    assert main(["study", "rq1", "--preset", "tiny", "--encoders", "gru", "--out", out, "--no-progress"]) == 0
    runs = pd.read_csv(os.path.join(out, "rq1_runs.csv"))
    assert set(runs["encoder"]) == {"gru"} and len(runs) == len(dl.studies.RQ1_METHODS)
    assert main(["study", "rq4", "--preset", "tiny", "--out", out, "--no-progress"]) == 0
    with open(os.path.join(out, "report.html"), encoding="utf-8") as handle:
        report = handle.read()
    assert "<h2>RQ1" in report and "<h2>RQ4" in report and "<h2>RQ3" not in report
