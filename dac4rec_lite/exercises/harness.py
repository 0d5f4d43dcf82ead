"""The machinery every checker shares: call the student's function on fixed inputs, compare it with the
kit's reference, and turn what went wrong into one plain sentence instead of a traceback.

An ``Exercise`` is data: a list of case builders (each returns fresh, seeded inputs), a reference that calls
the kit's core, a ``probe`` that reduces an output to the numbers worth comparing (the value, and where it
matters a gradient), and a catalogue of ``Mistake``s. A mistake is either a *variant* (a function written
the way the typical wrong answer is written: if the student's probe matches the variant's, that is the
diagnosis) or a *detector* (a predicate on the student's function, for mistakes that do not show in one
call's numbers, e.g. ignoring the random generator). Cases run in order; the first case that disagrees with
the reference is diagnosed against the catalogue, and nothing passes unless every case agrees.

An answer that calls the kit's own implementation of the exercise (``dl.VPSchedule(...).q_sample`` for
``q_sample``) is refused whatever its numbers: while the student's function runs, a profile hook records every
call into the code objects an exercise lists as ``forbidden`` (however the function was reached: a method, an
alias, a ``from ... import``), and the check says which one was called.
"""
from __future__ import annotations

import inspect
import linecache
import os
import sys
import traceback
from dataclasses import dataclass, field
from types import CodeType
from typing import Any, Callable

import torch

__all__ = ["Case", "Mistake", "Exercise", "Verdict", "ExerciseFailed", "NetworkCallMistake", "run_check", "kit_calls"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))

# Tolerance for "the same number": far above float32 round-off from a different order of operations,
# far below any of the mistakes (the smallest, a gradient divided by the batch size, is a factor 7).
RTOL, ATOL = 1e-4, 1e-5


class ExerciseFailed(AssertionError):
    """Raised by a check with ``strict=True`` when the answer is not right; ``reason`` names the diagnosis."""

    def __init__(self, message: str, exercise: str, reason: str) -> None:
        super().__init__(message)
        self.exercise, self.reason = exercise, reason


class NetworkCallMistake(ValueError):
    """Raised by the networks handed to a student's function when they are called the wrong way; its text is
    already the diagnosis, so the checker shows it as it is."""


@dataclass
class Case:
    """One set of inputs. ``args`` go to the function positionally; ``info`` describes them in words;
    ``extra`` holds what the probe needs (leaf tensors for gradients, step numbers for the per-row report)."""

    args: tuple
    info: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Mistake:
    """A typical wrong answer and the sentence that explains it. Exactly one of ``variant`` (same signature
    as the exercise) and ``detect`` (``detect(fn, cases) -> bool``) is given."""

    reason: str
    message: str
    variant: Callable | None = None
    detect: Callable[[Callable, list[Callable[[], Case]]], bool] | None = None


@dataclass
class Exercise:
    name: str
    equation: str
    signature: str
    cases: list[Callable[[], Case]]
    reference: Callable[[Case], torch.Tensor]
    expected_shape: Callable[[Case], tuple[int, ...]]
    probe: Callable[[torch.Tensor, Case], dict[str, Any]]
    mistakes: list[Mistake]
    shape_hint: Callable[[tuple[int, ...], Case], str | None] = lambda shape, case: None
    error_hint: Callable[[BaseException, Case], tuple[str, str] | None] = lambda err, case: None
    field_words: dict[str, str] = field(default_factory=dict)
    # The kit's own implementations of this exercise: (name shown to the student, function) pairs, built when
    # a check runs (so that a module the exercise does not need is not imported before).
    forbidden: Callable[[], list[tuple[str, Callable]]] = lambda: []
    # How the student's function is run on a case (default ``fn(*case.args)``): an exercise whose answer
    # works in place (a soft update) or over several calls (an update) returns here what is to be judged.
    call: Callable[[Callable, Case], Any] | None = None
    # A specific diagnosis for a NaN/inf result (e.g. the ELBO weight at i = 1), else the generic one.
    nonfinite_hint: Callable[[torch.Tensor, Case], tuple[str, str] | None] = lambda out, case: None
    # What a refused kit-calling answer is asked to write instead, and from what.
    write_yourself: str = "Write the formula yourself from the inputs you are given (the tables, the networks)"


