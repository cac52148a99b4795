"""The package as a user installs it (slow: builds virtual environments).

* A fresh clone and a fresh venv: the README's two commands, exactly as written (the second
  runs only the collection of the suite here, the suite itself being what runs this test).
* ``pip install .`` (not editable) and a run from another folder: the configs ship inside the
  package.

pip installs from whatever index this machine is configured with; the venvs use no system
site-packages.
"""
from __future__ import annotations

import re
import subprocess
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
README_COMMANDS = re.findall(r"^(pip install .*?)\s+#", (REPO / "README.md").read_text(), flags=re.M)


def _venv(path: Path) -> Path:
    venv.create(path, with_pip=True)
    return path / "bin"


def _sh(command: str, cwd: Path, bin_dir: Path, timeout: int = 1800) -> subprocess.CompletedProcess:
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(Path.home()),
           "NUMBA_CACHE_DIR": str(cwd / ".numba-cache")}
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_readme_quick_start_in_a_fresh_clone_and_venv(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    bin_dir = _venv(tmp_path / "venv")
    run, test = README_COMMANDS[:2]
    assert run.startswith("pip install -e . && python -m sim") and "[test]" in test
    out = _sh(run, clone, bin_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Results in outputs/runs/" in out.stdout
    out = _sh(test.replace("python -m pytest", "python -m pytest --collect-only -q"), clone, bin_dir)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = out.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+(/\d+)? tests collected", summary) and "error" not in summary, summary
    # the test extra brings the optional features: nothing is skipped for want of a package
    probe = ("import dask.distributed, zarr, hydra_plugins.hydra_joblib_launcher, "
             "hydra_plugins.hydra_submitit_launcher, hypothesis")
    assert _sh(f"python -c '{probe}'", clone, bin_dir).returncode == 0


def test_normal_install_runs_from_another_folder(tmp_path):
    bin_dir = _venv(tmp_path / "venv")
    out = _sh(f"pip install -q '{REPO}'", tmp_path, bin_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    out = _sh("carrysim run sampler.paths=300 sampler.horizon_months=3 output.plots=false",
              elsewhere, bin_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = list((elsewhere / "outputs" / "runs").iterdir())
    assert (run / "results.nc").is_file()
    site = _sh("python -c 'import sim, pathlib; print(pathlib.Path(sim.__file__).parent)'",
               elsewhere, bin_dir).stdout.strip()
    assert "site-packages" in site and (Path(site) / "configs" / "config.yaml").is_file()
    out = _sh("carrysim --help", elsewhere, bin_dir)
    assert "spread_compression" in out.stdout
    out = _sh("python -m sim.compare outputs/runs/* --out cmp", elsewhere, bin_dir)
    assert out.returncode == 0 and (elsewhere / "cmp" / "comparison.nc").is_file(), out.stderr
