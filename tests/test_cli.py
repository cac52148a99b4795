"""The one command: help, subcommands, shared errors and exit codes, run folders that never
collide, outputs written as a set, summaries with their context.

Most commands run in this process (``dispatch`` as the console script calls it) from a temporary
folder, so they pay no start-up; a few run as subprocesses where separate processes matter.
File-system failures are injected at the write (ENOSPC, EROFS) or come from ``/dev/full``, not
from permissions: the tests run as root in CI.
"""
from __future__ import annotations

import csv
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sim.cli
import sim.io
from sim.cli import SUBCOMMANDS, dispatch, overrides_hash, short_help
from sim.errors import run_command
from sim.io import FolderLock, OutputSet, atomic_write_text, reserve_folder, write_bytes

REPO = Path(__file__).resolve().parent.parent
SMALL = ["sampler.paths=200", "sampler.horizon_months=3", "output.plots=false",
         "output.progress=false"]


def carrysim(*args, default_run=True) -> int:
    """``python -m sim ARGS`` in this process; returns the exit status."""
    return run_command(lambda a: dispatch(a, "python -m sim", default_run), list(args))


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_help_fits_one_screen_and_lists_subcommands_and_scenarios(capsys):
    assert carrysim("--help") == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert len(lines) <= 40
    for name in ("run", "compare", "calibrate", "sensitivity", "stress"):
        assert f"\n  {name} " in text
    scenarios = sorted(p.stem for p in (REPO / "configs" / "scenario").glob("*.yaml"))
    for name in scenarios:
        line = next(l for l in lines if l.startswith(f"  {name} "))
        assert len(line.split()) > 3, line  # the scenario's description follows its name
    assert "outputs/runs/" in text and "--help-full" in text
    assert "_schema" not in text


def test_console_script_without_arguments_prints_help(capsys):
    assert run_command(lambda a: dispatch(a, "carrysim", default_run=False), []) == 0
    assert capsys.readouterr().out.startswith("usage: carrysim SUBCOMMAND")


def test_full_hydra_help_lists_no_schema_options(capsys):
    assert carrysim("run", "--help-full") == 0
    text = capsys.readouterr().out
    assert "scenario: baseline," in text and "sampler:" in text
    assert "_schema" not in text


