"""The exercise checkers as a whole: the reference solutions (instructor/solutions.py, outside the package) pass
in strict mode, no solution is reachable from ``dl.exercises``, every checker refuses an answer that calls the kit's
own implementation and reports errors, NaNs and shapes in words, no hint gives the answer away, and the exercise
notebooks run (marker ``notebooks``): filled with the solutions (instructor/fill_notebooks.py), where every check
must pass, and blank, where each exercise must end with the friendly "not implemented yet".

The typical mistakes of each exercise are in test_exercise_mistakes.py."""
from __future__ import annotations

import importlib
import re

import nbformat
import pytest
import torch
from exercise_support import FILL, ROOT, S, fails

import dac4rec_lite as dl
from dac4rec_lite import exercises as ex

torch.set_num_threads(1)

EXERCISE_NOTEBOOKS = sorted((ROOT / "notebooks" / "exercises").glob("*.ipynb"))
NAMES = list(ex.EXERCISES)
IN_PLACE = {"soft_update", "algorithm1_update"}  # judged through what they change, not (only) what they return
RETURNING = [n for n in NAMES if n not in IN_PLACE]


# ----- the contract ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_reference_solution_passes_strict(name, capsys):
    verdict = getattr(ex, f"check_{name}")(getattr(S, name), strict=True)
    assert verdict and verdict.reason == "correct"
    assert f"✓ {name}" in capsys.readouterr().out


CONTRACT = ["q_sample", "reverse_step", "bc_loss", "action_approximation", "td_target", "q_loss", "cep_loss",
            "guided_eps", "select_action", "vp_betas", "elbo_weights", "awr_weight", "soft_update", "algorithm1_update"]


def test_every_contract_checker_exists_and_no_solution_is_exposed():
    assert sorted(NAMES) == sorted(CONTRACT) and len(NAMES) == 14
    assert all(callable(getattr(dl.exercises, f"check_{n}")) for n in CONTRACT)
    assert sorted(n for n in ex.__all__ if n.startswith("check_")) == sorted(f"check_{n}" for n in CONTRACT)
    public = set(ex.__all__) | {n for n in dir(ex) if not n.startswith("_")}
    assert not public & {"solutions", "inject"}, "reference solutions must not be reachable from dl.exercises"
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("dac4rec_lite.exercises.solutions")
    assert not (ROOT / "dac4rec_lite" / "exercises" / "solutions.py").exists()


def test_every_exercise_module_is_under_600_lines():
    for path in (ROOT / "dac4rec_lite" / "exercises").glob("*.py"):
        assert len(path.read_text().splitlines()) < 600, path.name


def test_no_exercise_module_imports_a_private_name():
    for path in (ROOT / "dac4rec_lite" / "exercises").glob("*.py"):
        for line in re.findall(r"^from \S+ import \(?([^)]*?)\)?$", path.read_text(), flags=re.M | re.S):
            assert not re.search(r"(^|[\s,])_\w", line), f"{path.name} imports a private name: {line}"


@pytest.mark.parametrize("name", NAMES)
def test_not_implemented_is_friendly(name, capsys):
    def blank(*args):
        raise NotImplementedError

    verdict = getattr(ex, f"check_{name}")(blank)
    out = capsys.readouterr().out
    assert not verdict and verdict.reason == "not_implemented"
    assert "not implemented yet" in out and "Traceback" not in out
    with pytest.raises(ex.ExerciseFailed, match="not implemented yet"):
        getattr(ex, f"check_{name}")(blank, strict=True)


@pytest.mark.parametrize("name", RETURNING)
def test_non_strict_prints_and_returns_false(name, capsys):
    reference = getattr(S, name)

    def off_by_a_little(*args):
        return reference(*args) * 1.001

    verdict = getattr(ex, f"check_{name}")(off_by_a_little)
    assert not verdict
    assert "not right yet" in capsys.readouterr().out


@pytest.mark.parametrize("name", RETURNING)
def test_exceptions_nan_and_shapes_are_reported_in_words(name):
    reference = getattr(S, name)

    def raises(*args):
        raise KeyError("oops")

    def nan(*args):
        return reference(*args) * float("nan")

    def extra_dim(*args):
        return reference(*args).unsqueeze(0)

    message = fails(name, raises, "error", "raised KeyError", "It happened in your code at line")
    assert "Traceback" not in message
    fails(name, nan, "first_step_infinite" if name == "elbo_weights" else "not_finite",
          "not finite" if name == "elbo_weights" else "returned NaN")
    fails(name, extra_dim, "shape", "Your result has shape")
    fails(name, lambda *args: None, "returned_none", "forget the `return`")
    fails(name, lambda *args: reference(*args).tolist(), "not_a_tensor", "return a torch.Tensor")
    fails(name, lambda *args: reference(*args).double(), "dtype", "float32")


