"""Serve MathJax from the book itself, so formulas render offline.

The files live outside `_static` on purpose: Jupyter Book adds every .js file under `_static` to
every page, which would load all MathJax components eagerly. They are copied into the built
site once the HTML build has finished, and Sphinx is pointed at the local copy.
"""

from pathlib import Path

from sphinx.util.fileutil import copy_asset


def _copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        source = Path(app.srcdir) / app.config.local_mathjax_dir
        copy_asset(str(source), str(Path(app.outdir) / "_static" / "mathjax"))


def setup(app):
    app.add_config_value("local_mathjax_dir", "book/_mathjax", "html")
    app.config.mathjax_path = "mathjax/tex-mml-chtml.js"  # relative to _static/
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
