"""Faults around agents (issue 19): damaged, foreign and byte-flipped checkpoints are refused naming the
part; a save cut by a file-size limit keeps the previous file; Ctrl-C stops fit at an update boundary; a
resumed fit continues the random stream; act() is the same in any process; construction leaves the global
generators alone; a CPU generator drives a CUDA agent."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import dac4rec_lite as dl
from bad_input_helpers import ACT, NO_CUDA, OBS, ROOT, make_dict, tiny_agent
from dac4rec_lite.io import atomic_write_bytes, atomic_write_text


@pytest.fixture(scope="module")
def data() -> dl.OfflineDataset:
    return dl.OfflineDataset.from_dict(make_dict())


# ----- checkpoints ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory, data):
    agent = tiny_agent(seed=3)
    agent.fit(data, 3, batch_size=8, progress=False)
    path = tmp_path_factory.mktemp("ckpt") / "agent.pt"
    agent.save(path)
    return agent, path


def _rewrite(saved, tmp_path, change) -> str:
    checkpoint = torch.load(saved[1], weights_only=True)
    change(checkpoint)
    path = tmp_path / "edited.pt"
    torch.save(checkpoint, path)
    return str(path)


def _first_weight(ck):
    return next(iter(ck["weights"]["critic"]))


CHECKPOINT_CASES = [
    ("no weights entry", lambda ck: ck.pop("weights"), "'weights' entry is missing"),
    ("no config entry", lambda ck: ck.pop("config"), "'config' entry is missing"),
    ("no agent entry", lambda ck: ck.pop("agent"), "'agent' entry is missing"),
    ("config not a dict", lambda ck: ck.__setitem__("config", [1, 2]), "'config' entry is a list"),
    ("n_updates a string", lambda ck: ck.__setitem__("n_updates", "3"), "'n_updates' entry is a str"),
    ("part missing", lambda ck: (ck["weights"].pop("critic"), ck.pop("digest")), "no weights for 'critic'"),
    ("tensor missing", lambda ck: (ck["weights"]["critic"].pop(_first_weight(ck)), ck.pop("digest")),
     "weights of 'critic' do not fit"),
    ("wrong shape", lambda ck: (ck["weights"]["critic"].__setitem__(_first_weight(ck), torch.zeros(2, 2)),
                                ck.pop("digest")), r"'critic\..*' has shape \(2, 2\)"),
    ("part not a dict", lambda ck: (ck["weights"].__setitem__("critic", 3), ck.pop("digest")),
     "weights of 'critic' are damaged"),
    ("weights edited, digest kept", lambda ck: ck["weights"]["critic"][_first_weight(ck)].add_(1e-3),
     "do not match the digest"),
    ("generator state edited", lambda ck: ck["rng"]["generator"].__setitem__(100, ck["rng"]["generator"][100] ^ 1),
     "do not match the digest"),
    ("optimiser state edited", lambda ck: next(iter(ck["optimizers"]["critic_optimizer"]["state"].values()))["exp_avg"].mul_(2),
     "do not match the digest"),
    ("rng damaged", lambda ck: (ck.__setitem__("rng", {"device": "cpu"}), ck.pop("digest")),
     "generator states are damaged"),
    ("optimiser of another shape", lambda ck: (ck["optimizers"]["critic_optimizer"]["param_groups"][0]["params"].pop(),
                                                ck.pop("digest")), "optimiser 'critic_optimizer' does not fit"),
    ("another agent class", lambda ck: ck.__setitem__("agent", "DDPG"), r"load it with dl\.DDPG\.load"),
    ("other config", lambda ck: ck["config"].__setitem__("hidden_dim", 16), "hidden_dim: checkpoint 16 vs this agent 8"),
]


@pytest.mark.parametrize("name, change, phrase", CHECKPOINT_CASES, ids=[c[0] for c in CHECKPOINT_CASES])
def test_damaged_checkpoints_are_one_clear_value_error(name, change, phrase, saved, tmp_path):
    path = _rewrite(saved, tmp_path, change)
    agent = tiny_agent(seed=3)
    before = {k: v.clone() for k, v in agent.critic.state_dict().items()}
    with pytest.raises(ValueError, match=phrase):
        agent.load_weights(path)
    assert all(torch.equal(before[k], v) for k, v in agent.critic.state_dict().items())  # nothing half loaded
    assert agent.n_updates == 0


def test_checkpoint_files_that_are_not_checkpoints(saved, tmp_path):
    cases = []
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    cases.append((tmp_path / "garbage.pt", ValueError, "not a readable dac4rec_lite checkpoint"))
    torch.save({"something": 1}, tmp_path / "foreign.pt")
    cases.append((tmp_path / "foreign.pt", ValueError, "not a dac4rec_lite agent checkpoint"))
    cases.append((tmp_path / "missing.pt", FileNotFoundError, "no checkpoint at"))
    cases.append((tmp_path, ValueError, "is a folder"))
    data = saved[1].read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    cases.append((tmp_path / "truncated.pt", ValueError, "not a readable"))
    for path, error, phrase in cases:
        with pytest.raises(error, match=phrase):
            dl.DAC4Rec.load(path)
        with pytest.raises(error, match=phrase):
            dl.agents.load_agent(path)


def test_save_into_a_missing_folder_or_onto_a_folder(saved, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        saved[0].save(tmp_path / "no" / "such" / "agent.pt")
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        saved[0].save(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        saved[0].save(tmp_path / "file" / "agent.pt")


def test_a_byte_flipped_checkpoint_is_refused(saved, tmp_path):
    """Flip one byte inside a stored weight tensor (found by its bytes in the file): the file still unpickles,
    and without the digest it would load and act differently."""
    agent, path = saved
    raw = bytearray(path.read_bytes())
    weight = agent.critic.state_dict()[next(iter(agent.critic.state_dict()))]
    needle = weight.detach().reshape(-1)[:4].numpy().tobytes()
    at = raw.find(needle)
    assert at > 0 and raw.count(needle) == 1
    raw[at + 1] ^= 0x10
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(bytes(raw))
    torch.load(flipped, weights_only=True)  # still a readable file: only the digest can tell
    with pytest.raises(ValueError, match="is corrupt: its weights or states do not match the digest"):
        dl.DAC4Rec.load(flipped)


def test_a_checkpoint_without_digest_or_generator_states_still_loads(saved, tmp_path):
    """Files written before the digest and the saved streams existed: loaded unverified, fresh generators."""
    agent, path = saved
    checkpoint = torch.load(path, weights_only=True)
    for key in ("digest", "rng", "optimizers"):
        checkpoint.pop(key)
    torch.save(checkpoint, tmp_path / "old.pt")
    old = dl.DAC4Rec.load(tmp_path / "old.pt")
    g = torch.Generator().manual_seed(0)
    obs = np.zeros((4, OBS), dtype=np.float32)
    np.testing.assert_array_equal(old.act(obs, generator=g), agent.act(obs, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(old.generator.get_state(), torch.Generator().manual_seed(3).get_state())


INTERRUPTED_SAVE = textwrap.dedent("""
    import resource, signal, sys
    sys.path.insert(0, {root!r})
    import numpy as np, torch, dac4rec_lite as dl
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # the write then fails with EFBIG instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
    kind, path = sys.argv[1], sys.argv[2]
    try:
        if kind == "agent":
            dl.DAC4Rec(3, 2, hidden_dim=64, n_steps=3, seed=9).save(path)
        else:
            rng = np.random.default_rng(1)
            n = 4000
            dl.OfflineDataset.from_dict({{"observations": rng.normal(size=(n, 3)), "actions": rng.uniform(-1, 1, (n, 2)),
                                        "rewards": rng.normal(size=n), "next_observations": rng.normal(size=(n, 3)),
                                        "terminals": np.zeros(n)}}).save(path)
    except OSError as err:  # EFBIG, with the path in the message
        print("failed:", err.errno, err)
        sys.exit(3)
    sys.exit(0)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("kind", ["agent", "dataset"])
