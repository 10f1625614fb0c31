"""The course kit: every exercise has a stub, a solution and a check, and the checks discriminate.

- Source and registry agree: each gated exercise in a chapter is registered with the same kind,
  has a stub cell, a worked solution with code, and a check cell after it.
- Every stub fails its check and every registered plausible mistake fails it too, so no check
  passes everything.
- Every worked solution passes its check: the book build runs with ``DSNN_EXERCISES_STRICT=1``,
  where a failed check raises; the outputs in its execution cache are inspected here.
- The student edition executes top to bottom, with ``NotImplementedError`` the only error.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from dsnn import exercises
from dsnn.exercises import _core

ROOT = Path(__file__).resolve().parents[1]

_spec = importlib.util.spec_from_file_location(
    "student_edition", ROOT / "tools" / "student_edition.py"
)
student_edition = importlib.util.module_from_spec(_spec)
sys.modules["student_edition"] = student_edition  # dataclasses look their module up
_spec.loader.exec_module(student_edition)

CHAPTERS = student_edition.chapters()
SOURCES = {path.stem: student_edition.read_chapter(path) for path in CHAPTERS}
ALL_SOURCE_EXERCISES = [(c, label) for c, src in SOURCES.items() for label in src.exercises]


@pytest.fixture(autouse=True)
def _not_strict(monkeypatch):
    monkeypatch.delenv(_core.STRICT_ENV, raising=False)


@pytest.mark.parametrize("chapter", SOURCES)
def test_chapter_has_four_mixed_gated_exercises(chapter):
    source = SOURCES[chapter]
    assert source.ungated == 0, f"{chapter}: every exercise must be gated and have a solution"
    kinds = [e.kind for e in source.exercises.values()]
    assert len(kinds) >= 4, f"{chapter} has {len(kinds)} exercises, at least 4 are required"
    assert set(kinds) == set(exercises.KINDS), f"{chapter}: kinds {kinds} miss one of each"


@pytest.mark.parametrize(("chapter", "label"), ALL_SOURCE_EXERCISES)
def test_exercise_has_stub_solution_and_check(chapter, label):
    source = SOURCES[chapter].exercises[label]
    registered = _core.REGISTRY.get(label)
    assert registered is not None, f"{label} has no check in dsnn.exercises.{chapter}"
    assert registered.chapter == chapter
    assert source.kind == registered.kind, f"{label}: class {source.kind} vs {registered.kind}"
    assert source.stubs, f"{label}: no code cell tagged exercise-stub inside the exercise"
    assert source.solution_text and source.solutions, f"{label}: no solution code cell"
    assert source.checks, f"{label}: no exercise-check cell calling check({label!r}, ...)"
    for stub in source.stubs:
        assert "raise NotImplementedError" in stub


def test_every_registered_exercise_is_in_a_chapter():
    in_sources = {label for _, label in ALL_SOURCE_EXERCISES}
    assert set(_core.REGISTRY) == in_sources


def _stub_answer(chapter: str, label: str):
    """Execute the chapter's import cell and the stub; return the object the check cell passes."""
    source = SOURCES[chapter]
    namespace: dict = {}
    exec(compile(source.setup, f"{chapter}:setup", "exec"), namespace)
    for stub in source.exercises[label].stubs:
        exec(compile(stub, f"{label}:stub", "exec"), namespace)
    call = student_edition._CHECK_CALL.search(source.exercises[label].checks[0])
    return namespace[call["answer"]]


@pytest.mark.parametrize(("chapter", "label"), ALL_SOURCE_EXERCISES)
def test_stub_fails_its_check(chapter, label):
    result = exercises.check(label, _stub_answer(chapter, label))
    assert not result.passed
    assert "NotImplementedError" in result.message


@pytest.mark.parametrize("label", sorted(_core.REGISTRY))
def test_plausible_mistakes_fail_their_check(label):
    entry = _core.REGISTRY[label]
    assert entry.wrong, f"{label}: register at least one plausible mistake its check rejects"
    for number, wrong in enumerate(entry.wrong):
        result = exercises.check(label, wrong)
        assert not result.passed, f"{label}: mistake #{number} passed the check"
        assert "could not check" not in result.message, result.message


def _executed_chapter(path: Path):
    """The chapter with the outputs of its last execution, from the book's execution cache."""
    import jupytext
    from jupyter_cache import get_cache

    cache_dir = ROOT / "_build" / ".jupyter_cache"
    if not cache_dir.exists():
        return None
    try:
        return get_cache(cache_dir).merge_match_into_notebook(jupytext.read(path))[1]
    except KeyError:  # this version of the chapter has not been executed yet
        return None


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_worked_solutions_pass_in_the_built_book(path):
    notebook = _executed_chapter(path)
    if notebook is None:
        pytest.skip("this chapter has not been executed yet (make test builds the book first)")
    seen = set()
    for cell in notebook.cells:
        if "exercise-check" not in cell.metadata.get("tags", []):
            continue
        text = "".join(
            o.get("data", {}).get("text/plain", "") + o.get("text", "") for o in cell.outputs
        )
        label = re.search(r"check\(\s*[\"']([^\"']+)", cell.source)[1]
        assert f"{label}: passed" in text, f"{label}: the worked solution fails: {text}"
        seen.add(label)
    assert seen == set(SOURCES[path.stem].exercises)


