"""The machinery behind :func:`dsnn.exercises.check`.

An exercise is registered with :func:`exercise`, a decorator on its *checker*: a function that
receives the reader's answer and either returns a short success message or raises
:class:`CheckFailed` with a message that says which property failed and by how much. Checkers test
properties (closed forms, theorems, limits) on inputs of their own choosing, so a reader's answer
is judged the way the chapter judges its own code, not against a stored number.

Every exercise also carries ``wrong``: plausible mistakes (a missing factor of two, the wrong sign)
that its checker must reject. The test suite runs them, so a checker that passes everything cannot
go unnoticed.
"""

from __future__ import annotations

import difflib
import html
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

KINDS = ("derivation", "computation", "exploration")
_LABEL = re.compile(r"^ex-[a-z0-9]+(-[a-z0-9]+)+$")
STRICT_ENV = "DSNN_EXERCISES_STRICT"


class CheckFailed(Exception):
    """Raised by a checker when the answer lacks a required property; the message says which."""


class ExerciseCheckError(AssertionError):
    """A failed check in strict mode (set ``DSNN_EXERCISES_STRICT=1``; the book build does)."""


@dataclass(frozen=True)
class Exercise:
    """One registered exercise: its label in the book, what it asks for, and its checker."""

    id: str
    chapter: str
    kind: str
    answer: str
    checker: Callable = field(repr=False)
    wrong: tuple = field(default=(), repr=False)


@dataclass(frozen=True)
class CheckResult:
    """Outcome of :func:`check`; true when the answer passed."""

    exercise_id: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = "passed" if self.passed else "not yet"
        return f"{self.exercise_id}: {mark} - {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = "#009E73" if self.passed else "#D55E00"
        mark = "&#10003; passed" if self.passed else "&#10007; not yet"
        return (
            f'<div class="dsnn-check" style="border-left:4px solid {colour};padding:0.3em 0.8em">'
            f"<strong>{html.escape(self.exercise_id)}: {mark}</strong><br>"
            f"{html.escape(self.message)}</div>"
        )


REGISTRY: dict[str, Exercise] = {}