@pytest.mark.parametrize("args, needle", [
    (["sampler.pahts=3"], "sampler.pahts"),
    (["run", "sampler.paths=abc"], "sampler.paths"),
    (["frobnicate"], "unknown subcommand"),
    (["compare"], "the following arguments are required: targets"),
    (["compare", "/no/such/run"], "/no/such/run: no such file or directory"),
    (["sensitivity", "--vary", "model.fx.long_run_vol"], "--vary"),
    (["sensitivity", "--vary", "model.fx.calm_vl=0.1,0.2", "sampler.paths=100"], "calm_vl"),
    (["stress", "--key", "investors.leveraged.holdings", "--low", "1", "--high", "2",
      "--probability", "1.5"], "--probability=1.5"),
    (["calibrate", "smm.pahts=5"], "smm.pahts"),
])
def test_every_subcommand_reports_a_mistake_on_one_line_with_status_2(args, needle, capsys,
                                                                       tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert carrysim(*args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert needle in err
    assert visible(tmp_path) == []  # nothing written


def test_subcommand_table_names_modules_runnable_with_python_m():
    for name, sub in SUBCOMMANDS.items():
        assert sub.summary and len(sub.summary) < 70, name
        if name != "run":
            path = REPO / (sub.module.replace(".", "/") + ".py")
            if path.exists():
                assert 'if __name__ == "__main__":' in path.read_text(), sub.module


def test_a_run_writes_its_folder_with_context(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert carrysim(*SMALL, "calibration=none", "sampler.seed=7") == 0
    out = capsys.readouterr().out
    assert "Calibration: none; seed 7" in out
    runs = tmp_path / "outputs" / "runs"
    (run,) = [p for p in runs.iterdir()]
    assert run.name.endswith("_baseline_" + overrides_hash([*SMALL, "calibration=none",
                                                            "sampler.seed=7"]))
    assert visible(run) == [".hydra", "results.nc", "summary.csv", "summary.md"]
    assert visible(runs) == [run.name]  # no lock file, no staging folder left
    md = (run / "summary.md").read_text().splitlines()
    assert md[0] == "# Run summary: scenario baseline"
    head = "\n".join(md[:14])
    for item in ("| snapshot | market_2025_12 |", "| calibration | none |", "| paths | 200 |",
                 "| seed | 7 |", "| version | yen-carry-sim", f"| folder | outputs/runs/{run.name} |",
                 "| overrides | sampler.paths=200"):
        assert item in head, item
    with open(run / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["outcome"] == "Cumulative unwind" and float(rows[0]["value"]) > 0
    assert {r["calibration"] for r in rows} == {"none"}
    assert {r["seed"] for r in rows} == {"7"} and {r["paths"] for r in rows} == {"200"}
    assert "calibration=none" in rows[0]["overrides"]


def test_folder_names_are_reserved_with_a_suffix_even_for_the_same_second(tmp_path):
    wanted = tmp_path / "runs" / "2026-01-01_00-00-00_baseline_abcdef"
    first, lock1 = reserve_folder(wanted)
    second, lock2 = reserve_folder(wanted)  # the first is still running: its lock is held
    assert first == wanted and second.name == wanted.name + "-2"
    with pytest.raises(OSError, match="another run is writing"):
        OutputSet(first).begin()  # a second writer of the first folder
    lock2.release()
    third, lock3 = reserve_folder(wanted)  # the lock of -2 is free and the folder absent
    assert third.name == wanted.name + "-2"
    lock3.release()
    lock1.release()


def test_two_runs_launched_at_once_get_two_folders(tmp_path):
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-m", "sim", *SMALL, f"sampler.seed={seed}"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for seed in (1, 2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    runs = sorted((tmp_path / "outputs" / "runs").iterdir())
    assert len(runs) == 2, runs
    for run in runs:
        assert (run / "results.nc").is_file() and (run / "summary.md").is_file()
    seeds = {next(l for l in (r / "summary.md").read_text().splitlines() if "| seed |" in l)
             for r in runs}
    assert len(seeds) == 2


def test_identical_runs_in_the_same_second_never_share_a_folder(tmp_path, monkeypatch):
    import sim.cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sim.cli, "_stamp", lambda: "2026-01-01_12-00-00")
    assert carrysim(*SMALL) == 0
    assert carrysim(*SMALL) == 0
    names = visible(tmp_path / "outputs" / "runs")
    stem = f"2026-01-01_12-00-00_baseline_{overrides_hash(SMALL)}"
    assert names == [stem, stem + "-2"]


def test_an_existing_run_folder_is_replaced_only_on_request(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "mine"
    assert carrysim(*SMALL, f"hydra.run.dir={target}") == 0
    before = (target / "results.nc").stat().st_ino
    capsys.readouterr()
    assert carrysim(*SMALL, "sampler.seed=3", f"hydra.run.dir={target}") == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--overwrite" in err
    assert (target / "results.nc").stat().st_ino == before
    assert carrysim(*SMALL, "sampler.seed=3", f"hydra.run.dir={target}", "--overwrite") == 0
    assert "| seed | 3 |" in (target / "summary.md").read_text()
    assert visible(tmp_path) == ["mine"]


def test_a_locked_folder_is_not_written_by_a_second_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "busy"
    lock = FolderLock(target)
    assert lock.acquire()
    try:
        assert carrysim(*SMALL, f"hydra.run.dir={target}") == 2
        assert "another run is writing this folder" in capsys.readouterr().err
        assert not target.exists()
    finally:
        lock.release()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EIO])
def test_a_failed_write_leaves_nothing_and_one_line(code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    calls = {"n": 0}
    real = sim.io.write_bytes

    def failing(path, data):
        calls["n"] += 1
        if calls["n"] == 2:  # the second file of the set
            raise OSError(code, os.strerror(code), str(path))
        real(path, data)

    monkeypatch.setattr(sim.io, "write_bytes", failing)
    assert carrysim(*SMALL, "output.plots=true") == 4
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and os.strerror(code) in err, err
    runs = tmp_path / "outputs" / "runs"
    assert visible(runs) == []  # no folder, no staging folder, no lock file


def test_output_folder_below_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").write_text("not a folder")
    assert carrysim(*SMALL) == 4
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a folder" in err, err


def test_writes_to_a_full_device_raise_enospc():
    with pytest.raises(OSError) as info:
        write_bytes("/dev/full", b"x" * 65536)
    assert info.value.errno == errno.ENOSPC


def test_an_atomic_file_is_complete_or_absent(tmp_path, monkeypatch):
    target = tmp_path / "a.txt"

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(sim.io, "write_bytes", full)
    with pytest.raises(OSError):
        atomic_write_text(target, "hello")
    assert visible(tmp_path) == []


def test_a_comparison_is_written_as_a_set(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name, scenario in (("a", "baseline"), ("b", "risk_off")):
        assert carrysim(*SMALL, f"scenario={scenario}", f"hydra.run.dir=outputs/{name}") == 0
    runs = [str(tmp_path / "outputs" / name) for name in ("a", "b")]
    out = tmp_path / "cmp"
    real = sim.io.write_bytes

    def failing(path, data):
        if Path(path).name.startswith(".comparison.") and Path(path).suffix.endswith("csv"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(sim.io, "write_bytes", failing)
    assert carrysim("compare", *runs, "--out", str(out)) == 4
    assert not out.exists() and visible(tmp_path) == ["outputs"]
    monkeypatch.setattr(sim.io, "write_bytes", real)
    assert carrysim("compare", *runs, "--out", str(out)) == 0
    assert {"comparison.nc", "comparison.md", "comparison.csv", "differences.csv"} <= set(visible(out))


def test_a_failed_launch_leaves_no_sweep_folder_and_one_line(tmp_path):
    """The SLURM preset without SLURM: the launcher's error on one line, no folders left."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "sim", "-m", "hydra/launcher=slurm",
                          "hydra.launcher.partition=x", *SMALL, "scenario=baseline,risk_off"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "srun" in err[0], out.stderr
    assert visible(tmp_path / "outputs" / "sweeps") == []
    assert not list(tmp_path.glob("**/%j"))


def test_short_help_is_the_same_for_both_spellings():
    assert short_help("carrysim").replace("carrysim", "X") == short_help("python -m sim").replace(
        "python -m sim", "X")


def test_reserved_run_commits_on_success_and_leaves_nothing_on_exit(tmp_path, monkeypatch):
    """The folder of another Hydra command (the backtest) is reserved and written like a run's."""
    from sim.cli import reserved_run

    monkeypatch.setattr(sim.cli, "_stamp", lambda: "2026-01-01_12-00-00")
    parent = tmp_path / "backtest"
    for _ in range(2):  # the same second twice: two folders
        with reserved_run(["x=1"], parent, "quick") as (output, args):
            staging = Path(args[-1].split("=", 1)[1])
            assert args[-1].startswith("hydra.run.dir=") and staging.parent == parent
            (staging / "backtest.md").write_text("done")
    assert visible(parent) == ["2026-01-01_12-00-00_quick", "2026-01-01_12-00-00_quick-2"]
    with pytest.raises(SystemExit):
        with reserved_run(["x=1"], parent, "quick") as (output, args):
            (Path(args[-1].split("=", 1)[1]) / "backtest.md").write_text("half")
            sys.exit(2)
    assert len(visible(parent)) == 2  # nothing left by the failed one
