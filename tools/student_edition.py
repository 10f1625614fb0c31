"""The student edition: the chapters as notebooks without solutions, and its verification.

Usage:
    python tools/student_edition.py OUTPUT_DIR            write the notebooks and an index
    python tools/student_edition.py OUTPUT_DIR --verify   ... and execute every notebook

How the chapters mark their exercises (MyST, sphinx-exercise gated directives):

- ``{exercise-start}`` with ``:label: ex-<chapter>-<name>`` and ``:class:`` one of
  ``derivation``, ``computation``, ``exploration``; the exercise ends at ``{exercise-end}``;
- inside it, a code cell tagged ``exercise-stub`` defines the function the reader writes; its body
  raises ``NotImplementedError``;
- ``{solution-start} <label>`` ... ``{solution-end}`` holds the worked solution, with a code cell
  tagged ``exercise-solution`` that redefines the function;
- after the solution, a code cell tagged ``exercise-check`` runs ``check("<label>", <function>)``.

The student edition drops everything between ``{solution-start}`` and ``{solution-end}``, so the
check cells run against the stubs and say "not yet". Verification executes each notebook and
requires that the only errors are ``NotImplementedError`` and that every check reports a failure.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("derivation", "computation", "exploration")

_FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$")
_CHECK_CALL = re.compile(r"check\(\s*[\"'](?P<label>[^\"']+)[\"']\s*,\s*(?P<answer>\w+)\s*\)")


@dataclass
class ExerciseSource:
    """One exercise as written in a chapter."""

    label: str
    kind: str | None
    chapter: Path
    stubs: list[str] = field(default_factory=list)
    solutions: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    solution_text: bool = False


@dataclass
class ChapterSource:
    """A chapter's exercises, its first (import) code cell and any exercise not gated."""

    path: Path
    setup: str
    exercises: dict[str, ExerciseSource]
    ungated: int


def read_chapter(path: Path) -> ChapterSource:
    """Find the exercises of a chapter and the cells that belong to each of them."""
    notebook = jupytext.read(path)
    exercises: dict[str, ExerciseSource] = {}
    state, current = "text", None  # state: "text", "exercise" or "solution"
    setup, ungated = None, 0
    for cell in notebook.cells:
        source = cell.source
        if cell.cell_type == "markdown":
            lines = source.splitlines()
            for i, line in enumerate(lines):
                match = _FENCE.match(line.strip())
                if not match:
                    continue
                name = match["name"]
                if name == "exercise":
                    ungated += 1
                elif name == "exercise-start":
                    options = _options(lines, i + 1)
                    current = options.get("label", f"<unlabelled in {path.name}>")
                    exercises[current] = ExerciseSource(current, options.get("class"), path)
                    state = "exercise"
                elif name == "exercise-end":
                    state = "text"
                elif name == "solution-start":
                    current = match["arg"].strip()
                    if current in exercises:
                        exercises[current].solution_text = True
                    state = "solution"
                elif name == "solution-end":
                    state = "text"
            continue
        if cell.cell_type != "code":
            continue
        if setup is None:
            setup = source
        tags = set(cell.metadata.get("tags", []))
        if "exercise-stub" in tags and state == "exercise" and current in exercises:
            exercises[current].stubs.append(source)
        if "exercise-solution" in tags and state == "solution" and current in exercises:
            exercises[current].solutions.append(source)
        if "exercise-check" in tags:
            for call in _CHECK_CALL.finditer(source):
                if call["label"] in exercises:
                    exercises[call["label"]].checks.append(source)
    return ChapterSource(path, setup or "", exercises, ungated)


# --- the student notebook -----------------------------------------------------------------------

_KINDS_OF_LABEL = {"fig": "Figure", "tab": "Table", "eq": "Equation"}


@functools.cache
def _chapter_links() -> dict[str, Path]:
    """Each chapter's label, ``(chapter-...)=`` at its top, and the chapter's notebook path."""
    links = {}
    for path in chapters():
        match = re.search(r"^\((chapter-[\w-]+)\)=$", path.read_text(), re.M)
        if match:
            links[match[1]] = path.relative_to(ROOT / "chapters").with_suffix(".ipynb")
    return links