def test_passing_the_result_instead_of_the_function():
    fails("q_sample", 3.0, "not_callable", "Pass the function itself")


def test_a_changed_signature_is_reported():
    def q_sample(a0, i, noise):
        return a0

    fails("q_sample", q_sample, "signature", "q_sample(a0, i, noise, schedule)")


def test_modifying_an_input_in_place_is_reported():
    def q_sample(a0, i, noise, schedule):
        ab = schedule.alphas_cumprod[i - 1].unsqueeze(1)
        noise.mul_((1 - ab).sqrt())
        return ab.sqrt() * a0 + noise

    fails("q_sample", q_sample, "modified_input", "changed one of its input tensors in place")


@pytest.mark.parametrize("name", RETURNING)
def test_never_passes_a_small_perturbation(name):
    """A wrong answer never passes: even a 0.1 % error in one row fails."""
    reference = getattr(S, name)

    def perturbed(*args):
        out = reference(*args)
        if out.dim() == 0:
            return out * 1.001
        bump = torch.zeros_like(out)
        bump[-1] = 1e-3 * out.detach().abs().max() + 1e-3
        return out + bump

    with pytest.raises(ex.ExerciseFailed):
        getattr(ex, f"check_{name}")(perturbed, strict=True)


# ----- hints --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_hints_reveal_one_at_a_time(name):
    box = ex.hints(name)
    button, shown = box.children
    assert shown.value == ""
    for k in range(1, len(ex.HINTS[name]) + 1):
        button.click()
        assert f"Hint {k}." in shown.value and f"Hint {k + 1}." not in shown.value
    assert button.disabled


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


# The expression that *is* each answer, as a regular expression over the hint text without spaces (any variable
# names): a hint may point at every ingredient, but must not write the formula out.
KEY_EXPRESSIONS = {
    "vp_betas": r"torch\.exp\(-beta_min/n\w*-0\.5\*",
    "q_sample": r"\w+\.sqrt\(\)\*a0\+\(1-\w+\)\.sqrt\(\)\*noise",
    "reverse_step": r"\w+\.sqrt\(\)\*z",
    "bc_loss": r"\(noise-[\w.]+(\([^()]*\))?\)\.pow\(2\)\.mean\(\)",
    "elbo_weights": r"betas/\(2\*\w*\.?alphas\*\(1-",
    "action_approximation": r"\(a_i-\(1-\w+\)\.sqrt\(\)\*",
    "td_target": r"reward\+gamma\*\(1-terminal\)",
    "q_loss": r"-\w+\.mean\(\)/\w+\.abs\(\)\.mean\(\)\.detach\(\)",
    "awr_weight": r"torch\.exp\(\w+/\(temperature\*",
    "soft_update": r"\.copy_\(tau\*|\.lerp_\(\w+,tau\)",
    "algorithm1_update": r"F\.mse_loss\(q1,\w+\)\+F\.mse_loss\(q2",
    "cep_loss": r"softmax\(beta\*q,dim=1\)\*\w*\.?log_softmax|\w+\*torch\.log_softmax\(f,dim=1\)\)\.sum",
    "guided_eps": r"eps-\(1-\w+\)\.sqrt\(\)\*scale\*",
    "select_action": r"candidates\[torch\.arange\(.{1,25}?\),choice\]",
}


@pytest.mark.parametrize("name", NAMES)
def test_no_hint_gives_the_answer_away(name):
    import inspect

    solution = _squash(inspect.getsource(getattr(S, name)))
    assert re.search(KEY_EXPRESSIONS[name], solution), f"the key expression of {name} must match its solution"
    hints = [_squash(h) for h in ex.HINTS[name]]
    assert len(hints) == 3
    for k, hint in enumerate(hints, start=1):
        assert not re.search(KEY_EXPRESSIONS[name], hint), f"hint {k} of {name} contains the answer"
    # nor is the solution's returned expression copied into a hint (setting-up lines, such as calling a network,
    # may be: they are not the answer)
    returns = [_squash(line).removeprefix("return") for line in inspect.getsource(getattr(S, name)).splitlines()
               if line.strip().startswith("return ") and len(line.strip()) > 20]
    for expression in returns:
        assert not any(expression in h for h in hints), f"a hint of {name} copies `{expression}`"


# ----- answers that call the kit's own implementation --------------------------------------------------------