def test_a_save_cut_by_a_file_size_limit_keeps_the_previous_file(kind, tmp_path, data):
    """A subprocess whose files may not exceed 4 KiB tries to overwrite a good, small file with a large one:
    the write fails (EFBIG), the previous file still loads unchanged, and no temporary file is left behind."""
    path = tmp_path / ("agent.pt" if kind == "agent" else "data.npz")
    if kind == "agent":
        dl.DAC4Rec(3, 2, hidden_dim=4, n_steps=3, seed=1).save(path)  # far smaller than the one that fails
    else:
        dl.OfflineDataset.from_dict(make_dict(n=4)).save(path)
    before = path.read_bytes()
    limit = max(len(before) + 1024, 4096)
    script = tmp_path / "save.py"
    script.write_text(INTERRUPTED_SAVE.format(root=ROOT, limit=limit))
    done = subprocess.run([sys.executable, str(script), kind, str(path)], capture_output=True, text=True, timeout=240)
    assert done.returncode == 3, done.stdout + done.stderr   # the big save really failed, as an OSError
    assert "failed: 27" in done.stdout
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, "save.py"])
    if kind == "agent":
        loaded = dl.DAC4Rec.load(path)
        assert loaded.config.hidden_dim == 4 and loaded.config.seed == 1
    else:
        assert len(dl.OfflineDataset.load(path)) == 4


