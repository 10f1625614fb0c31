"""Sweeps: the same table serially, on local processes and on a Dask cluster; cache; bad input."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from dsnn import sweep


def noisy_quadratic(a, b=1.0, *, seed):
    """A pure function of its parameters and seed (module level, so workers can import it)."""
    rng = np.random.default_rng(seed)
    return {"value": a**2 + b, "draw": float(rng.standard_normal())}


def no_seed(x):
    return 2 * x


GRID = {"a": [0.0, 1.5, -2.0], "b": [1.0, 3.0]}


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


def test_product_grid_gives_one_row_per_point_in_order(cache_dir):
    table = sweep.run(noisy_quadratic, GRID, progress=False, cache_dir=cache_dir)
    assert len(table) == 6
    assert list(table[["a", "b"]].itertuples(index=False, name=None)) == [
        (0.0, 1.0), (0.0, 3.0), (1.5, 1.0), (1.5, 3.0), (-2.0, 1.0), (-2.0, 3.0)
    ]  # fmt: skip
    np.testing.assert_allclose(table["value"], table["a"] ** 2 + table["b"])
    assert {"seed", "wall_time", "cached"} <= set(table.columns)
    assert (table["wall_time"] >= 0).all() and not table["cached"].any()


def test_list_of_dicts_and_single_value_results(cache_dir):
    table = sweep.run(no_seed, [{"x": 1}, {"x": 5}], progress=False, cache_dir=cache_dir)
    assert table["value"].tolist() == [2, 10]
    assert table["seed"].isna().all()  # fn takes no seed


def test_seeds_depend_on_the_point_not_on_the_order(cache_dir):
    points = sweep.grid_points(GRID)
    forward = sweep.run(noisy_quadratic, points, progress=False, cache=False)
    backward = sweep.run(noisy_quadratic, points[::-1], progress=False, cache=False)
    merged = forward.merge(backward, on=["a", "b"], suffixes=("", "_rev"))
    assert (merged["seed"] == merged["seed_rev"]).all()
    assert (merged["draw"] == merged["draw_rev"]).all()
    assert forward["seed"].nunique() == len(points)
    other = sweep.run(noisy_quadratic, points, progress=False, cache=False, seed=1)
    assert not (other["seed"] == forward["seed"]).any()
    assert sweep.point_seed({"a": 1, "b": 2}) == sweep.point_seed({"b": 2, "a": 1})


def test_local_processes_give_the_serial_table(cache_dir):
    serial = sweep.run(noisy_quadratic, GRID, progress=False, cache=False)
    parallel = sweep.run(noisy_quadratic, GRID, progress=False, cache=False, n_jobs=2)
    columns = ["a", "b", "value", "draw", "seed"]
    pd.testing.assert_frame_equal(serial[columns], parallel[columns])


@pytest.mark.slow
def test_dask_cluster_with_two_workers_gives_the_serial_table():
    distributed = pytest.importorskip("distributed")
    serial = sweep.run(noisy_quadratic, GRID, progress=False, cache=False)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_cluster = sweep.run(noisy_quadratic, GRID, client=client, progress=True, cache=False)
        by_address = sweep.run(
            noisy_quadratic, GRID, client=cluster.scheduler_address, progress=False, cache=False
        )
    columns = ["a", "b", "value", "draw", "seed"]
    pd.testing.assert_frame_equal(serial[columns], on_cluster[columns])
    pd.testing.assert_frame_equal(serial[columns], by_address[columns])


def test_second_run_reads_the_cache_and_new_parameters_recompute(cache_dir):
    calls = []

    def counted(a, *, seed):
        calls.append(a)
        return {"value": a + np.random.default_rng(seed).random()}

    first = sweep.run(counted, {"a": [1, 2]}, progress=False, cache_dir=cache_dir)
    second = sweep.run(counted, {"a": [1, 2]}, progress=False, cache_dir=cache_dir)
    assert calls == [1, 2]
    assert second["cached"].all()
    pd.testing.assert_frame_equal(first[["a", "value", "seed"]], second[["a", "value", "seed"]])
    third = sweep.run(counted, {"a": [2, 3]}, progress=False, cache_dir=cache_dir)
    assert calls == [1, 2, 3]
    assert third["cached"].tolist() == [True, False]
    sweep.run(counted, {"a": [2]}, progress=False, cache_dir=cache_dir, seed=7)
    assert calls == [1, 2, 3, 2]  # another seed is another point


def test_a_changed_function_does_not_read_the_old_results(cache_dir):
    def f(a):
        return a

    sweep.run(f, {"a": [1]}, progress=False, cache_dir=cache_dir)

    def f(a):  # same name, new body
        return -a

    table = sweep.run(f, {"a": [1]}, progress=False, cache_dir=cache_dir)
    assert table["value"].tolist() == [-1] and not table["cached"].any()


def test_cache_off_recomputes(cache_dir):
    calls = []

    def f(a):
        calls.append(a)
        return a

    for _ in range(2):
        sweep.run(f, {"a": [1]}, progress=False, cache=False, cache_dir=cache_dir)
    assert calls == [1, 1] and not cache_dir.exists()


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({}, "grid must name at least one parameter"),
        ([], "grid is empty"),
        ({"a": []}, r"grid\['a'\] is empty"),
        ({"a": 3}, r"grid\['a'\] must be a list of values"),
        ("a", "grid must be a dict of lists"),
        ([{"a": 1}, 2], r"grid\[1\] must be a dict"),
    ],
)
def test_bad_grids_are_explained(grid, message):
    with pytest.raises((ValueError, TypeError), match=message):
        sweep.run(noisy_quadratic, grid, progress=False, cache=False)


def test_unknown_and_missing_parameters_are_named():
    with pytest.raises(
        ValueError, match=r"\['c'\] are not arguments of noisy_quadratic.*\['a', 'b'\]"
    ):
        sweep.run(noisy_quadratic, {"a": [1], "c": [2]}, progress=False, cache=False)
    with pytest.raises(ValueError, match=r"required argument\(s\) \['a'\]"):
        sweep.run(noisy_quadratic, {"b": [1]}, progress=False, cache=False)
    with pytest.raises(ValueError, match="must not contain 'seed'"):
        sweep.run(noisy_quadratic, {"a": [1], "seed": [2]}, progress=False, cache=False)


def test_a_function_that_cannot_travel_is_refused_for_workers():
    lock = threading.Lock()

    def holds_a_lock(a):
        with lock:
            return a

    for kwargs in ({"client": "tcp://127.0.0.1:1"}, {"n_jobs": 2}):
        with pytest.raises(TypeError, match="fn cannot be sent to"):
            sweep.run(holds_a_lock, {"a": [1, 2]}, progress=False, cache=False, **kwargs)
    # in-process it runs
    assert sweep.run(holds_a_lock, {"a": [1]}, progress=False, cache=False)["value"][0] == 1


def test_other_bad_arguments():
    with pytest.raises(TypeError, match="fn must be a callable"):
        sweep.run(3, {"a": [1]})
    with pytest.raises(ValueError, match="n_jobs must be an integer >= 1"):
        sweep.run(no_seed, {"x": [1]}, n_jobs=0)
    with pytest.raises(TypeError, match=r"client must be a dask\.distributed\.Client"):
        sweep.run(no_seed, {"x": [1]}, client=42, cache=False)
    with pytest.raises(ValueError, match=r"results named \['x'\]"):
        sweep.run(lambda x: {"x": 1}, {"x": [1]}, progress=False, cache=False)
