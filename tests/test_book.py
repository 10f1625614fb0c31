"""The book build is strict: a failing cell or a broken reference fails it.

Builds tiny books in a temporary folder with the project's own `_config.yml` (execution and
Sphinx settings) and the flags the Makefile passes to `jupyter-book build`.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"

HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""

GOOD = (
    HEADER
    + """
(good-page)=
# A good page

```{code-cell} ipython3
print(sum(range(10)))
```

See {ref}`good-page`.
"""
)


def makefile_flags() -> list[str]:
    match = re.search(r"^JB_FLAGS\s*:=\s*(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "the Makefile defines JB_FLAGS for jupyter-book build"
    return match.group(1).split()


def build(tmp_path: Path, page: str) -> subprocess.CompletedProcess:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["cache"] = str(tmp_path / "cache")
    config["bibtex_bibfiles"] = ["references.bib"]
    # The local extensions (offline MathJax, Colab links) and their settings are not under test.
    config["sphinx"].pop("local_extensions", None)
    config["sphinx"]["config"].pop("colab_notebooks_branch", None)
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    (tmp_path / "references.bib").write_text((ROOT / "book" / "references.bib").read_text())
    (tmp_path / "page.md").write_text(page)
    return subprocess.run(
        [str(JUPYTER_BOOK), "build", str(tmp_path), *makefile_flags()],
        capture_output=True,
        text=True,
        timeout=300,
    )


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not JUPYTER_BOOK.exists(), reason="jupyter-book is not installed here"),
]


def test_the_makefile_builds_strictly():
    assert set(makefile_flags()) >= {"-W", "-n", "--keep-going"}
    execute = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]
    assert execute["raise_on_error"] is True and execute["allow_errors"] is False


def test_a_clean_page_builds(tmp_path):
    result = build(tmp_path, GOOD)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = (tmp_path / "_build" / "html" / "page.html").read_text()
    assert "45" in html  # the cell was executed and its output rendered


def test_a_cell_that_raises_fails_the_build(tmp_path):
    page = GOOD.replace("print(sum(range(10)))", "raise RuntimeError('deliberate failure')")
    result = build(tmp_path, page)
    assert result.returncode != 0
    assert "deliberate failure" in result.stdout + result.stderr


def test_a_broken_cross_reference_fails_the_build(tmp_path):
    result = build(tmp_path, GOOD.replace("{ref}`good-page`", "{ref}`no-such-label`"))
    assert result.returncode != 0
    assert "no-such-label" in result.stdout + result.stderr


def test_an_unknown_citation_fails_the_build(tmp_path):
    result = build(tmp_path, GOOD + "\nAs shown by {cite}`nobody1900nothing`.\n")
    assert result.returncode != 0
    assert "nobody1900nothing" in result.stdout + result.stderr


@pytest.fixture(autouse=True)
def _clean(tmp_path):
    yield
    shutil.rmtree(tmp_path / "_build", ignore_errors=True)