@dataclass(frozen=True)
class Verdict:
    """What a check found. ``bool(verdict)`` is whether it passed; ``reason`` is a short key (``"correct"``,
    ``"not_implemented"``, ``"shape"``, or the name of the diagnosed mistake); ``message`` is the printed text.

    The check has printed the message already, so a verdict left last in a notebook cell displays nothing."""

    exercise: str
    passed: bool
    reason: str
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def _ipython_display_(self) -> None:  # printed by the check already
        return None


# ----- calling the student's function -----------------------------------------------------------------

def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for x in obj for t in _tensors(x)]
    return []


def _call(fn: Callable, case: Case, call: Callable[[Callable, Case], Any] | None = None) -> tuple[str, Any]:
    """("ok", output) | ("not_implemented", None) | ("error", exception)."""
    try:
        with torch.random.fork_rng(devices=[]):  # the student's draws must not move the global RNG of the notebook
            return "ok", (fn(*case.args) if call is None else call(fn, case))
    except NotImplementedError:
        return "not_implemented", None
    except Exception as err:  # anything the student's code raised is reported, never re-raised
        return "error", err


def _code_names(functions: list[tuple[str, Callable]]) -> dict[CodeType, str]:
    codes: dict[CodeType, str] = {}
    for name, function in functions:
        function = inspect.unwrap(getattr(function, "__func__", function))  # bound methods, @torch.no_grad()
        code = getattr(function, "__code__", None)
        if code is not None:
            codes.setdefault(code, name)
    return codes


def kit_calls(functions: list[tuple[str, Callable]], run: Callable[[], Any]) -> tuple[list[str], Any]:
    """Run ``run()`` and return (the names of the ``functions`` it called, in order, once each; its result).

    A profile hook sees every Python call, however the function was reached, so an alias or a bound method
    is caught too; it only records (raising from a profile hook would disable it), and the previous hook,
    if any (a profiler, a debugger), is restored afterwards. Exceptions of ``run`` propagate."""
    codes = _code_names(functions)
    if not codes:
        return [], run()
    seen: list[str] = []

    def hook(frame, event, arg):
        if event == "call":
            name = codes.get(frame.f_code)
            if name is not None and name not in seen:
                seen.append(name)

    previous = sys.getprofile()
    sys.setprofile(hook)
    try:
        result = run()
    finally:
        sys.setprofile(previous)
    return seen, result


def _student_line(err: BaseException) -> str:
    """'line 4: `ab = schedule.alphas_cumprod[i]`' for the deepest frame of the student's own code."""
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if not os.path.abspath(f.filename).startswith((_PACKAGE_DIR, _TORCH_DIR))]
    if not frames:
        return ""
    frame = frames[-1]
    text = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
    return f" It happened in your code at line {frame.lineno}: `{text}`." if text else ""


def _finite_problem(out: torch.Tensor) -> str | None:
    if out.is_floating_point() and not bool(torch.isfinite(out.detach()).all()):
        bad = ~torch.isfinite(out.detach())
        kind = "NaN" if bool(torch.isnan(out.detach()).any()) else "inf"
        where = f" (first in row {int(bad.reshape(bad.shape[0], -1).any(1).nonzero()[0, 0])})" if out.dim() else ""
        return (f"your function returned {kind}{where}. Something divides by zero or takes the square root or "
                "log of a negative number; check each factor, e.g. √(1 − ᾱ_i) is 0 only if ᾱ_i = 1.")
    return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape:
            return False
        if not a.is_floating_point() or not b.is_floating_point():
            return bool(torch.equal(a, b))
        a, b = a.detach().double(), b.detach().double()
        return bool(((a - b).abs().max() if a.numel() else 0.0) <= ATOL + RTOL * (b.abs().max() if b.numel() else 0.0))
    return a == b


