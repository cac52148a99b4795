"""Bounded memory: streamed statistics, chunk and worker invariance, Dask, zarr."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sim import layout as L
from sim.compare import compare
from sim.engine import simulate_range
from sim.inputs import build_inputs
from sim.pipeline import dask_client, run_and_save, simulate
from sim.timestats import Edges, TimeStats, chunk_stats

from tests.helpers import small

REPO = Path(__file__).resolve().parent.parent
VOLATILE = ("history", "kernel_seconds", "startup_seconds", "threads", "workers", "config")


def _strip(ds):
    ds = ds.copy()
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in VOLATILE}
    return ds


def test_streamed_quantiles_match_exact_ones():
    series = simulate_range(build_inputs(small(paths=4000, months=12)), 0, 4000).series
    edges = Edges.from_first_chunk(series[:1024])
    stats = TimeStats(edges, series.shape[1], L.TIME_OUT)
    for start in range(0, len(series), 1024):
        part = series[start:start + 1024]
        stats.add(chunk_stats(part, edges, 256), len(part))
    qs = [0.01, 0.1, 0.5, 0.9, 0.99]
    streamed = stats.quantiles(qs)
    means = stats.means()
    for v, name in enumerate(L.TIME_OUT.names):
        exact = np.quantile(series[name], qs, axis=0)
        if name in L.DISCRETE_SERIES:  # on the 12.5bp grid: exact
            np.testing.assert_allclose(streamed[name], exact, rtol=0, atol=1e-12, err_msg=name)
        else:  # within one bin, far below the Monte Carlo error
            assert np.all(np.abs(streamed[name] - exact) <= edges.width[v][None, :] + 1e-12), name
        np.testing.assert_allclose(means[name], series[name].mean(axis=0), rtol=1e-12, atol=1e-12)


def test_streamed_results_are_identical_for_chunks_and_threads():
    a = simulate(small(["sampler.chunk_paths=512", "sampler.threads=1"], paths=1500), progress=False)[0]
    b = simulate(small(["sampler.chunk_paths=1280", "sampler.threads=2"], paths=1500), progress=False)[0]
    xr.testing.assert_identical(_strip(a), _strip(b))


@pytest.mark.slow
def test_dask_local_cluster_gives_identical_results():
    cfg = small(["sampler.chunk_paths=512", "sampler.scheduler=local", "sampler.workers=2"], paths=2000)
    local = simulate(small(["sampler.chunk_paths=512"], paths=2000), progress=False)[0]
    with dask_client(cfg) as client:
        remote, result = simulate(cfg, progress=False, client=client)
    assert result.workers == 2
    xr.testing.assert_identical(_strip(local), _strip(remote))


def test_zarr_output_matches_netcdf(tmp_path):
    base = ["output.plots=false", "sampler.chunk_paths=512"]
    run_and_save(small([*base, "output.format=netcdf"], paths=1300), tmp_path / "nc")
    run_and_save(small([*base, "output.format=zarr"], paths=1300), tmp_path / "zarr")
    nc = xr.open_dataset(tmp_path / "nc" / "results.nc").load()
    zr = xr.open_zarr(tmp_path / "zarr" / "results.zarr").load()
    xr.testing.assert_identical(_strip(nc), _strip(zr))
    assert not [p for p in (tmp_path / "zarr").iterdir() if p.name.startswith(".results")]
    # A zarr run compares like a netCDF one (here: the same paths, so differences are zero).
    compare([tmp_path / "nc", tmp_path / "zarr"], tmp_path / "cmp")
    diff = xr.open_dataset(tmp_path / "cmp" / "comparison.nc").load()["cum_unwind"].values
    np.testing.assert_array_equal(diff[0], diff[1])


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_paths(tmp_path):
    """Peak resident memory of zarr runs: 40,000 vs 320,000 paths (8x) differ by a chunk's worth."""
    def peak(paths):
        code = ("import resource, sys; from sim.cli import main; "
                "sys.argv = ['sim'] + sys.argv[1:]; "
                "exec('try:\\n main()\\nexcept SystemExit: pass'); "
                "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        out = subprocess.run([sys.executable, "-c", code, f"hydra.run.dir={tmp_path / str(paths)}",
                              f"sampler.paths={paths}", "output.format=zarr", "output.plots=false",
                              "output.progress=false"], cwd=REPO, capture_output=True, text=True,
                             timeout=1800)
        line = [l for l in out.stdout.splitlines() if l.startswith("PEAK")]
        assert line, out.stderr[-2000:]
        return int(line[0].split()[1]) / 1024  # MiB
    small_run, large_run = peak(40_000), peak(320_000)
    assert large_run - small_run < 200, (small_run, large_run)