def exercise(
    exercise_id: str,
    *,
    chapter: str,
    kind: str,
    answer: str,
    wrong: Sequence = (),
) -> Callable:
    """Register the decorated checker for ``exercise_id`` (the exercise's label in the book).

    ``answer`` describes what :func:`check` expects, e.g. ``"heun(f, x, T, L) -> tensor"``;
    ``wrong`` lists plausible mistaken answers the checker must reject.
    """
    if not _LABEL.match(exercise_id):
        raise ValueError(f"exercise_id must look like 'ex-<chapter>-<name>', got {exercise_id!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def register(checker: Callable) -> Callable:
        if exercise_id in REGISTRY:
            raise ValueError(f"exercise {exercise_id!r} is registered twice")
        REGISTRY[exercise_id] = Exercise(exercise_id, chapter, kind, answer, checker, tuple(wrong))
        return checker

    return register


def check(exercise_id, answer) -> CheckResult:
    """Check ``answer`` to the exercise ``exercise_id`` and say what, if anything, is wrong.

    Never raises for a wrong answer or bad input: the result is false and its message explains.
    Under ``DSNN_EXERCISES_STRICT=1`` (the book build) a failed check raises
    :class:`ExerciseCheckError`, so that a solution in the book that stops passing breaks the build.
    """
    result = _check(exercise_id, answer)
    if not result.passed and os.environ.get(STRICT_ENV, "") not in ("", "0"):
        raise ExerciseCheckError(str(result))
    return result


def _check(exercise_id, answer) -> CheckResult:
    if not isinstance(exercise_id, str):
        return CheckResult(
            repr(exercise_id),
            False,
            f"exercise_id must be a string such as 'ex-primer-heun', got "
            f"{type(exercise_id).__name__}",
        )
    entry = REGISTRY.get(exercise_id)
    if entry is None:
        close = difflib.get_close_matches(exercise_id, REGISTRY, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        return CheckResult(
            exercise_id,
            False,
            f"unknown exercise id {exercise_id!r}.{hint} "
            "The id is the exercise's label, as in the check cell under the exercise; "
            "dsnn.exercises.catalogue() lists all of them.",
        )
    try:
        message = entry.checker(answer)
    except NotImplementedError:  # the answer is still the stub
        return CheckResult(exercise_id, False, _stub_message(entry))
    except CheckFailed as err:
        return CheckResult(exercise_id, False, f"{err} (expected: {entry.answer})")
    except Exception as err:  # the answer broke the checker: report it, never a traceback
        return CheckResult(
            exercise_id,
            False,
            f"could not check the answer ({type(err).__name__}: {err}); expected: {entry.answer}",
        )
    return CheckResult(exercise_id, True, message or "all checks passed")


def _stub_message(entry: Exercise) -> str:
    return (
        f"the answer still raises NotImplementedError: replace the stub's body with your own code "
        f"(expected: {entry.answer})"
    )


# --- helpers for writing checkers -------------------------------------------------------------


def call(function, *args, name: str | None = None, **kwargs):
    """Call the reader's ``function``; turn its errors into a :class:`CheckFailed` message."""
    if not callable(function):
        raise CheckFailed(f"the answer must be a function, got {type(function).__name__}")
    label = name or getattr(function, "__name__", "the function")
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        raise  # a stub: check() says so
    except Exception as err:
        shown = ", ".join(
            [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
        )
        raise CheckFailed(f"{label}({shown}) raised {type(err).__name__}: {err}") from err


def as_array(name: str, value, shape: tuple | None = None) -> np.ndarray:
    """``value`` as a finite float array of the given shape, or a :class:`CheckFailed`."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if np.iscomplexobj(value):
        raise CheckFailed(f"{name} must be real numbers, got complex numbers")
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise CheckFailed(
            f"{name} must be numbers (a float, an array or a tensor), got {type(value).__name__}"
        ) from err
    if shape is not None and array.shape != tuple(shape):
        raise CheckFailed(f"{name} must have shape {tuple(shape)}, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise CheckFailed(f"{name} contains NaN or infinite values")
    return array


def as_float(name: str, value) -> float:
    """``value`` as one finite float, or a :class:`CheckFailed`."""
    return float(as_array(name, value, shape=()))


def close(name: str, got, expected, *, rtol: float = 1e-6, atol: float = 0.0) -> None:
    """Raise :class:`CheckFailed` unless ``got`` matches ``expected`` within the tolerances."""
    expected = np.asarray(expected, dtype=float)
    got = as_array(name, got, shape=expected.shape)
    error = np.abs(got - expected)
    allowed = atol + rtol * np.abs(expected)
    if np.all(error <= allowed):
        return
    worst = int(np.argmax(error - allowed))
    g, e = got.reshape(-1)[worst], expected.reshape(-1)[worst]
    index = tuple(int(i) for i in np.unravel_index(worst, expected.shape))
    where = "" if expected.ndim == 0 else f" at index {index if len(index) > 1 else index[0]}"
    relative = f", relative {abs(g - e) / abs(e):.2g}" if e != 0 else ""
    raise CheckFailed(
        f"{name}{where} is {g:.6g}, but should be {e:.6g} "
        f"(off by {abs(g - e):.3g}{relative}; tolerance rtol={rtol:g}, atol={atol:g})"
    )


def _short(value) -> str:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return f"<array of shape {tuple(value.shape)}>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def catalogue(chapter: str | None = None) -> list[Exercise]:
    """All registered exercises (of one ``chapter``, given its file name without ``.md``)."""
    chapters = sorted({e.chapter for e in REGISTRY.values()})
    if chapter is not None and chapter not in chapters:
        raise ValueError(f"chapter must be one of {chapters}, got {chapter!r}")
    return [e for e in REGISTRY.values() if chapter is None or e.chapter == chapter]