def _kit_q_sample(a0, i, noise, schedule):  # the example of the exercises-v2 issue
    return dl.VPSchedule(schedule.betas.numel()).q_sample(a0, i, noise)


def _kit_reverse_step(a_i, i, eps, z, schedule):
    mean = dl.VPSchedule(schedule.n_steps).reverse_mean(a_i, i, eps)
    return mean + schedule.betas[i - 1].sqrt() * z if i > 1 else mean


def _kit_bc_loss(eps_model, state, action, i, noise, schedule):
    a_i = dl.VPSchedule(schedule.n_steps).q_sample(action, i, noise)  # right numbers, but the kit's q_sample
    return (noise - eps_model(state, a_i, i)).pow(2).mean()


def _kit_action_approximation(eps_model, state, action, i, noise, schedule):
    vp = dl.VPSchedule(schedule.n_steps)
    a_i = vp.q_sample(action, i, noise)
    return vp.predict_a0(a_i, i, eps_model(state, a_i, i))


def _kit_td_target(reward, terminal, next_state, next_action, target_critic, gamma):
    agent = dl.DAC4Rec(next_state.shape[1], next_action.shape[1], n_steps=2, hidden_dim=8)
    agent.target_critic = target_critic
    return agent.td_target(next_state, reward, terminal)


def _kit_q_loss(critic, state, a0_hat):
    agent = dl.DAC4Rec(state.shape[1], a0_hat.shape[1], n_steps=2, hidden_dim=8)
    return agent.direct_q_loss(state, a0_hat, q_fn=lambda s, a: torch.min(*critic(s, a)))[0]


def _kit_awr_weight(q1, q2, v, temperature, max_weight):
    agent = dl.DAC4Rec(2, 2, n_steps=2, hidden_dim=8, policy_improvement="awr")
    return agent.advantage_weights(torch.zeros(q1.shape[0], 2), torch.zeros(q1.shape[0], 2))


def _kit_soft_update(target, source, tau):
    from dac4rec_lite.critics import soft_update as polyak  # an alias is caught too

    polyak(target, source, tau)


def _kit_algorithm1_update(agent, batch):
    metrics = agent.update(batch)
    return torch.tensor([metrics["critic_loss"], metrics["policy_loss"]])


def _kit_halves_algorithm1_update(agent, batch):
    critic, policy = agent.update_critic(batch), agent.update_policy(batch)
    return torch.tensor([critic["critic_loss"], policy["policy_loss"]])


def _kit_cep_loss(energy, state, supports, q, i, noise, schedule, beta):
    from dac4rec_lite.energy import cep_loss

    return cep_loss(energy, state, supports, q, i, noise, dl.VPSchedule(schedule.n_steps), beta)


def _kit_guided_eps(eps_model, energy, state, a_i, i, scale, schedule):
    ab = schedule.alphas_cumprod[i - 1].unsqueeze(1)
    return eps_model(state, a_i, i) - (1 - ab).sqrt() * dl.EnergyGuidance(energy, scale)(state, a_i, i)


def _kit_select_action(q1, q2, candidates, temperature, generator):
    from dac4rec_lite.agents.base import select_candidates

    b, k, d = candidates.shape
    return select_candidates(torch.min(q1, q2).reshape(b * k, 1), candidates.reshape(b * k, d), b, temperature, generator)


KIT_ANSWERS = {
    "vp_betas": (lambda n, lo, hi: dl.VPSchedule(n, lo, hi).betas, "dl.VPSchedule"),
    "q_sample": (_kit_q_sample, "dl.VPSchedule.q_sample"),
    "reverse_step": (_kit_reverse_step, "dl.VPSchedule.reverse_mean"),
    "bc_loss": (_kit_bc_loss, "dl.VPSchedule.q_sample"),
    "elbo_weights": (lambda schedule: dl.DAC4Rec(2, 2, n_steps=schedule.n_steps)._elbo_weights, "dl.DAC4Rec"),
    "action_approximation": (_kit_action_approximation, "dl.VPSchedule.predict_a0"),
    "td_target": (_kit_td_target, "DAC4Rec.td_target"),
    "q_loss": (_kit_q_loss, "direct_q_loss"),
    "awr_weight": (_kit_awr_weight, "DAC4Rec.advantage_weights"),
    "soft_update": (_kit_soft_update, "dl.soft_update"),
    "algorithm1_update": (_kit_algorithm1_update, "DAC4Rec.update"),
    "cep_loss": (_kit_cep_loss, "dl.energy.cep_loss"),
    "guided_eps": (_kit_guided_eps, "dl.EnergyGuidance"),
    "select_action": (_kit_select_action, "select_candidates"),
}