class _Context:
    """What the conversion of one chapter needs: where it lives and the exercise numbering."""

    def __init__(self, path: Path, first_exercise: int = 1) -> None:
        self.here = path.relative_to(ROOT / "chapters").parent
        self.chapters = _chapter_links()
        self.exercise = first_exercise

    def reference(self, text: str | None, label: str) -> str:
        """A cross-reference as Markdown: a link for a chapter, else the label in code font."""
        if label in self.chapters:
            target = Path(os.path.relpath(self.chapters[label], self.here)).as_posix()
            return f"[{text or label}]({target})"
        kind = _KINDS_OF_LABEL.get(label.split("-")[0])
        shown = f"{kind} `{label}`" if kind else f"`{label}`"
        return f"{text} ({shown})" if text else shown

    def roles(self, line: str) -> str:
        line = re.sub(
            r"\{cite(?::\w+)?\}`([^`]+)`", lambda m: "[" + m[1].replace(",", ", ") + "]", line
        )
        line = re.sub(r"\{glue:text\}`([^`:]+)(?::[^`]*)?`", lambda m: f"`{m[1]}`", line)
        line = re.sub(
            r"\{(?:prf:ref|numref|ref|doc|eq)\}`(?:([^`<]*?)\s*<)?([^`>]+)>?`",
            lambda m: self.reference(m[1], m[2]),
            line,
        )
        # Markdown links to a label of the book, e.g. [the primer](chapter-primer)
        return re.sub(r"\[([^\]]+)\]\(([a-z][\w-]*)\)", lambda m: self.reference(m[1], m[2]), line)


def _options(lines: list[str], start: int) -> dict[str, str]:
    options = {}
    for line in lines[start:]:
        match = re.match(r"^:([\w-]+):\s*(.*)$", line.strip())
        if not match:
            break
        options[match[1]] = match[2].strip()
    return options


def _plain_markdown(text: str, context: _Context) -> str:
    """MyST directives and roles as plain Markdown that Jupyter and Colab render."""
    lines = text.splitlines()
    out, open_fences, skip_options = [], [], False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if skip_options:
            if re.match(r"^:[\w-]+:", stripped):
                continue
            skip_options = False
        if re.match(r"^\([\w-]+\)=$", stripped):  # a target for cross-references
            continue
        match = _FENCE.match(stripped)
        if match:
            name, arg = match["name"], match["arg"].strip()
            options = _options(lines, i + 1)
            open_fences.append(match["fence"])
            skip_options = True
            if name == "exercise-start":
                kind = options.get("class", "")
                label = options.get("label", "")
                out.append(f"### Exercise {context.exercise} · {kind} (`{label}`)")
                context.exercise += 1
            elif name == "exercise-end":
                pass
            elif name.startswith("glue:figure"):
                label = options.get("name", arg)
                out.append(f"*Figure `{label}`, drawn by the code cell above:*")
            else:
                title = name.split(":")[-1].replace("-", " ").capitalize()
                label = f" `{options['label']}`" if "label" in options else ""
                out.append(f"**{title}{label}.** {context.roles(arg)}".rstrip())
            continue
        if open_fences and stripped == open_fences[-1]:
            open_fences.pop()
            continue
        out.append(context.roles(line))
    return "\n".join(out).strip()


def _drop_solutions(notebook, context: _Context) -> list:
    """The cells outside every solution block (markdown cells are cut at the fences)."""
    kept, in_solution = [], False
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            if not in_solution:
                kept.append(cell)
            continue
        parts, closing = [], None
        for line in cell.source.splitlines():
            if closing is not None:
                if line.strip() == closing:
                    closing = None
                    continue
                closing = None
            match = _FENCE.match(line.strip())
            if match and match["name"] == "solution-start":
                in_solution = True
                continue
            if match and match["name"] == "solution-end":
                in_solution, closing = False, match["fence"]
                parts.append("")
                continue
            if not in_solution:
                parts.append(line)
        text = _plain_markdown("\n".join(parts), context)
        text = text.replace("the solutions are folded.", "the solutions are not in this edition.")
        if text.strip():
            cell.source = text
            kept.append(cell)
    return kept


def student_notebook(path: Path, first_exercise: int = 1):
    """The chapter at ``path`` as a student notebook: no solutions, plain Markdown.

    Exercises are numbered from ``first_exercise``, as in the book (one count over all chapters).
    """
    notebook = jupytext.read(path)
    cells = _drop_solutions(notebook, _Context(path, first_exercise))
    for cell in cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            # myst-nb's glue places values in the book's text; the notebook shows them instead.
            cell.source = _make_notebooks().without_myst_nb(cell.source)
    intro = nbformat.v4.new_markdown_cell(
        "*Student edition.* The solutions are left out. Replace the body of each function that "
        "raises `NotImplementedError`, then run the `check(...)` cell below it: it tests your "
        "answer against the mathematics of the chapter and says what, if anything, is wrong. "
        "Numbers that the book writes into its text appear here as names in code font, such as "
        "`rate`; the code cell above the text prints them as `rate = ...`."
    )
    notebook.cells = [_install_cell(), intro, _macro_cell(), *cells]
    notebook.metadata.pop("jupytext", None)
    nbformat.validate(notebook)
    return notebook


