"""Comparison of runs and sweeps: paired differences, bad inputs, sweeps end to end."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sim.compare import CompareError, compare, main
from sim.errors import run_command
from sim.pipeline import run_and_save

from tests.helpers import small

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    base = ["output.plots=false", "sampler.horizon_months=12"]
    run_and_save(small([*base, "scenario=baseline"], paths=1500), root / "base")
    run_and_save(small([*base, "scenario=hawkish_boj"], paths=1500), root / "hawk")
    return root


def test_variant_compared_with_itself_differs_by_exactly_zero(two_runs, tmp_path):
    text = compare([two_runs / "base", two_runs / "base"], tmp_path)
    ds = xr.open_dataset(tmp_path / "comparison.nc").load()
    a, b = ds["cum_unwind"].values
    np.testing.assert_array_equal(a, b)
    import csv
    rows = list(csv.DictReader(open(tmp_path / "differences.csv")))
    assert len(rows) == 5 and "Differences against the baseline 'baseline'" in text
    for r in rows:
        assert float(r["difference"]) == 0.0 and float(r["se_paired"]) == 0.0, r


def test_paired_standard_errors_beat_unpaired(two_runs, tmp_path):
    compare([two_runs / "base", two_runs / "hawk"], tmp_path)
    import csv
    rows = list(csv.DictReader(open(tmp_path / "differences.csv")))
    means = [r for r in rows if r["metric"].startswith("mean")]
    assert means
    for r in means:
        assert float(r["se_paired"]) < float(r["se_unpaired"]), r
    ds = xr.open_dataset(tmp_path / "comparison.nc").load()
    assert list(ds["variant"].values) == ["baseline", "hawkish_boj"]
    assert ds.attrs["common_random_numbers"] == "yes"
    for name in ("distributions_by_variant.png", "exceedance.png", "comparison.md", "comparison.csv"):
        assert (tmp_path / name).stat().st_size > 0


def test_bad_inputs_fail_clearly(two_runs, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.nc"
    corrupt.write_bytes(b"\x89HDF\r\n this is not a results file")
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("t", np.arange(3.0))}).to_netcdf(foreign, engine="h5netcdf")
    cases = [
        (tmp_path / "missing", "no such file or directory"),
        (corrupt, "not a readable netCDF file"),
        (foreign, "not a results file of this simulator"),
        (tmp_path, "neither a run directory"),
    ]
    for target, message in cases:
        assert run_command(main, [str(two_runs / "base"), str(target), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_runs_on_different_grids_cannot_be_compared(two_runs, tmp_path):
    other = tmp_path / "short"
    run_and_save(small(["output.plots=false", "sampler.horizon_months=6"], paths=1500), other)
    with pytest.raises(CompareError, match="time grids differ"):
        compare([two_runs / "base", other], tmp_path / "o")


def _sim(tmp_path, *args):
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    return subprocess.run([sys.executable, "-m", "sim", "-m", f"hydra.sweep.dir={tmp_path}",
                           "sampler.paths=300", "sampler.horizon_months=6", "output.plots=false",
                           "output.progress=false", *args],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=900)


def test_sweep_reports_failed_runs_and_keeps_the_others(tmp_path):
    out = _sim(tmp_path, "model.impact.permanent_share=0.2,1.5,0.4")
    assert out.returncode == 1
    assert "1 run(s) of the sweep failed" in out.stderr
    assert "model.impact.permanent_share=1.5: a finite number in [0, 1]" in out.stderr
    runs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(runs) == 3
    assert sum((tmp_path / r / "results.nc").exists() for r in runs) == 2
    assert (tmp_path / "comparison.nc").exists()
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_parallel_sweep_with_joblib_compares_at_the_end(tmp_path):
    out = _sim(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
               "scenario=baseline,spread_compression")
    assert out.returncode == 0, out.stderr[-2000:]
    ds = xr.open_dataset(tmp_path / "comparison.nc").load()
    assert list(ds["variant"].values) == ["scenario=baseline", "scenario=spread_compression"]
    assert "Differences against the baseline 'scenario=baseline'" in out.stdout
