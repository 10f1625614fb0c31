"""Point each chapter's Colab button at its published notebook.

Colab opens `.ipynb` files only, and the chapters are MyST `.md` notebooks. `make notebooks`
writes an `.ipynb` copy of every chapter (same path, with a first cell that installs the package
when it is missing), and the publishing workflow pushes those copies to the branch named by
`colab_notebooks_branch`. The theme builds the Colab link from the `.md` path on the source
branch; this extension rewrites it to the `.ipynb` on the notebooks branch.
"""

import re


def _point_colab_at_notebooks(app, pagename, templatename, context, doctree):
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            url = button.get("url", "")
            if "colab.research.google.com" in url and url.endswith(".md"):
                branch = app.config.colab_notebooks_branch
                url = re.sub(r"/blob/[^/]+/", f"/blob/{branch}/", url, count=1)
                button["url"] = url[: -len(".md")] + ".ipynb"


def setup(app):
    app.add_config_value("colab_notebooks_branch", "notebooks", "html")
    # After sphinx-book-theme has added its launch buttons (priority 501).
    app.connect("html-page-context", _point_colab_at_notebooks, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
