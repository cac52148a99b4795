"""The results Dataset: metadata, netCDF round trip, summary statistics and plots."""
import math

import numpy as np
import pytest
import xarray as xr

from sim.pipeline import run_and_save, simulate
from sim.results import open_results, write_netcdf
from sim.summary import key_statistics, mean_se, probability_se, quantile_se

from tests.helpers import small


@pytest.fixture(scope="module")
def dataset():
    return simulate(small(paths=3000, months=24), progress=False)[0]


def test_every_variable_has_units_and_long_name(dataset):
    for name, var in dataset.data_vars.items():
        assert var.attrs.get("long_name"), name
        if var.dtype.kind != "M":
            assert "units" in var.attrs, name
    for key in ("Conventions", "title", "source", "seed", "config", "versions", "history"):
        assert dataset.attrs.get(key) not in (None, ""), key
    assert "numba" in dataset.attrs["versions"]
    assert "snapshot:" in dataset.attrs["config"]


def test_dataset_dimensions(dataset, default_run):
    cfg, r = default_run
    assert dataset.sizes["path"] == cfg.sampler.paths
    assert dataset.sizes["time"] == r.sizes["time"]
    assert list(dataset["investor"].values) == list(r["investor"].values)
    # Same config and seed as default_run: per-path values agree with the full series.
    np.testing.assert_array_equal(dataset["cum_unwind"].values, r["cum_unwind"].values)
    np.testing.assert_array_equal(dataset["usdjpy_end"].values, r["usdjpy"].values[:, -1])
    q = dataset["unwind_quantiles"].values
    assert np.all(np.diff(q, axis=0) >= 0)  # quantiles are ordered


def test_netcdf_round_trip_is_identical(dataset, tmp_path):
    path = write_netcdf(dataset, tmp_path / "results.nc")
    xr.testing.assert_identical(open_results(path), dataset)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_quantile_standard_error_matches_normal_theory():
    # For N(0, 1) the median's standard error is sqrt(pi / 2 / n).
    x = np.random.default_rng(1).standard_normal(40_000)
    value, se = quantile_se(x, 0.5)
    expected = math.sqrt(math.pi / 2 / len(x))
    assert abs(value) < 4 * expected
    # The estimate rests on about m = sqrt(n p (1 - p)) order statistics either side: its
    # relative error is about 1 / sqrt(2 m).
    m = math.sqrt(len(x) * 0.25)
    assert abs(se / expected - 1) < 4 / math.sqrt(2 * m)
    assert mean_se(x)[1] == pytest.approx(x.std(ddof=1) / math.sqrt(len(x)))
    assert probability_se(x > 0)[1] == pytest.approx(math.sqrt(0.25 / len(x)), rel=0.01)


def test_key_statistics_cover_the_summary(dataset):
    rows = key_statistics(dataset)
    names = {(r.outcome, r.statistic) for r in rows}
    assert ("Cumulative unwind", "P(> USD 500bn)") in names
    assert ("Cumulative unwind", "P(> USD 1tn)") in names
    assert ("Repatriation", "99%") in names
    assert all(r.se >= 0 for r in rows)


def test_run_and_save_writes_every_output(tmp_path):
    report = run_and_save(small(paths=600), tmp_path)
    for name in ("results.nc", "summary.csv", "summary.md", "distributions.png", "fan_charts.png",
                 "by_investor.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert "P(unwind > USD 500bn)" in report.summary
    assert "±" in report.summary
