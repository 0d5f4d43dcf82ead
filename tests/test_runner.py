"""dac4rec_lite.experiments.runner.execute: resume, atomic appends, retries, order, labels, Ctrl-C, Ray."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from dac4rec_lite.experiments.runner import execute, label_key, run_name


@dataclass(frozen=True)
class Job:
    """A test run: ``kind`` and ``seed`` are its label; ``log`` is where ``work`` records each call."""

    kind: str
    seed: int
    log: str = ""
    table: str = ""
    fail_times: int = 0    # the first ``fail_times`` calls raise
    sleep: float = 0.0
    wrong_label: bool = False
    nested: bool = False
    interrupt: bool = False

    @property
    def label(self):
        return {"kind": self.kind, "seed": self.seed}


def calls(log: str | Path) -> list[str]:
    path = Path(log)
    return path.read_text().split() if path.exists() else []


def work(job: Job) -> dict:
    """Deterministic: value = seed² + len(kind). Records the call (file-based counter, works across processes)."""
    if job.log:
        with open(job.log, "a") as f:
            f.write(f"{job.kind}:{job.seed}\n")
    if job.table:  # the table as it stands while this run works: it must parse and hold only finished rows
        rows = len(pd.read_csv(job.table)) if os.path.exists(job.table) else 0
    else:
        rows = -1
    attempt = calls(job.log).count(f"{job.kind}:{job.seed}") if job.log else 1
    if attempt <= job.fail_times:
        raise RuntimeError(f"planned failure {attempt} of {job.kind}")
    if job.interrupt:
        raise KeyboardInterrupt
    time.sleep(job.sleep)
    row = {**job.label, "value": float(job.seed**2 + len(job.kind)), "rows_seen": rows}
    if job.wrong_label:
        row["seed"] = job.seed + 1
    if job.nested:
        row["table"] = pd.DataFrame({"a": [1]})
    return row


def jobs(log, n=4, **kw):
    return [Job(f"m{i % 2}", i, log=str(log), **kw) for i in range(n)]


def test_fresh_run_returns_rows_in_run_order_with_the_work_functions_values(tmp_path):
    runs = jobs(tmp_path / "log")
    frame, failed = execute(runs, work, table_path=tmp_path / "t.csv", workers=1, progress=False)
    assert failed == []
    assert frame[["kind", "seed"]].values.tolist() == [[r.kind, r.seed] for r in runs]
    assert frame["value"].tolist() == [float(r.seed**2 + 2) for r in runs]
    assert len(calls(tmp_path / "log")) == 4
    saved = pd.read_csv(tmp_path / "t.csv")
    assert saved[["kind", "seed", "value"]].equals(frame[["kind", "seed", "value"]])


def test_resume_executes_only_the_runs_missing_from_the_table(tmp_path, capsys):
    runs = jobs(tmp_path / "log")
    table = tmp_path / "t.csv"
    # a table holding runs 1 and 3, with sentinel values that a recomputation would overwrite
    pd.DataFrame([{"kind": "m1", "seed": 1, "value": -7.0, "rows_seen": 0},
                  {"kind": "m1", "seed": 3, "value": -9.0, "rows_seen": 1}]).to_csv(table, index=False)
    frame, failed = execute(runs, work, table_path=table, workers=1)
    assert failed == []
    assert sorted(calls(tmp_path / "log")) == ["m0:0", "m0:2"]          # only the two missing runs ran
    assert frame["seed"].tolist() == [0, 1, 2, 3]                         # run order, saved rows included
    assert frame["value"].tolist() == [2.0, -7.0, 6.0, -9.0]              # saved rows are returned as saved
    assert "resuming: 2 of 4 runs are already in" in capsys.readouterr().out
    assert len(pd.read_csv(table)) == 4
    # a second identical call runs nothing
    frame2, _ = execute(runs, work, table_path=table, workers=1, progress=False)
    assert len(calls(tmp_path / "log")) == 2 and frame2.equals(frame)


def test_labels_match_across_a_csv_round_trip_of_ints_floats_bools_and_na_like_strings(tmp_path):
    @dataclass(frozen=True)
    class R:
        label: dict

    labels = [{"method": "None", "lr": 1e-3, "n": 3, "flag": True, "tag": "NA"},
              {"method": "x", "lr": 0.5, "n": 20, "flag": False, "tag": "7"}]
    table = tmp_path / "t.csv"
    first, _ = execute([R(label) for label in labels], echo, table_path=table, workers=1, progress=False)
    assert list(first["method"]) == ["None", "x"]
    # read back, every label is found again (nothing rerun: echo would add a new 'calls' column value)
    again, _ = execute([R(label) for label in labels], fail_always, table_path=table, workers=1, progress=False)
    assert len(again) == 2 and list(again["tag"].astype(str)) == ["NA", "7"]
    assert label_key({"n": 3}) == label_key({"n": 3.0}) == label_key({"n": "3"})
    assert label_key({"f": True}) != label_key({"f": 1})


def echo(run) -> dict:
    return dict(run.label, metric=1.0)


def fail_always(run) -> dict:
    raise RuntimeError("must not run")


def test_each_finished_row_is_appended_and_the_table_is_valid_while_runs_work(tmp_path):
    table = tmp_path / "t.csv"
    runs = [Job(f"m{i}", i, log=str(tmp_path / "log"), table=str(table)) for i in range(4)]
    frame, _ = execute(runs, work, table_path=table, workers=1, progress=False)
    assert frame["rows_seen"].tolist() == [0, 1, 2, 3]   # run k saw exactly the k rows finished before it
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no temp files left


def test_a_failed_table_write_leaves_the_previous_table_intact(tmp_path, monkeypatch):
    table = tmp_path / "t.csv"
    runs = jobs(tmp_path / "log", n=2)
    execute(runs[:1], work, table_path=table, workers=1, progress=False)
    before = table.read_bytes()

    def half_written(self, f, **kw):
        f.write("kind,seed\nm1,")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_written)
    with pytest.raises(OSError, match="disk full"):
        execute(runs, work, table_path=table, workers=1, progress=False)
    assert table.read_bytes() == before


def test_a_failing_run_is_retried_once_then_reported_by_name_and_the_others_finish(tmp_path, capsys):
    log = tmp_path / "log"
    runs = [Job("flaky", 0, log=str(log), fail_times=1), Job("broken", 1, log=str(log), fail_times=99),
            Job("fine", 2, log=str(log))]
    frame, failed = execute(runs, work, table_path=tmp_path / "t.csv", workers=1, progress=False)
    assert failed == ["kind=broken, seed=1"]
    assert frame["kind"].tolist() == ["flaky", "fine"]
    assert calls(log).count("flaky:0") == 2 and calls(log).count("broken:1") == 2 and calls(log).count("fine:2") == 1
    out = capsys.readouterr().out
    assert "run kind=flaky, seed=0 failed (RuntimeError: planned failure 1 of flaky); retrying." in out
    assert "run kind=broken, seed=1 FAILED after 2 attempt(s)" in out
    # the failed run is not in the table: the next call tries it again (and only it)
    execute(runs, work, table_path=tmp_path / "t.csv", workers=1, progress=False, retries=0)
    assert calls(log).count("broken:1") == 3 and len(calls(log)) == 6


def test_process_pool_returns_run_order_although_runs_finish_out_of_order(tmp_path, capsys):
    log = tmp_path / "log"
    runs = [Job("slow", 0, log=str(log), sleep=1.5), Job("quick", 1, log=str(log)),
            Job("quick", 2, log=str(log), fail_times=1), Job("bad", 3, log=str(log), fail_times=9)]
    table = tmp_path / "t.csv"
    frame, failed = execute(runs, work, table_path=table, workers=2)
    assert frame["seed"].tolist() == [0, 1, 2] and failed == ["kind=bad, seed=3"]
    assert pd.read_csv(table)["seed"].tolist()[-1] == 0          # the table is in completion order
    err = capsys.readouterr().err
    assert "3/4" in err or "4/4" in err
    assert "slowest kind=slow, seed=0: 1." in err                 # the progress bar names the slowest run


def test_a_row_with_another_runs_label_is_reported_not_saved_and_not_retried(tmp_path):
    log = tmp_path / "log"
    runs = [Job("a", 0, log=str(log), wrong_label=True), Job("b", 1, log=str(log))]
    frame, failed = execute(runs, work, table_path=tmp_path / "t.csv", workers=1, progress=False)
    assert failed == ["kind=a, seed=0"] and frame["kind"].tolist() == ["b"]
    assert calls(log).count("a:0") == 1


def test_a_nested_row_is_a_clear_failure(tmp_path, capsys):
    runs = [Job("a", 0, log=str(tmp_path / "log"), nested=True)]
    frame, failed = execute(runs, work, workers=1, progress=False, retries=0)
    assert failed == ["kind=a, seed=0"] and frame.empty
    assert "column 'table' holds a DataFrame" in capsys.readouterr().out


def test_a_table_of_other_runs_or_bad_arguments_raise_clear_errors(tmp_path):
    runs = jobs(tmp_path / "log", n=2)
    other = tmp_path / "other.csv"
    pd.DataFrame({"method": ["x"], "seed": [0], "value": [1.0]}).to_csv(other, index=False)
    with pytest.raises(ValueError, match="has no column 'kind'.*holds other runs"):
        execute(runs, work, table_path=other, workers=1, progress=False)
    finer = tmp_path / "finer.csv"   # its runs differ by a column these labels lack (n_steps): ambiguous
    pd.DataFrame({"kind": ["m0", "m0"], "seed": [0, 0], "n_steps": [10, 20]}).to_csv(finer, index=False)
    with pytest.raises(ValueError, match="two rows labelled"):
        execute(runs, work, table_path=finer, workers=1, progress=False)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="could not read the run table"):
        execute(runs, work, table_path=tmp_path / "empty.csv", workers=1, progress=False)
    with pytest.raises(ValueError, match="same label"):
        execute([runs[0], runs[0]], work, workers=1, progress=False)
    with pytest.raises(ValueError, match="missing"):
        execute([type("R", (), {"label": {"seed": float("nan")}})()], work, progress=False)
    with pytest.raises(TypeError, match="scalars"):
        execute([type("R", (), {"label": {"seed": [1]}})()], work, progress=False)
    with pytest.raises(ValueError, match="backend"):
        execute(runs, work, backend="slurm")
    with pytest.raises(ValueError, match="address"):
        execute(runs, work, address="auto")
    with pytest.raises(ValueError, match="retries"):
        execute(runs, work, retries=-1)
    assert not (tmp_path / "log").exists()   # nothing ran


def test_ctrl_c_keeps_the_finished_rows_and_the_rerun_resumes(tmp_path, capsys):
    log, table = tmp_path / "log", tmp_path / "t.csv"
    runs = jobs(log)
    interrupted = [*runs[:2], Job("m0", 2, log=str(log), interrupt=True), runs[3]]
    with pytest.raises(KeyboardInterrupt):
        execute(interrupted, work, table_path=table, workers=1, progress=False)
    assert "interrupted: 2 of 4 runs finished and saved in" in capsys.readouterr().out
    assert pd.read_csv(table)["seed"].tolist() == [0, 1]
    frame, failed = execute(runs, work, table_path=table, workers=1, progress=False)
    assert failed == [] and frame["seed"].tolist() == [0, 1, 2, 3]
    assert calls(log) == ["m0:0", "m1:1", "m0:2", "m0:2", "m1:3"]


def test_importing_the_kit_and_the_runner_does_not_import_ray():
    code = "import sys, dac4rec_lite, dac4rec_lite.experiments.runner; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_run_name_prefers_a_name_attribute():
    assert run_name(type("R", (), {"label": {"a": 1, "b": "x"}})()) == "a=1, b=x"
    assert run_name(type("R", (), {"label": {"a": 1}, "name": "RQ1 BC seed 0"})()) == "RQ1 BC seed 0"


# ------------------------------------------------------------------------------------------------------ Ray
@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -r requirements.txt pins it)")
    here = str(Path(__file__).parent)
    path = os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # give up after 30 s: an idle machine starts a node in a few seconds, an overloaded one not at all
    slow_start = {"RAY_raylet_start_wait_time_s": "30"}
    saved = {k: os.environ.get(k) for k in slow_start}
    os.environ.update({k: v for k, v in slow_start.items() if saved[k] is None})
    try:
        ray.init(num_cpus=2, include_dashboard=False, address="local", log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": path}})
    except Exception as error:  # Ray's node agents must start within ~15 s; an overloaded machine misses that
        ray.shutdown()
        if "timed out during startup" not in str(error):
            raise
        pytest.skip(f"a local Ray node did not start in time on this machine (load average "
                    f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores): {error}")
    yield ray
    ray.shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)


def tiny_study_run(job: Job) -> dict:
    """One real tiny study run (collect → train DAC4Rec → evaluate), as a flat row."""
    import gymnasium as gym

    from dac4rec_lite import studies
    from dac4rec_lite.evaluation import collect_mixture, evaluate

    settings = studies.STUDY_SETTINGS["tiny"]
    env = gym.make("dac4rec_lite/RecSim-v0")
    data = collect_mixture(env, settings["n_episodes"], seed=job.seed, progress=False)
    agent = studies.build_agent(job.kind, data.obs_dim, data.action_dim, "tiny", job.seed)
    agent.fit(data, settings["train_steps"], batch_size=settings["batch_size"], progress=False)
    result = evaluate(env, agent, settings["eval_episodes"], seed=10_000 + job.seed, progress=False)
    return {**job.label, **{m: float(result[m]) for m in ("R_cumu", "R_avg", "Length", "CTR")}}


def study_work():
    """One real tiny study run: the studies' own run and work function when they exist, else a flat one here."""
    try:
        from dac4rec_lite.experiments.methods import Run, execute_run
    except ImportError:
        return [Job("DAC4Rec", 0), Job("BC", 1)], tiny_study_run
    return [Run("DAC4Rec", 0, "tiny"), Run("BC", 1, "tiny")], execute_run