def _macro_cell():
    """The book's LaTeX macros (from ``_config.yml``) for the notebook's MathJax."""
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    macros = config["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]
    lines = []
    for name, body in macros.items():
        if isinstance(body, list):
            lines.append(f"\\newcommand{{\\{name}}}[{body[1]}]{{{body[0]}}}")
        else:
            lines.append(f"\\newcommand{{\\{name}}}{{{body}}}")
    return nbformat.v4.new_markdown_cell("$$\n" + "\n".join(lines) + "\n$$")


@functools.cache
def _make_notebooks():
    """The Colab-copy tool, whose install cell and glue stand-in the student edition shares."""
    spec = importlib.util.spec_from_file_location(
        "make_notebooks", ROOT / "tools" / "make_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _install_cell():
    return _make_notebooks().install_cell()


def chapters() -> list[Path]:
    """The chapters in the order of the table of contents."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node and str(node["file"]).startswith("chapters/"):
                files.append(ROOT / f"{node['file']}.md")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return files


def write_edition(output_dir: Path) -> list[Path]:
    """Write every chapter's student notebook and an index page; return the notebook paths."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written, rows, number = [], [], 1
    for path in chapters():
        source = read_chapter(path)
        target = output_dir / path.relative_to(ROOT / "chapters").with_suffix(".ipynb")
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student_notebook(path, number), target)
        written.append(target)
        title = next(line[2:] for line in path.read_text().splitlines() if line.startswith("# "))
        count = len(source.exercises)
        numbers = f"{number}–{number + count - 1}" if count else ""
        labels = ", ".join(f"`{label}`" for label in source.exercises)
        rows.append(f"| [{title}]({target.relative_to(output_dir)}) | {numbers} | {labels} |")
        number += count
    index = [
        "# Neural Networks as Dynamical Systems: student edition",
        "",
        "Each notebook is a chapter of the book without the solutions. Every exercise has a",
        "number (the same as in the book) and a label, both in its heading. Write your answer in",
        'the cell that raises `NotImplementedError`, then run the cell `check("<label>", <your',
        "function>)` below it: it tests the answer against the chapter's mathematics (closed",
        "forms, theorems, limits) and says which property failed, and by how much.",
        "",
        "Open the notebooks in Jupyter, on Binder or on Colab. The first cell installs the",
        "book's package `dsnn` with `pip` where it is missing; with a clone of the book's",
        "repository, `make venv` installs everything into `.venv` instead.",
        "",
        "| Chapter | Exercises | Labels |",
        "| --- | --- | --- |",
        *rows,
        "",
    ]
    (output_dir / "index.md").write_text("\n".join(index))
    return written


# --- verification -------------------------------------------------------------------------------


def _execute(path: str) -> tuple[str, list[str], float]:
    """Execute one student notebook; return the problems found and the time taken."""
    from nbclient import NotebookClient

    start = time.perf_counter()
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(Path(path).parent)}},
    )
    client.execute()
    problems = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.output_type == "error" and output.ename != "NotImplementedError":
                problems.append(f"{output.ename}: {output.evalue} in\n{cell.source[:300]}")
        if "exercise-check" in cell.metadata.get("tags", []):
            text = "".join(
                o.get("data", {}).get("text/plain", "") + o.get("text", "")
                for o in cell.get("outputs", [])
            )
            if "not yet" not in text:
                problems.append(f"a check did not report a failure on the stub:\n{cell.source}")
    return path, problems, time.perf_counter() - start


def verify(notebooks: list[Path], workers: int = 2) -> dict[str, list[str]]:
    """Execute the notebooks (in parallel); map each to its problems (empty when it is fine)."""
    os.environ.pop("DSNN_EXERCISES_STRICT", None)  # the stubs must fail quietly here
    # Two kernels on a small machine: one thread each, as the book build does.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_execute, [str(p) for p in notebooks]))
    for path, problems, seconds in results:
        status = "ok" if not problems else f"{len(problems)} problem(s)"
        print(f"  {Path(path).name}: {status} ({seconds:.0f} s)")
    return {path: problems for path, problems, _ in results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--verify", action="store_true", help="execute the notebooks too")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    notebooks = write_edition(args.output_dir)
    print(f"wrote {len(notebooks)} student notebooks and index.md to {args.output_dir}")
    if args.verify:
        problems = verify(notebooks)
        bad = {p: v for p, v in problems.items() if v}
        for path, items in bad.items():
            print(f"\n{path}:\n" + "\n".join(items), file=sys.stderr)
        if bad:
            return 1
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