def test_atomic_write_helpers_keep_the_old_file_on_error(tmp_path):
    path = tmp_path / "table.csv"
    atomic_write_text(path, "a,b\n1,2\n")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        dl.io.atomic_write(path, fail)
    assert path.read_text() == "a,b\n1,2\n" and os.listdir(tmp_path) == ["table.csv"]
    atomic_write_bytes(path, b"x")
    assert path.read_bytes() == b"x"
    with pytest.raises(ValueError, match="mode must be"):
        dl.io.atomic_write(path, lambda f: None, mode="a")


# ----- Ctrl-C during fit ----------------------------------------------------------------------------------
def _critic_steps(agent) -> float:
    states = [s["step"] for s in agent.critic_optimizer.state.values()]
    return float(states[0]) if states else 0.0


def test_keyboard_interrupt_between_updates_returns_the_log_so_far(data, monkeypatch):
    agent = tiny_agent()
    real_update, calls = agent.update, []

    def update(b):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # before anything of update 4 is applied
        return real_update(b)

    monkeypatch.setattr(agent, "update", update)
    with pytest.warns(UserWarning, match="stopped by Ctrl-C .* after 3 of 10 updates"):
        log = agent.fit(data, 10, batch_size=8, progress=False)
    assert log.attrs["interrupted"] and list(log["update"]) == [1, 2, 3]
    assert agent.n_updates == 3 and _critic_steps(agent) == 3
    # the aborted update's batch draw is undone: the stream continues as if it never started
    reference = tiny_agent()
    reference.fit(data, 3, batch_size=8, progress=False)
    assert torch.equal(agent.generator.get_state(), reference.generator.get_state())


def test_an_interrupted_fit_does_not_go_on_to_train_the_energy_model(data, monkeypatch):
    agent = tiny_agent(energy=True, energy_steps=2, n_support=2, energy_states=8)

    def update(b):
        raise KeyboardInterrupt

    monkeypatch.setattr(agent, "update", update)
    with pytest.warns(UserWarning, match="after 0 of 5 updates"):
        agent.fit(data, 5, batch_size=8, progress=False)
    assert agent.energy_updates == 0


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery to the own process")
def test_ctrl_c_inside_an_update_is_held_until_the_update_is_complete(data, monkeypatch):
    """A real SIGINT arrives after the critic step and before the actor step of update 3: the update
    finishes (both optimisers step), fit stops after it and the SIGINT handler is restored."""
    agent = tiny_agent(lr_decay=False)  # (a cosine scheduler wraps optimizer.step before the patch could)
    real_step, seen = agent.critic_optimizer.step, []

    def step(*args, **kwargs):
        out = real_step(*args, **kwargs)
        seen.append(1)
        if len(seen) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(agent.critic_optimizer, "step", step)
    # Python's own Ctrl-C handler, whatever an earlier test or the runner left installed (an ignored SIGINT
    # stays ignored by design: see the next test).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.warns(UserWarning, match="after 3 of 10 updates"):
            log = agent.fit(data, 10, batch_size=8, progress=False)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert log.attrs["interrupted"] and len(log) == 3 and agent.n_updates == 3
    actor_steps = float(next(iter(agent.actor_optimizer.state.values()))["step"])
    assert _critic_steps(agent) == 3 and actor_steps == 3


def test_an_ignored_sigint_stays_ignored_during_fit(data, monkeypatch):
    """Pool workers ignore SIGINT so that their parent handles Ctrl-C: fit must not start catching it there."""
    agent = tiny_agent(lr_decay=False)
    real_update, seen = agent.update, []

    def update(b):
        seen.append(signal.getsignal(signal.SIGINT))
        return real_update(b)

    monkeypatch.setattr(agent, "update", update)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        agent.fit(data, 2, batch_size=8, progress=False)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == [signal.SIG_IGN, signal.SIG_IGN]


def test_an_interrupt_raised_halfway_by_code_is_reported_not_hidden(data, monkeypatch):
    """A KeyboardInterrupt raised by code (not the signal) after the critic stepped cannot be undone: fit
    says the agent is inconsistent and re-raises instead of returning as if all were well."""
    agent = tiny_agent(lr_decay=False)

    def step(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(agent.actor_optimizer, "step", step)
    with pytest.warns(UserWarning, match="inconsistent; reload the last checkpoint"), pytest.raises(KeyboardInterrupt):
        agent.fit(data, 5, batch_size=8, progress=False)
    assert _critic_steps(agent) == 1 and agent.n_updates == 0  # what the warning is about


# ----- random streams --------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: tiny_agent(lr_decay=False),
                                  lambda: dl.SAC(OBS, ACT, hidden_dim=8, lr_decay=False),
                                  lambda: dl.TD3(OBS, ACT, hidden_dim=8, lr_decay=False, diffusion=True, n_steps=3),
                                  lambda: dl.DecisionTransformer(OBS, ACT, embed_dim=16, context_length=3,
                                                                 lr_decay=False)],
                         ids=["DAC4Rec", "SAC", "TD3-diffusion", "DecisionTransformer"])
