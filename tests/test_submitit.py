"""Sweeps through the submitit launcher: its local executor, and the SLURM preset.

There is no SLURM here.  The preset is checked twice: composed through Hydra, and run end to end
with small stand-ins for sbatch, srun and sacct that start the array's tasks on this machine.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
from hydra import compose, initialize_config_dir

from sim.compose import CONFIG_DIR
from sim.config import register_configs

REPO = Path(__file__).resolve().parent.parent
SMALL = ["sampler.paths=300", "sampler.horizon_months=6", "output.plots=false",
         "output.progress=false"]
VARIANTS = "scenario=baseline,spread_compression"
SLURM_LAUNCHER = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"


def _sweep(sweep_dir, *args, env=None):
    env = {**os.environ, "NUMBA_NUM_THREADS": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", "sim", "-m", f"hydra.sweep.dir={sweep_dir}",
                           *SMALL, *args],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=300)


def _runs(sweep_dir):
    return sorted(p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _variants(sweep_dir):
    with xr.open_dataset(sweep_dir / "comparison.nc") as ds:
        return [str(v) for v in ds["variant"].values]


@pytest.mark.slow
def test_sweep_through_submitit_local_compares_at_the_end(tmp_path):
    sweep = tmp_path / "sweep"
    out = _sweep(sweep, "hydra/launcher=submitit_local", VARIANTS)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Submitit 'local' sweep output dir" in out.stdout + out.stderr
    runs = _runs(sweep)
    assert len(runs) == 2
    assert all((run / "results.nc").is_file() for run in runs), runs
    assert not list(sweep.glob("*/FAILED"))
    # each run was a job of its own: a separate process that logged under .submitit/<job id>/
    logs = sorted(sweep.glob(".submitit/*/*_log.out"))
    assert len(logs) == 2
    assert all("Job completed successfully" in log.read_text() for log in logs)
    assert _variants(sweep) == ["scenario=baseline", "scenario=spread_compression"]
    assert "Differences against the baseline 'scenario=baseline'" in out.stdout


@pytest.mark.slow
def test_failed_job_of_a_submitit_sweep_is_reported_and_the_others_compared(tmp_path):
    sweep = tmp_path / "sweep"
    out = _sweep(sweep, "hydra/launcher=submitit_local", "model.impact.permanent_share=0.2,1.5")
    assert out.returncode == 1, out.stderr[-2000:]
    assert "1 run(s) of the sweep failed" in out.stderr
    assert "model.impact.permanent_share=1.5: a finite number in [0, 1]" in out.stderr
    assert "Traceback" not in out.stderr
    good, bad = _runs(sweep)
    assert (good / "results.nc").is_file() and not (good / "FAILED").exists()
    assert (bad / "FAILED").is_file() and not (bad / "results.nc").exists()
    assert (sweep / "comparison.nc").is_file()


def test_slurm_preset_composes_with_the_submitit_slurm_launcher():
    register_configs()
    overrides = ["hydra/launcher=slurm", "hydra.launcher.partition=compute", VARIANTS.split(",")[0]]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert cfg.hydra.runtime.choices["hydra/launcher"] == "slurm"
    assert launcher._target_ == SLURM_LAUNCHER
    assert launcher.partition == "compute"
    assert launcher.cpus_per_task >= 1 and launcher.mem_gb >= 1 and launcher.timeout_min >= 1
    assert launcher.array_parallelism >= 1
    assert "export NUMBA_NUM_THREADS=$SLURM_CPUS_PER_TASK" in launcher.setup
    assert launcher.submitit_folder == f"{cfg.hydra.sweep.dir}/.submitit/%j"
    assert cfg.hydra.callbacks.compare.enabled


# Stand-ins for the three SLURM commands submitit calls.  sbatch starts every task of the array
# in the background with the variables SLURM would set and prints the job id; srun runs its
# command with the output files it was given; sacct knows no job, so submitit waits for the
# result files.
SBATCH = r'''
import os, re, subprocess, sys
script = sys.argv[-1]
text = open(script).read()
opts = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S*)", text, re.M))
first, last = map(int, re.match(r"(\d+)-(\d+)", opts.get("array", "0-0")).groups())
job = str(os.getpid())
for task in range(first, last + 1):
    env = dict(os.environ, SLURM_JOB_ID=f"{job}{task}", SLURM_ARRAY_JOB_ID=job,
               SLURM_ARRAY_TASK_ID=str(task), SLURM_NTASKS="1", SLURM_JOB_NUM_NODES="1",
               SLURM_NODEID="0", SLURM_PROCID="0", SLURM_LOCALID="0",
               SLURM_CPUS_PER_TASK=opts.get("cpus-per-task", "1"))
    subprocess.Popen(["bash", script], env=env, start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"Submitted batch job {job}")
'''
SRUN = r'''
import os, sys
args, files = sys.argv[1:], {}
while args and args[0].startswith("--"):
    option = args.pop(0)
    if option in ("--output", "--error"):
        files[option] = args.pop(0)
for option, fd in (("--output", 1), ("--error", 2)):
    if option in files:
        name = files[option]
        for key, var in (("%A", "SLURM_ARRAY_JOB_ID"), ("%a", "SLURM_ARRAY_TASK_ID"),
                         ("%j", "SLURM_JOB_ID")):
            name = name.replace(key, os.environ[var])
        os.makedirs(os.path.dirname(name), exist_ok=True)
        os.dup2(os.open(name.replace("%t", "0"), os.O_WRONLY | os.O_CREAT | os.O_APPEND), fd)
os.execvp(args[0], args)
'''
SACCT = 'print("JobID|State|NodeList")\n'


def _fake_slurm(bin_dir):
    bin_dir.mkdir()
    for name, body in (("sbatch", SBATCH), ("srun", SRUN), ("sacct", SACCT)):
        path = bin_dir / name
        path.write_text(f"#!{sys.executable}\n{body}")
        path.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.slow
def test_slurm_preset_runs_a_sweep_as_a_job_array(tmp_path):
    sweep = tmp_path / "sweep"
    env = {**_fake_slurm(tmp_path / "bin"), "NUMBA_NUM_THREADS": "1"}
    out = _sweep(sweep, "hydra/launcher=slurm", "hydra.launcher.partition=test",
                 "hydra.launcher.cpus_per_task=2", VARIANTS, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    scripts = list(sweep.glob(".submitit/*/*_submission.sh"))
    assert len(scripts) == 1
    text = scripts[0].read_text()
    for line in ("#SBATCH --partition=test", "#SBATCH --cpus-per-task=2", "#SBATCH --array=0-1%",
                 "export NUMBA_NUM_THREADS=$SLURM_CPUS_PER_TASK"):
        assert line in text, text
    runs = _runs(sweep)
    assert len(runs) == 2
    for run in runs:
        with xr.open_dataset(run / "results.nc") as ds:
            assert ds.attrs["threads"] == 2  # from the preset's setup lines, not the caller's 1
    tasks = sorted(p.name for p in sweep.glob(".submitit/*_*") if p.is_dir())
    assert [re.sub(r"^\d+_", "", task) for task in tasks] == ["0", "1"], tasks
    assert _variants(sweep) == ["scenario=baseline", "scenario=spread_compression"]