def _probe(exercise: Exercise, fn: Callable, make_case: Callable[[], Case]) -> dict[str, Any] | None:
    """The probe of ``fn`` on a fresh copy of the case, or None if it raised or returned a wrong shape."""
    case = make_case()
    status, out = _call(fn, case, exercise.call)
    if status != "ok" or not isinstance(out, torch.Tensor) or tuple(out.shape) != exercise.expected_shape(case):
        return None
    try:
        return exercise.probe(out, case)
    except Exception:  # a broken variant never matches
        return None


def _matches(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    return a is not None and b is not None and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)


def _rows_report(student: torch.Tensor, reference: torch.Tensor, case: Case) -> str:
    """Which rows (and, when the case has per-row steps, which steps) are right and which are wrong."""
    if student.dim() == 0 or student.shape != reference.shape:
        return ""
    diff = (student.detach().double() - reference.detach().double()).reshape(student.shape[0], -1).abs().amax(1)
    wrong = diff > ATOL + RTOL * reference.detach().abs().max().double()
    steps = case.extra.get("steps")
    if steps is not None:
        bad = sorted({int(s) for s, w in zip(steps.tolist(), wrong.tolist()) if w})
        good = sorted({int(s) for s, w in zip(steps.tolist(), wrong.tolist()) if not w} - set(bad))
        if good:
            return f" Rows with step i in {good} are right; rows with i in {bad} are wrong."
        return f" Every row is wrong (steps i = {bad})."
    n_wrong = int(wrong.sum())
    return f" {n_wrong} of {wrong.numel()} rows are wrong (the first is row {int(wrong.nonzero()[0, 0])})." if n_wrong else ""


# ----- the check --------------------------------------------------------------------------------------

def run_check(exercise: Exercise, fn: Callable, strict: bool = False) -> Verdict:
    """Run ``fn`` on every case of ``exercise``; print the verdict; raise ``ExerciseFailed`` when ``strict``
    and the answer is not right (including not implemented yet)."""
    verdict = _judge(exercise, fn)
    print(verdict.message)
    if strict and not verdict.passed:
        raise ExerciseFailed(verdict.message, exercise.name, verdict.reason)
    return verdict


def _label(exercise: Exercise) -> str:
    return exercise.equation.split(":")[0]


def _fail(exercise: Exercise, reason: str, text: str, case: Case | None = None) -> Verdict:
    where = f"\n  (Inputs of the failing test: {case.info}.)" if case is not None else ""
    text = text[:1].upper() + text[1:]
    return Verdict(exercise.name, False, reason, f"✗ {exercise.name} ({_label(exercise)}): not right yet.\n  {text}{where}")


