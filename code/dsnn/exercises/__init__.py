"""Automatic feedback on the book's exercises.

Every exercise in the book has a label (e.g. ``ex-primer-heun``, used in the check cell under the
exercise) and a check::

    from dsnn.exercises import check
    check("ex-primer-heun", heun)   # -> "ex-primer-heun: passed - ..." or "not yet - <what failed>"

The check tests the answer against the chapter's own mathematics (closed forms, theorems, limits)
on inputs it chooses, and says which property failed and by how much. One module per chapter
registers that chapter's exercises; :func:`catalogue` lists them.
"""

from dsnn.exercises._core import (
    KINDS,
    CheckFailed,
    CheckResult,
    Exercise,
    ExerciseCheckError,
    catalogue,
    check,
)

# Importing a chapter's module registers its exercises.
from dsnn.exercises import (  # noqa: F401  isort: skip
    three_views,
    neural_odes,
    critical_points,
    delay_equations,
    gd_stability,
    edge_of_stability,
    sgd_lyapunov,
    mean_field,
    propagation,
)

__all__ = [
    "KINDS",
    "CheckFailed",
    "CheckResult",
    "Exercise",
    "ExerciseCheckError",
    "catalogue",
    "check",
]