# --- check() on bad input: a message, never a traceback ---------------------------------------


def test_unknown_id_suggests_the_closest_labels():
    result = exercises.check("ex-primer-huen", lambda *a: None)
    assert not result.passed
    assert "unknown exercise id 'ex-primer-huen'" in result.message
    assert "ex-primer-heun" in result.message


def test_non_string_id_is_explained():
    result = exercises.check(3, None)
    assert not result.passed and "must be a string" in result.message


def test_wrong_type_and_shape_are_explained():
    not_a_function = exercises.check("ex-primer-heun", 2.5)
    assert "must be a function, got float" in not_a_function.message
    wrong_shape = exercises.check("ex-primer-optimal-step", lambda lo, hi: (np.ones(3), 0.5))
    assert "must have shape ()" in wrong_shape.message
    not_a_pair = exercises.check("ex-primer-optimal-step", lambda lo, hi: 0.1)
    assert "pair" in not_a_pair.message


def test_errors_inside_the_answer_are_reported_with_the_input():
    def broken(f, x, T, L):
        raise ZeroDivisionError("oops")

    result = exercises.check("ex-primer-heun", broken)
    assert not result.passed
    assert "raised ZeroDivisionError: oops" in result.message


def test_a_failed_check_says_by_how_much():
    result = exercises.check("ex-primer-uniform-onset", lambda gamma: 2 * gamma)
    assert "should be 0.63662" in result.message and "relative" in result.message


def test_strict_mode_raises_on_failure_only(monkeypatch):
    monkeypatch.setenv(_core.STRICT_ENV, "1")
    with pytest.raises(exercises.ExerciseCheckError, match="ex-primer-uniform-onset: not yet"):
        exercises.check("ex-primer-uniform-onset", lambda gamma: 2 * gamma)
    assert exercises.check("ex-primer-uniform-onset", lambda gamma: 4 * gamma / np.pi)


def test_result_renders_for_notebooks():
    result = exercises.check("ex-primer-uniform-onset", lambda gamma: 4 * gamma / np.pi)
    assert str(result).startswith("ex-primer-uniform-onset: passed")
    assert "passed" in result._repr_html_()


def test_registration_rejects_bad_labels_and_kinds():
    with pytest.raises(ValueError, match="exercise_id must look like"):
        _core.exercise("heun", chapter="x", kind="derivation", answer="")
    with pytest.raises(ValueError, match="kind must be one of"):
        _core.exercise("ex-x-y", chapter="x", kind="essay", answer="")
    with pytest.raises(ValueError, match="registered twice"):
        _core.exercise("ex-primer-heun", chapter="x", kind="derivation", answer="")(print)


def test_catalogue_lists_a_chapter_and_rejects_unknown_chapters():
    assert {e.id for e in exercises.catalogue("three_views")} >= {"ex-primer-heun"}
    with pytest.raises(ValueError, match="chapter must be one of"):
        exercises.catalogue("no_such_chapter")


# --- the student edition ------------------------------------------------------------------------


def test_student_notebook_has_no_solutions_and_plain_markdown():
    path = ROOT / "chapters" / "00_primer" / "three_views.md"
    notebook = student_edition.student_notebook(path)
    text = "\n".join(cell.source for cell in notebook.cells)
    for number, (label, source) in enumerate(SOURCES["three_views"].exercises.items(), start=1):
        assert f"### Exercise {number} · {source.kind} (`{label}`)" in text
    assert "exercise-solution" not in json.dumps([c.metadata for c in notebook.cells])
    assert "{solution-start}" not in text and "{exercise-start}" not in text
    assert "{cite}" not in text and "{glue:text}" not in text and "(chapter-primer)=" not in text
    assert "2 / (lam_min + lam_max)" not in text  # the worked solution
    assert "raise NotImplementedError" in text
    assert "from myst_nb import glue" not in text and "def glue(name, value" in text


@pytest.mark.slow
def test_student_edition_executes_with_only_not_implemented_errors(tmp_path):
    """Execute every student notebook; cached on the content of the chapters and the package."""
    digest = hashlib.sha256()
    for path in sorted(
        [*CHAPTERS, *(ROOT / "code").rglob("*.py"), ROOT / "tools" / "student_edition.py"]
    ):
        digest.update(path.read_bytes())
    marker = ROOT / "_build" / ".student-verified"
    if marker.exists() and marker.read_text() == digest.hexdigest():
        return
    notebooks = student_edition.write_edition(tmp_path)
    assert (tmp_path / "index.md").exists()
    problems = student_edition.verify(notebooks)
    assert not any(problems.values()), json.dumps(problems, indent=1)
    marker.parent.mkdir(exist_ok=True)
    marker.write_text(digest.hexdigest())


def test_every_kind_is_shown_in_the_book():
    css = (ROOT / "_static" / "exercises.css").read_text()
    for kind in exercises.KINDS:
        assert f"div.exercise.{kind}" in css and f'"· {kind}"' in css