def _judge(exercise: Exercise, fn: Callable) -> Verdict:
    name = exercise.name
    if not callable(fn):
        return _fail(exercise, "not_callable",
                     f"pass the function itself, e.g. check_{name}({name}), not the result of calling it "
                     f"(got a {type(fn).__name__}).")
    forbidden = exercise.forbidden()
    for number, make_case in enumerate(exercise.cases, start=1):
        case = make_case()
        before = [t.detach().clone() for t in _tensors(case.args)]
        called, (status, out) = kit_calls(forbidden, lambda: _call(fn, case, exercise.call))
        if called:
            names = " and ".join(called)
            return _fail(exercise, "calls_kit",
                         f"your answer calls {names}, the kit's own implementation of this exercise. "
                         f"{exercise.write_yourself}: the point is to see every term.", case)
        if status == "not_implemented":
            return Verdict(name, False, "not_implemented",
                           f"… {name} ({_label(exercise)}): not implemented yet. Replace the line "
                           "`raise NotImplementedError` with your code, run that cell, then run this check again.")
        if status == "error":
            return _explain_error(exercise, out, case)
        if any(not torch.equal(b, t.detach()) for b, t in zip(before, _tensors(case.args)) if b.shape == t.shape):
            return _fail(exercise, "modified_input",
                         "your function changed one of its input tensors in place (an operation ending in `_`, "
                         "or `x += ...` / `x[...] = ...` on an argument). Compute new tensors instead: the caller "
                         "still needs its inputs unchanged.", case)
        if out is None:
            return _fail(exercise, "returned_none", "your function returned None. Did you forget the `return` line?", case)
        if not isinstance(out, torch.Tensor):
            return _fail(exercise, "not_a_tensor",
                         f"your function returned a {type(out).__name__}; return a torch.Tensor "
                         "(no .item(), .tolist() or .numpy() at the end).", case)
        expected = exercise.expected_shape(case)
        if tuple(out.shape) != expected:
            hint = exercise.shape_hint(tuple(out.shape), case) or ""
            return _fail(exercise, "shape", f"your result has shape {tuple(out.shape)}, expected {expected}. {hint}".rstrip(), case)
        problem = _finite_problem(out)
        if problem:
            specific = exercise.nonfinite_hint(out, case)
            if specific is not None:
                return _fail(exercise, specific[0], specific[1], case)
            return _fail(exercise, "not_finite", problem, case)
        if out.dtype != torch.float32:
            return _fail(exercise, "dtype",
                         f"your result has dtype {out.dtype}; the kit works in float32 (avoid numpy/float64 "
                         "round trips, or end with .float()).", case)
        student = exercise.probe(out, case)
        ref_case = make_case()
        reference = exercise.probe(exercise.reference(ref_case), ref_case)
        if _matches(student, reference):
            continue
        for mistake in exercise.mistakes:
            if mistake.variant is not None and _matches(student, _probe(exercise, mistake.variant, make_case)):
                return _fail(exercise, mistake.reason, mistake.message, case)
        for mistake in exercise.mistakes:
            if mistake.detect is not None and mistake.detect(fn, exercise.cases):
                return _fail(exercise, mistake.reason, mistake.message, case)
        wrong = [k for k in reference if not _same(student.get(k), reference[k])]
        words = " and ".join(exercise.field_words.get(k, k) for k in wrong)
        if "value" in wrong:
            detail = _rows_report(student["value"], reference["value"], case)
        else:
            detail = (" The value is right, so the formula is; but part of the computation is detached, or a "
                      "gradient flows where it should not.")
        return _fail(exercise, "wrong_value",
                     f"the kit gets a different {words} (test {number} of {len(exercise.cases)}).{detail} "
                     f"Compare your formula with {_label(exercise)} term by term; the hints above go through it "
                     "step by step.", case)
    return Verdict(name, True, "correct",
                   f"✓ {name} ({exercise.equation}): correct. It matches the kit on {len(exercise.cases)} tests "
                   f"({'; '.join(c().info for c in exercise.cases)}).")


def _explain_error(exercise: Exercise, err: BaseException, case: Case) -> Verdict:
    where = _student_line(err)
    if isinstance(err, NetworkCallMistake):
        return _fail(exercise, "network_call", f"{err}{where}", case)
    if isinstance(err, TypeError) and "positional argument" in str(err) and not where.strip():
        return _fail(exercise, "signature", f"your function does not take the exercise's arguments ({err}). Keep the "
                     f"signature as given, in this order: {exercise.signature.split(' ->')[0]}.", case)
    specific = exercise.error_hint(err, case)
    if specific is not None:
        reason, text = specific
        return _fail(exercise, reason, f"{text}{where}", case)
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    generic = _generic_error_hint(err)
    return _fail(exercise, "error", f"your function raised {type(err).__name__}: {text}.{where} {generic}".rstrip(), case)


def _generic_error_hint(err: BaseException) -> str:
    text = str(err)
    if "must match the size of tensor" in text:
        return ("Two tensors of different shapes met: a per-row number of shape (B,) against a (B, d) batch "
                "must first become a column, (B, 1), with [:, None] or .unsqueeze(1).")
    if "Boolean value of Tensor with more than one value is ambiguous" in text:
        return "An `if` or `and`/`or` got a whole tensor; use torch.where(...) or a mask for per-row choices."
    if "does not require grad" in text:
        return "A gradient was asked of a tensor that is not part of a graph (it was detached or built under no_grad)."
    if "out of bounds" in text or "out of range" in text:
        return "An index is out of range: diffusion steps are 1-based, so step i lives at index i − 1."
    return ""