@pytest.mark.parametrize("name", NAMES)
def test_an_answer_calling_the_kit_is_refused(name):
    fn, called = KIT_ANSWERS[name]
    message = fails(name, fn, "calls_kit", "Your answer calls", called, "the kit's own implementation",
                    "Write the update yourself" if name == "algorithm1_update" else "Write the formula yourself")
    assert "✓" not in message


def test_the_issue_example_right_numbers_but_refused(capsys):
    """The kit-calling q_sample gives exactly the kit's numbers; it is refused all the same."""
    case = ex.EXERCISES["q_sample"].cases[0]()
    assert torch.equal(_kit_q_sample(*case.args), S.q_sample(*case.args))
    assert not ex.check_q_sample(_kit_q_sample)
    assert "calls dl.VPSchedule.q_sample" in capsys.readouterr().out


def test_calling_either_half_of_the_update_is_refused():
    fails("algorithm1_update", _kit_halves_algorithm1_update, "calls_kit", "DAC4Rec.update_critic",
          "DAC4Rec.update_policy")


def test_the_kit_call_hook_restores_a_previous_profiler():
    import sys

    calls = []

    def profiler(frame, event, arg):
        calls.append(event)

    sys.setprofile(profiler)
    try:
        ex.check_q_sample(S.q_sample)
        assert sys.getprofile() is profiler
    finally:
        sys.setprofile(None)


# ----- the exercise notebooks, run both ways ---------------------------------------------------------------

def test_exercise_notebooks_cover_every_exercise():
    assert EXERCISE_NOTEBOOKS, "no notebooks in notebooks/exercises/"
    sources = "\n".join(c.source for nb in EXERCISE_NOTEBOOKS for c in nbformat.read(nb, 4).cells if c.cell_type == "code")
    for name in NAMES:
        assert f"def {name}(" in sources and f"check_{name}(" in sources and f'hints("{name}")' in sources


@pytest.mark.parametrize("nb_path", EXERCISE_NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_notebook_is_blank_and_says_nothing_of_solutions(nb_path):
    nb = nbformat.read(nb_path, 4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert params and "PRESET" in params[0].source
    bodies = [c.source for c in nb.cells if c.cell_type == "code" and "# YOUR CODE HERE" in c.source]
    assert bodies and all("raise NotImplementedError" in b for b in bodies)
    text = "".join(c.source for c in nb.cells).lower()
    for word in ("solutions", "inject", "instructor", "reference solution"):
        assert word not in text, f"{nb_path.name} mentions {word!r}: solutions stay out of the student notebooks"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "notebooks are stored clean"


@pytest.mark.parametrize("nb_path", EXERCISE_NOTEBOOKS, ids=lambda p: p.name)
def test_filling_a_notebook_replaces_exactly_its_exercises(nb_path):
    nb = nbformat.read(nb_path, 4)
    filled, names = FILL.fill(nb, S)
    expected = [n for n in NAMES if f"def {n}(" in "".join(c.source for c in nb.cells)]
    assert sorted(names) == sorted(expected)
    code = lambda notebook: "".join(c.source for c in notebook.cells if c.cell_type == "code")  # noqa: E731
    assert "# YOUR CODE HERE" not in code(filled) and "# YOUR CODE HERE" in code(nb)
    assert len(filled.cells) == len(nb.cells)


@pytest.mark.notebooks
@pytest.mark.parametrize("solved", [True, False], ids=["solutions", "blank"])
@pytest.mark.parametrize("nb_path", EXERCISE_NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_notebook_executes(nb_path, solved, tmp_path, monkeypatch):
    import papermill as pm

    monkeypatch.setenv("DAC4REC_PRESET", "tiny")
    source = nb_path
    if solved:
        source = tmp_path / f"filled_{nb_path.name}"
        nbformat.write(FILL.fill(nbformat.read(nb_path, 4), S)[0], source)
    out = tmp_path / nb_path.name
    pm.execute_notebook(str(source), str(out), parameters={"PRESET": "tiny"}, kernel_name="dac4rec-lite",
                        cwd=str(nb_path.parent), execution_timeout=300, progress_bar=False)
    nb = nbformat.read(out, 4)
    texts = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    names = [n for n in NAMES if f"check_{n}(" in "".join(c.source for c in nb.cells)]
    for name in names:
        if solved:
            assert f"✓ {name}" in texts
        else:
            assert f"… {name}" in texts and "not implemented yet" in texts
    assert "Traceback" not in texts