def test_ray_backend_gives_the_same_run_table_as_the_local_backend(tmp_path, local_ray):
    trivial = [Job(f"m{i % 3}", i) for i in range(6)]
    local, failed_local = execute(trivial, work, table_path=tmp_path / "local.csv", workers=1, progress=False)
    remote, failed_remote = execute(trivial, work, table_path=tmp_path / "ray.csv", backend="ray", progress=False)
    assert failed_local == failed_remote == []
    pd.testing.assert_frame_equal(local, remote)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "local.csv").sort_values("seed", ignore_index=True),
                                  pd.read_csv(tmp_path / "ray.csv").sort_values("seed", ignore_index=True))
    # a real tiny study run (torch training and the simulator) gives the same numbers on a Ray worker
    runs, study = study_work()
    local, _ = execute(runs, study, workers=1, threads_per_run=1, progress=False)
    remote, failed = execute(runs, study, backend="ray", threads_per_run=1, progress=False)
    assert failed == [] and len(remote) == 2
    timing = [c for c in local.columns if c.endswith("_seconds")]
    pd.testing.assert_frame_equal(local.drop(columns=timing), remote.drop(columns=timing))


def test_ray_backend_retries_reports_and_resumes(tmp_path, local_ray):
    log, table = tmp_path / "log", tmp_path / "t.csv"
    runs = [Job("ok", 0, log=str(log)), Job("flaky", 1, log=str(log), fail_times=1),
            Job("bad", 2, log=str(log), fail_times=9)]
    frame, failed = execute(runs, work, table_path=table, backend="ray", progress=False)
    assert failed == ["kind=bad, seed=2"] and frame["seed"].tolist() == [0, 1]
    assert calls(log).count("flaky:1") == 2 and calls(log).count("bad:2") == 2
    execute(runs[:2], work, table_path=table, backend="ray", progress=False)
    assert len(calls(log)) == 5                      # nothing reran
