"""The project's files agree with each other: pins, Binder, table of contents, chapter headers."""

import re
from pathlib import Path

import jupytext
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def pinned(path: Path) -> dict[str, str]:
    """Map package name -> exact version for every `name==version` line of a requirements file."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{path.name}: {line!r} is not an exact pin"
        pins[req.name.lower().replace("_", "-")] = spec.version
    return pins


def test_every_root_requirement_is_an_exact_pin_and_the_package_is_editable():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pins = pinned(ROOT / "requirements.txt")
    assert "-e ." in [line.strip() for line in lines]
    for name in [
        "torch",
        "jupyter-book",
        "sphinx-proof",
        "sphinx-exercise",
        "jupytext",
        "numpy",
        "scipy",
        "matplotlib",
        "sympy",
        "torchdiffeq",
        "networkx",
        "pytest",
        "hypothesis",
        "ruff",
        "sphinxcontrib-bibtex",
    ]:
        assert name in pins, f"{name} is not pinned in requirements.txt"
    assert pins["jupyter-book"].startswith("1."), "the book needs Jupyter Book 1.x"
    assert "+" not in pins["torch"], "pin torch without a local label; Binder adds +cpu"


def test_binder_installs_cpu_torch_with_the_same_pins():
    binder = ROOT / "binder" / "requirements.txt"
    text = binder.read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text
    assert "-r ../requirements.txt" in text, "Binder must take every other pin from the root file"
    binder_pins = pinned(binder)
    root_pins = pinned(ROOT / "requirements.txt")
    assert binder_pins == {"torch": root_pins["torch"] + "+cpu"}
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part["chapters"]:
            files.append(chapter["file"])
            files.extend(section["file"] for section in chapter.get("sections", []))
    return files


def test_every_toc_entry_exists_and_every_chapter_is_listed():
    for entry in toc_files():
        assert (ROOT / f"{entry}.md").exists(), f"_toc.yml lists {entry} but {entry}.md is missing"
    listed = {f"{entry}.md" for entry in toc_files()}
    for chapter in (ROOT / "chapters").rglob("*.md"):
        assert str(chapter.relative_to(ROOT)) in listed, f"{chapter} is not in _toc.yml"


def test_chapters_are_myst_notebooks_with_the_full_jupytext_header():
    for chapter in (ROOT / "chapters").rglob("*.md"):
        text = chapter.read_text()
        match = re.match(r"---\n(.*?)\n---\n", text, re.S)
        assert match, f"{chapter} has no front matter"
        header = yaml.safe_load(match.group(1))
        assert header["jupytext"]["text_representation"]["format_name"] == "myst", chapter
        assert header["kernelspec"]["name"] == "python3", chapter
        assert not chapter.with_suffix(".ipynb").exists(), f"{chapter} has an .ipynb twin"


def test_chapters_never_switch_matplotlib_to_a_non_interactive_backend():
    # matplotlib.use("Agg") in a chapter silently removes every figure from the book.
    for chapter in (ROOT / "chapters").rglob("*.md"):
        text = chapter.read_text()
        assert 'use("Agg")' not in text and "MPLBACKEND" not in text, chapter


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [
        line.strip()
        for line in ci.splitlines()
        if line.strip() and not line.strip().startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test"]
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme


def test_mathjax_is_served_from_the_book_itself():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["sphinx"]["local_extensions"]["local_mathjax"] == "book/_ext"
    assert (ROOT / "book" / "_mathjax" / "tex-mml-chtml.js").stat().st_size > 100_000
    assert (ROOT / "book" / "_mathjax" / "output" / "chtml" / "fonts").is_dir()
    # Nothing under a _static folder: Jupyter Book would inject every .js file into every page.
    for static in (ROOT / "_static", ROOT / "book" / "_static"):
        assert not list(static.glob("**/*.js")), f"{static} must not hold MathJax"


def test_citation_and_changelog_name_the_package_version():
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert str(citation["version"]) == version.group(1)
    assert f"## {version.group(1)}" in (ROOT / "CHANGELOG.md").read_text()


def test_every_glued_figure_has_a_name_and_alt_text():
    for chapter in (ROOT / "chapters").rglob("*.md"):
        blocks = re.findall(r"```+\{glue:figure\}[^\n]*\n((?::[^\n]*\n)*)", chapter.read_text())
        for options in blocks:
            assert ":name:" in options, f"{chapter}: a figure without :name:"
            assert re.search(r":alt: \S", options), f"{chapter}: a figure without :alt: text"


def test_notebook_copies_install_the_pinned_package_first(tmp_path):
    import importlib.util

    import nbformat

    spec = importlib.util.spec_from_file_location(
        "make_notebooks", ROOT / "tools" / "make_notebooks.py"
    )
    make_notebooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_notebooks)
    chapter = ROOT / "chapters" / "00_primer" / "three_views.md"
    target = make_notebooks.convert(chapter, tmp_path)
    assert target == tmp_path / "chapters" / "00_primer" / "three_views.ipynb"
    notebook = nbformat.read(target, as_version=4)
    nbformat.validate(notebook)
    first = notebook.cells[0].source
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)[1]
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert f"dsnn @ git+{url}@v{version}" in first and 'find_spec("dsnn") is None' in first
    # Everything else is the chapter itself, with a stand-in for myst-nb's glue (not on Colab).
    assert [c.source for c in notebook.cells[1:]] == [
        make_notebooks.without_myst_nb(c.source) for c in jupytext.read(chapter).cells
    ]
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert "myst_nb" not in code and "def glue(name, value" in code