def test_fit_k_save_load_fit_k_equals_fit_2k(make, data, tmp_path):
    whole = make()
    whole.fit(data, 6, batch_size=8, progress=False)
    half = make()
    half.fit(data, 3, batch_size=8, progress=False)
    half.save(tmp_path / "half.pt")
    resumed = type(half).load(tmp_path / "half.pt")
    resumed.fit(data, 3, batch_size=8, progress=False)
    assert resumed.n_updates == whole.n_updates == 6
    for name, module in whole._modules_to_save().items():
        for key, value in module.state_dict().items():
            torch.testing.assert_close(resumed._modules_to_save()[name].state_dict()[key], value, rtol=0, atol=0,
                                       msg=f"{name}.{key}")


ACT_IN_A_FRESH_PROCESS = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    import numpy as np, torch, dac4rec_lite as dl
    torch.manual_seed(int(sys.argv[1]))   # the global stream differs between the processes
    agent = dl.DAC4Rec(3, 2, hidden_dim=8, n_steps=3, seed=5)
    print(repr(agent.act(np.zeros((2, 3), dtype=np.float32)).tolist()))
""")


def test_act_without_a_generator_is_the_same_in_any_process(tmp_path):
    script = tmp_path / "act.py"
    script.write_text(ACT_IN_A_FRESH_PROCESS.format(root=ROOT))
    outputs = [subprocess.run([sys.executable, str(script), str(s)], capture_output=True, text=True, timeout=240)
               for s in (1, 2)]
    assert all(o.returncode == 0 for o in outputs), outputs[0].stderr + outputs[1].stderr
    here = repr(dl.DAC4Rec(3, 2, hidden_dim=8, n_steps=3, seed=5).act(np.zeros((2, 3), dtype=np.float32)).tolist())
    assert outputs[0].stdout.strip() == outputs[1].stdout.strip() == here
    other = repr(dl.DAC4Rec(3, 2, hidden_dim=8, n_steps=3, seed=6).act(np.zeros((2, 3), dtype=np.float32)).tolist())
    assert other != here  # the seed matters (weights and draws)


@pytest.mark.parametrize("cls", [dl.DAC4Rec, dl.DDPG, dl.TD3, dl.SAC, dl.BehaviorCloning, dl.TD3BC,
                                 dl.DecisionTransformer])
def test_construction_leaves_global_generators_alone(cls):
    cpu = torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    extra = {} if cls is dl.DecisionTransformer else {"hidden_dim": 8}
    a, b = cls(OBS, ACT, seed=4, **extra), cls(OBS, ACT, seed=4, **extra)
    assert torch.equal(torch.random.get_rng_state(), cpu)
    if cuda:
        assert all(torch.equal(x, y) for x, y in zip(torch.cuda.get_rng_state_all(), cuda))
    weights = [p for m in a._modules_to_save().values() for p in m.parameters()]
    assert weights and all(torch.equal(x, y) for x, y in
                           zip(weights, [p for m in b._modules_to_save().values() for p in m.parameters()]))
    c = cls(OBS, ACT, seed=5, **extra)  # the seed alone fixes the initial weights
    assert not all(torch.equal(x, y) for x, y in zip(weights, [p for m in c._modules_to_save().values() for p in m.parameters()]))


@pytest.mark.skipif(NO_CUDA, reason="needs CUDA")
@pytest.mark.parametrize("cls", [dl.DAC4Rec, dl.DDPG, dl.TD3, dl.SAC, dl.BehaviorCloning, dl.DecisionTransformer])
def test_a_cpu_generator_drives_a_cuda_agent(cls, data):
    """Every draw goes through the generator-on-device helper: a seeded CPU generator gives the same actions
    to two identical CUDA agents (and to sampling a CUDA batch) instead of a device-mismatch error."""
    extra = {} if cls is dl.DecisionTransformer else {"hidden_dim": 8}
    k = 1 if cls in (dl.DecisionTransformer, dl.BehaviorCloning) else 3  # no critic to rank candidates by
    actions = []
    for _ in range(2):
        agent = cls(OBS, ACT, device="cuda", seed=2, **extra)
        if cls is dl.DecisionTransformer:
            agent.return_scale, agent.target_return = 1.0, 1.0
        obs = np.zeros((4, OBS), dtype=np.float32)
        actions.append(agent.act(obs, n_candidates=k, temperature=None if k == 1 else 0.5,
                                 generator=torch.Generator().manual_seed(0)))
    np.testing.assert_array_equal(actions[0], actions[1])
    b = data.sample(8, generator=torch.Generator().manual_seed(0), device="cuda")
    assert all(v.device.type == "cuda" for v in b.values())
