"""Write an `.ipynb` copy of every chapter for Colab and for download.

Usage: python tools/make_notebooks.py OUTPUT_DIR

Each copy keeps the chapter's path (chapters/.../name.ipynb) and gets one extra first cell that
installs the book's package, pinned to this version, when it is missing: the same notebook then
runs on Colab, on Binder and locally. The book's myst-nb ``glue`` (which writes computed values
into the text of the HTML book) is replaced by a small stand-in that shows them in the notebook,
so the copies need nothing that the package does not install. The repository URL comes from
`_config.yml` (the one place that names it) and the version from `pyproject.toml`.
"""

import re
import sys
from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]

INSTALL = """\
# On Colab or any environment without the book's package: install dsnn {version}, quietly.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("dsnn") is None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "dsnn @ git+{url}@v{version}"],
        check=True,
    )"""


GLUE_IMPORT = "from myst_nb import glue"
GLUE_STANDIN = '''def glue(name, value, display=True):
    """In the book, glue writes a computed value into the text; here it shows it."""
    from IPython.display import display as show

    if hasattr(value, "savefig"):
        show(value)
    else:
        print(f"{name} = {value}")'''


def without_myst_nb(source: str) -> str:
    """A code cell's source with myst-nb's glue replaced by the stand-in."""
    return source.replace(GLUE_IMPORT, GLUE_STANDIN)


def install_cell() -> nbformat.NotebookNode:
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)[1]
    cell = nbformat.v4.new_code_cell(INSTALL.format(url=url, version=version))
    cell.metadata["tags"] = ["remove-cell"]
    return cell


def convert(chapter: Path, output_dir: Path) -> Path:
    notebook = jupytext.read(chapter)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.source = without_myst_nb(cell.source)
    notebook.cells.insert(0, install_cell())
    notebook.metadata.pop("jupytext", None)
    nbformat.validate(notebook)
    target = output_dir / chapter.relative_to(ROOT).with_suffix(".ipynb")
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    return target


def main(output_dir: str) -> None:
    chapters = sorted((ROOT / "chapters").rglob("*.md"))
    for chapter in chapters:
        convert(chapter, Path(output_dir))
    print(f"wrote {len(chapters)} notebooks to {output_dir}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
