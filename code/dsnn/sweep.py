"""Parameter sweeps that run in-process by default and on a Dask cluster when given one.

:func:`run` maps a pure function over a grid of parameters and returns a tidy table, one row per
point. The same call scales by changing one argument: ``n_jobs=8`` uses the local cores (joblib),
``client=`` a ``dask.distributed.Client`` (a local cluster, or a scheduler address). Scheduling
is left to those engines; this module only builds the points, gives each one its seed, caches
results on disk and assembles the table.

Seeds: a function that takes a ``seed`` argument gets, at each point, a seed derived from the
point's parameters and the sweep's base ``seed`` (``numpy.random.SeedSequence``), so every point
draws the same numbers whichever worker runs it and in whatever order.

Cache: each point's result is stored under a hash of the function (its module, name and source),
the point's parameters, its seed and the package (version and a digest of its source), in
``cache_dir`` (default ``$DSNN_CACHE_DIR/sweep`` or ``~/.cache/dsnn/sweep``). Running a sweep
again reads the stored points; changing a parameter, the function or the package recomputes.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import itertools
import json
import math
import numbers
import os
import pickle
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dsnn import _checks

SCHEDULER_ENV = "DSNN_DASK_SCHEDULER"
CACHE_ENV = "DSNN_CACHE_DIR"


def grid_points(grid: Mapping[str, Sequence] | Sequence[Mapping]) -> list[dict]:
    """The points of ``grid``: the Cartesian product of a dict of lists, or a list of dicts."""
    if isinstance(grid, Mapping):
        if not grid:
            raise ValueError("grid must name at least one parameter, got an empty dict")
        names, values = [], []
        for name, options in grid.items():
            if not isinstance(name, str):
                raise TypeError(f"grid keys must be parameter names (str), got {name!r}")
            if isinstance(options, (str, bytes)) or not isinstance(options, Iterable):
                raise TypeError(
                    f"grid[{name!r}] must be a list of values to sweep, got {options!r}; "
                    f"write [{options!r}] for a single value"
                )
            options = list(options)
            if not options:
                raise ValueError(f"grid[{name!r}] is empty: give at least one value")
            names.append(name)
            values.append(options)
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
    if isinstance(grid, (str, bytes)) or not isinstance(grid, Sequence):
        raise TypeError(
            f"grid must be a dict of lists (product) or a list of dicts, got {type(grid).__name__}"
        )
    points = list(grid)
    if not points:
        raise ValueError("grid is empty: give at least one point")
    for i, point in enumerate(points):
        if not isinstance(point, Mapping):
            raise TypeError(f"grid[{i}] must be a dict of parameters, got {point!r}")
    return [dict(point) for point in points]


def point_seed(point: Mapping, seed: int = 0) -> int:
    """The seed of one grid point: a function of its parameters and the base ``seed`` only."""
    digest = hashlib.sha256(_canonical(point).encode()).digest()
    entropy = [int(seed), *np.frombuffer(digest[:16], dtype=np.uint32).tolist()]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0])


def run(
    fn: Callable,
    grid: Mapping[str, Sequence] | Sequence[Mapping],
    *,
    client=None,
    n_jobs: int = 1,
    progress: bool = True,
    seed: int = 0,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Evaluate ``fn(**point)`` at every point of ``grid`` and return a tidy table.

    Parameters
    ----------
    fn : callable
        A pure function of the grid's parameters (plus ``seed`` if it takes one). It returns a
        dict of results (one column each) or a single value (column ``value``).
    grid : dict of lists, or list of dicts
        ``{"eta": [0.1, 0.2], "batch_size": [1, 8]}`` sweeps the product (4 points); a list of
        dicts gives the points one by one.
    client : dask.distributed.Client or str, optional
        Run on this Dask cluster (a client, or a scheduler address such as ``"tcp://host:8786"``).
        Without it, the address in the environment variable ``DSNN_DASK_SCHEDULER`` is used if set;
        otherwise the sweep runs in this process (``n_jobs=1``) or on local cores.
    n_jobs : int
        Local worker processes when no cluster is used (joblib); 1 runs in-process.
    progress : bool
        Show a progress bar (tqdm) while points are computed.
    seed : int
        Base seed; each point's seed is :func:`point_seed` of its parameters.
    cache, cache_dir
        Read and store each point's result on disk (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per point in grid order: the parameters, the results, ``seed`` (``None`` when
        ``fn`` takes no seed), ``wall_time`` (seconds, as first computed) and ``cached``.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a callable, got {type(fn).__name__}")
    points = grid_points(grid)
    takes_seed = _check_parameters(fn, points)
    n_jobs = _checks.integer("n_jobs", n_jobs, minimum=1)
    seed = _checks.integer("seed", seed, minimum=0)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    seeds = [point_seed(p, seed) if takes_seed else None for p in points]
    calls = [
        {**p, "seed": s} if takes_seed else dict(p) for p, s in zip(points, seeds, strict=True)
    ]

    store = _Cache(fn, cache_dir) if cache else None
    results: list = [None] * len(points)
    todo = []
    for i, kwargs in enumerate(calls):
        hit = store.get(kwargs) if store else None
        if hit is not None:
            results[i] = (*hit, True)
        else:
            todo.append(i)

    if todo:
        if client is None and os.environ.get(SCHEDULER_ENV):
            client = os.environ[SCHEDULER_ENV]
        kwargs_todo = [calls[i] for i in todo]
        if client is not None:
            computed = _run_dask(fn, kwargs_todo, client, progress)
        elif n_jobs > 1:
            computed = _run_joblib(fn, kwargs_todo, n_jobs, progress)
        else:
            computed = _run_serial(fn, kwargs_todo, progress)
        for i, (value, seconds) in zip(todo, computed, strict=True):
            if store:
                store.put(calls[i], value, seconds)
            results[i] = (value, seconds, False)

    rows = []
    for point, point_seed_, (value, seconds, was_cached) in zip(
        points, seeds, results, strict=True
    ):
        values = value if isinstance(value, Mapping) else {"value": value}
        clash = set(values) & (set(point) | {"seed", "wall_time", "cached"})
        if clash:
            raise ValueError(
                f"fn returned results named {sorted(clash)}, which are also column names of the "
                "table (parameters, seed, wall_time, cached): rename them"
            )
        rows.append(
            {**point, **values, "seed": point_seed_, "wall_time": seconds, "cached": was_cached}
        )
    return pd.DataFrame(rows)


# --- engines: in-process, joblib, Dask -------------------------------------------------------


def _timed(fn: Callable, kwargs: dict):
    start = time.perf_counter()
    value = fn(**kwargs)
    return value, time.perf_counter() - start


def _bar(total: int, progress: bool):
    # Plain tqdm (text on stderr) works in terminals and notebooks alike, without widgets.
    from tqdm import tqdm

    return tqdm(total=total, disable=not progress or total < 2, desc="sweep", leave=False)


def _run_serial(fn, calls, progress):
    out = []
    with _bar(len(calls), progress) as bar:
        for kwargs in calls:
            out.append(_timed(fn, kwargs))
            bar.update()
    return out


def _run_joblib(fn, calls, n_jobs, progress):
    from joblib import Parallel, delayed

    _require_picklable(fn, "the local worker processes")
    with _bar(len(calls), progress) as bar:
        out = []
        parallel = Parallel(n_jobs=n_jobs, return_as="generator")
        for result in parallel(delayed(_timed)(fn, kwargs) for kwargs in calls):
            out.append(result)
            bar.update()
    return out


def _run_dask(fn, calls, client, progress):
    from distributed import Client, as_completed

    _require_picklable(fn, "the Dask workers")
    own = isinstance(client, str)
    if own:
        client = Client(client)
    elif not isinstance(client, Client):
        raise TypeError(
            "client must be a dask.distributed.Client or a scheduler address string, "
            f"got {type(client).__name__}"
        )
    try:
        futures = client.map(_timed, [fn] * len(calls), calls, pure=False)
        order = {future.key: i for i, future in enumerate(futures)}
        out: list = [None] * len(calls)
        with _bar(len(calls), progress) as bar:
            for future in as_completed(futures):
                out[order[future.key]] = future.result()
                bar.update()
        return out
    finally:
        if own:
            client.close()


def _require_picklable(fn, where: str) -> None:
    import cloudpickle

    try:
        cloudpickle.dumps(fn)
    except Exception as err:
        raise TypeError(
            f"fn cannot be sent to {where}: {type(err).__name__}: {err}. Make it a function that "
            "holds no open files, locks, generators or live connections (a module-level function "
            "is safest), or run the sweep in-process with client=None, n_jobs=1"
        ) from err


# --- checks, hashing and the cache ------------------------------------------------------------


def _check_parameters(fn: Callable, points: list[dict]) -> bool:
    """Reject names ``fn`` does not accept and required arguments the grid does not give."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return False
    params = signature.parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    named = [
        name for name, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    takes_seed = "seed" in named
    accepted = [n for n in named if n != "seed"]
    for point in points:
        if "seed" in point:
            raise ValueError(
                "grid must not contain 'seed': each point's seed is derived from its parameters "
                "and run(..., seed=) (sweep over a parameter such as 'replicate' instead)"
            )
        unknown = [k for k in point if k not in accepted]
        if unknown and not takes_kwargs:
            raise ValueError(
                f"grid parameter(s) {unknown} are not arguments of {_name(fn)}; allowed: {accepted}"
            )
        missing = [
            n for n in accepted if params[n].default is inspect.Parameter.empty and n not in point
        ]
        if missing:
            raise ValueError(
                f"grid does not give the required argument(s) {missing} of {_name(fn)}"
            )
    return takes_seed


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _canonical(point: Mapping) -> str:
    """A stable text form of a point's parameters (numbers by value, order independent)."""

    def plain(value):
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return value
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            value = float(value)
            return value if math.isfinite(value) else repr(value)
        if isinstance(value, np.ndarray):
            return {"array": value.tolist(), "dtype": str(value.dtype)}
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return repr(value)

    return json.dumps(plain(dict(point)), sort_keys=True)


@functools.cache
def _package_digest() -> str:
    import dsnn

    digest = hashlib.sha256(dsnn.__version__.encode())
    for path in sorted(Path(dsnn.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _function_digest(fn: Callable) -> str:
    digest = hashlib.sha256(f"{getattr(fn, '__module__', '')}.{_name(fn)}".encode())
    try:
        digest.update(inspect.getsource(fn).encode())
    except (OSError, TypeError):  # no source (e.g. a builtin): fall back to its pickled form
        import cloudpickle

        try:
            digest.update(cloudpickle.dumps(fn))
        except Exception:
            digest.update(repr(fn).encode())
    return digest.hexdigest()[:16]


class _Cache:
    """One pickle file per point, named by the hash of (function, parameters, seed, package)."""

    def __init__(self, fn: Callable, cache_dir) -> None:
        root = cache_dir or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "dsnn"
        self.dir = Path(root) / ("" if cache_dir else "sweep")
        self.prefix = f"{_function_digest(fn)}-{_package_digest()}"

    def _path(self, kwargs: dict) -> Path:
        key = hashlib.sha256((self.prefix + _canonical(kwargs)).encode()).hexdigest()[:32]
        return self.dir / f"{key}.pkl"

    def get(self, kwargs: dict):
        path = self._path(kwargs)
        try:
            with path.open("rb") as f:
                return pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError):
            return None

    def put(self, kwargs: dict, value, seconds: float) -> None:
        path = self._path(kwargs)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("wb") as f:
                pickle.dump((value, seconds), f)
            tmp.replace(path)  # atomic: a reader never sees half a file
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            pass  # an unpicklable result or a read-only disk: the sweep still returns it
