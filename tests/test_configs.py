"""Every config in the tree composes and runs; the command line works end to end."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.compose import CONFIG_DIR, load_config
from sim.pipeline import simulate
from sim.validate import ConfigError

GROUPS = ("snapshot", "scenario", "investors", "model", "sampler", "output")
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONFIG_DIR / g).glob("*.yaml"))]
REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("group, name", OPTIONS)
def test_every_config_composes_and_runs(group, name):
    cfg = load_config([f"{group}={name}", "sampler.paths=64", "sampler.horizon_months=12",
                       "output.progress=false"])
    ds, _ = simulate(cfg, progress=False)
    assert ds.sizes["path"] == 64


def test_risk_off_doubles_the_fitted_crash_intensity():
    """A scenario scales the calibrated intensity (fx.crash_scale) rather than replacing it: a
    fixed number in the scenario would undo the fit, and lowered the intensity once the fit
    rose above it."""
    from sim.inputs import build_inputs

    base, risk = (build_inputs(load_config(o)).model.glob["crash_intensity"][0]
                  for o in ([], ["scenario=risk_off"]))
    assert float(risk) == pytest.approx(2.0 * float(base))
    assert float(base) == pytest.approx(load_config([]).model.fx.crash_intensity)


def test_default_is_the_market_snapshot_and_the_seed_one_is_an_override_away():
    cfg = load_config()
    assert cfg.snapshot.name == "market_2025_12"
    assert cfg.snapshot.ust10 == 4.16 and cfg.snapshot.jgb10 == 2.015 and cfg.snapshot.boj_rate == 0.75
    seed = load_config(["snapshot=seed_2025_12"]).snapshot
    assert (seed.ust10, seed.jgb10, seed.date) == (3.72, 1.91, cfg.snapshot.date)
    assert cfg.sampler.paths >= 20_000 and cfg.sampler.horizon_months == 24
    assert cfg.sampler.step == "weekly"


def test_misspelled_key_is_rejected():
    with pytest.raises(Exception, match="sampler.pathz"):
        load_config(["sampler.pathz=10"])


def test_semantic_error_names_key_and_allowed_values():
    cfg = load_config(["model.impact.permanent_share=1.5"])
    with pytest.raises(ConfigError, match=r"model.impact.permanent_share=1.5: a finite number in \[0, 1\]"):
        simulate(cfg, progress=False)


def _cli(tmp_path, *args):
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    return subprocess.run([sys.executable, "-m", "sim", f"hydra.run.dir={tmp_path}", *args],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=600)


def test_cli_runs_and_prints_the_summary(tmp_path):
    out = _cli(tmp_path, "sampler.paths=800", "sampler.horizon_months=6")
    assert out.returncode == 0, out.stderr
    assert "Cumulative unwind, USD bn" in out.stdout
    assert (tmp_path / "results.nc").exists()
    assert (tmp_path / ".hydra" / "config.yaml").exists()


def test_cli_reports_a_bad_value_in_one_line(tmp_path):
    out = _cli(tmp_path, "sampler.paths=0")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: sampler.paths=0: an integer in [1, 1_000_000_000]"]
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "results.nc").exists()
