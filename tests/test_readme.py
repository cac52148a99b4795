"""Every command in the README's shell blocks, run with few paths.

``PLAN`` says how each command is run here: which options are added or replaced to keep it small,
and what it must produce.  A command added to the README without a plan fails
``test_every_readme_command_has_a_plan``; a plan whose command left the README fails it too.
Commands run in this process (as ``carrysim`` would run them) from a temporary folder, except
that sweep launchers start processes of their own.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sim.cli import SUBCOMMANDS, dispatch
from sim.errors import run_command
from tests.helpers import SHARED_DATA

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
SMALL = {"sampler.paths": "200", "sampler.horizon_months": "3", "output.plots": "false",
         "output.progress": "false"}
MODULES = {sub.module: name for name, sub in SUBCOMMANDS.items()}


def readme_commands() -> list[str]:
    """Commands of the README's ```bash blocks: continuations joined, comments dropped, and
    ``a && b`` split into its parts."""
    text = README.read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            if not tokens:
                continue
            part: list[str] = []
            for tok in [*tokens, "&&"]:
                if tok == "&&":
                    out.append(shlex.join(part))
                    part = []
                else:
                    part.append(tok)
    return out


@dataclass
class Plan:
    set: dict = field(default_factory=dict)   # overrides replaced or added (key=value)
    add: list = field(default_factory=list)   # options appended
    code: int = 0                             # expected exit status
    expect: str = ""                          # text the output must contain
    slow: bool = False
    skip: str = ""                            # why this command is not run here


RUN = Plan(set=SMALL)
PLAN = {
    "pip install -e .": Plan(skip="installs: tests/test_install.py (slow) runs it in a fresh venv"),
    "python -m sim": Plan(set={**SMALL, "output.plots": "true"}, expect="Results in"),
    "pip install -e '.[test]'": Plan(skip="installs: tests/test_install.py (slow)"),
    "python -m pytest": Plan(skip="the test suite itself"),
    "carrysim calibrate data.dir=../shared/data": Plan(
        set={"data.dir": str(SHARED_DATA), "smm": "quick", "smm.block_evaluations": "2"},
        add=["smm.write={tmp}/fitted.yaml"], expect="Report written to", slow=True),
    "carrysim calibrate smm=quick data.dir=../shared/data": Plan(
        set={"data.dir": str(SHARED_DATA), "smm.block_evaluations": "2"}, expect="Report written to",
        slow=True),
    "python -m sim calibration=none": RUN,
    "carrysim run scenario=replay_2025_12": Plan(set={**SMALL, "sampler.horizon_months": "1"},
                                                 expect="Observed vs simulated"),
    "carrysim run snapshot=seed_2025_12": RUN,
    "carrysim run sampler.paths=50000 sampler.step=daily sampler.horizon_months=6": Plan(
        set={**SMALL, "sampler.horizon_months": "6"}, expect="daily steps"),
    "carrysim run investors.leveraged.holdings=500 model.parameter_uncertainty=false": RUN,
    "carrysim run model.policy.boj.min_spacing_months=3": RUN,
    "carrysim run model.policy.boj.spacing_penalty=10": RUN,
    "carrysim run model.policy.boj.neutral_from=snapshot": RUN,
    "carrysim run model.yields.anchor=config": RUN,
    """carrysim run 'scenario.events=[{date: "2026-03-19", kind: boj_decision, value: 0.25}]'""": Plan(
        set={**SMALL, "sampler.horizon_months": "4"}),
    "carrysim run -m investors.leveraged.holdings=160,300,500": Plan(set=SMALL, expect="Comparison written to", slow=True),
    "carrysim run -m scenario=baseline,hawkish_boj,spread_compression,jgb_fiscal_stress "
    "hydra/launcher=joblib sampler.paths=20000": Plan(set={**SMALL, "sampler.horizon_months": "4"},
                                                      expect="Comparison written to", slow=True),
    "carrysim compare 'outputs/sweeps/<sweep>' --baseline scenario=baseline": Plan(
        expect="Differences against the baseline 'scenario=baseline'"),
    "carrysim compare 'outputs/runs/<run-a>' 'outputs/runs/<run-b>' --out outputs/my_comparison": Plan(
        expect="Comparison written to outputs/my_comparison"),
    "carrysim sensitivity sampler.paths=20000": Plan(set={"sampler.paths": "200",
                                                          "sampler.horizon_months": "3"},
                                                     expect="Tornado chart and table written", slow=True),
    "carrysim sensitivity --vary model.impact.price_impact=0.05,0.2 --metric exceedance --level 500": Plan(
        set={"sampler.paths": "200", "sampler.horizon_months": "3"}, expect="P(cumulative unwind > USD 500bn)"),
    "carrysim stress model.parameter_uncertainty=false --key investors.leveraged.holdings "
    "--low 160 --high 500 --level 300 --probability 0.5": Plan(
        set={"sampler.paths": "300"}, expect="P(cumulative unwind > USD 300bn) = 50% at"),
    "carrysim run -m hydra/launcher=submitit_local scenario=baseline,spread_compression "
    "sampler.paths=300 sampler.horizon_months=6 output.plots=false": Plan(
        set=SMALL, expect="Comparison written to", slow=True),
    "carrysim run -m hydra/launcher=slurm 'hydra.launcher.partition=<name>' "
    "scenario=baseline,hawkish_boj,spread_compression,jgb_fiscal_stress sampler.paths=1000000": Plan(
        set=SMALL, code=1, expect='Could not detect "srun"'),
    "carrysim run sampler.paths=10000000 output.format=zarr": Plan(set=SMALL, expect="results.zarr"),
    "python -m sim.fetch": Plan(skip="downloads from FRED: tests/test_fetch.py runs it against a "
                                     "local HTTP server"),
    "python -m sim snapshot=data snapshot.date=2024-07-03": Plan(set=SMALL, expect="Results in"),
    "python -m sim snapshot=data snapshot.date=2008-09-12 data.dir=../shared/data": Plan(
        set={**SMALL, "data.dir": str(SHARED_DATA)}, expect="Results in"),
    # Maintainers' tools comparing two source trees (a second checkout at /tmp/base); they run
    # full-size default runs and timing rounds, minutes each: not run here.
    "python benchmarks/same_outputs.py record --tree /tmp/base --out /tmp/old": Plan(
        skip="compares two source trees at full size (maintainers' tool)"),
    "python benchmarks/same_outputs.py record --tree . --out /tmp/new": Plan(
        skip="compares two source trees at full size (maintainers' tool)"),
    "python benchmarks/same_outputs.py compare /tmp/old /tmp/new": Plan(
        skip="compares the two recordings above (maintainers' tool)"),
    "python benchmarks/ab_throughput.py --old /tmp/base --new . --rounds 6": Plan(
        skip="timing rounds of two source trees (maintainers' tool)"),
    "python -m sim.backtest": Plan(set={"sampler.paths": "100"}, expect="origins in", slow=True),
    "python -m sim.backtest backtest=quick": Plan(set={"sampler.paths": "200"}, expect="origins in",
                                                 slow=True),
    "python -m sim.moments": Plan(set={"sampler.paths": "40", "moments.step_months": "60",
                                       "moments.bootstrap": "40"},
                                  expect="moments inside the data's 95% interval", slow=True),
    "carrysim run sampler.paths=1000000 output.format=zarr sampler.scheduler=local sampler.workers=2": Plan(
        set=SMALL, expect="2 Dask workers", slow=True),
    "carrysim run sampler.paths=1000000 output.format=zarr sampler.scheduler=tcp://scheduler:8786": Plan(
        set=SMALL, expect="Dask workers", slow=True),
}


def test_every_readme_command_has_a_plan():
    commands = readme_commands()
    assert sorted(set(commands)) == sorted(PLAN), (
        f"not planned: {sorted(set(commands) - set(PLAN))}; "
        f"no longer in the README: {sorted(set(PLAN) - set(commands))}")


def _argv(command: str, plan: Plan, tmp: Path, names: dict) -> list[str]:
    """The command as arguments of ``dispatch``, made small."""
    for placeholder, value in names.items():
        command = command.replace(placeholder, value)
    tokens = shlex.split(command)
    if tokens[:2] == ["python", "-m"]:
        module = tokens[2]
        tokens = ([] if module == "sim" else [MODULES[module]]) + tokens[3:]
    else:
        assert tokens[0] == "carrysim", command
        tokens = tokens[1:]
    tokens = [t for t in tokens if t.split("=", 1)[0] not in plan.set]
    tokens += [f"{k}={v}" for k, v in plan.set.items()]
    return tokens + [a.replace("{tmp}", str(tmp)) for a in plan.add]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Two runs and a sweep (baseline and one other scenario) for the comparison commands."""
    root = tmp_path_factory.mktemp("readme_inputs")
    import os

    cwd = os.getcwd()
    os.chdir(root)
    try:
        small = [f"{k}={v}" for k, v in SMALL.items()]
        for scenario in ("baseline", "risk_off"):
            assert _carrysim([*small, f"scenario={scenario}"]) == 0
        assert _carrysim(["-m", *small, "scenario=baseline,risk_off"]) == 0
    finally:
        os.chdir(cwd)
    runs = sorted((root / "outputs" / "runs").iterdir())
    (sweep,) = list((root / "outputs" / "sweeps").iterdir())
    return {"outputs/runs/<run-a>": str(runs[0]), "outputs/runs/<run-b>": str(runs[1]),
            "outputs/sweeps/<sweep>": str(sweep), "<name>": "debug"}


def _carrysim(argv: list[str]) -> int:
    return run_command(lambda a: dispatch(a, "python -m sim", True), argv)


def _params():
    for command, plan in PLAN.items():
        marks = [pytest.mark.slow] if plan.slow else []
        if plan.skip:
            marks.append(pytest.mark.skip(reason=plan.skip))
        yield pytest.param(command, plan, marks=marks, id=command[:60])


@pytest.mark.parametrize("command, plan", list(_params()))
def test_readme_command(command, plan, made, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # launchers' worker processes import sim
    names = dict(made)
    cluster = None
    if "tcp://scheduler:8786" in command:
        from dask.distributed import LocalCluster

        cluster = LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None,
                               silence_logs=50)
        names["tcp://scheduler:8786"] = cluster.scheduler_address
    try:
        code = _carrysim(_argv(command, plan, tmp_path, names))
    finally:
        if cluster is not None:
            cluster.close()
    out, err = capsys.readouterr()
    assert code == plan.code, (out + err)[-3000:]
    assert plan.expect in out + err, (out + err)[-3000:]
    # quiet: no library's INFO lines (Dask), no joblib repr, no traceback
    assert "INFO" not in err and "Joblib.Parallel(" not in out + err, (out + err)[-3000:]
    assert "Traceback" not in out + err
    if code:
        assert len(err.strip().splitlines()) == 1, err
        left = [p for p in tmp_path.rglob("*") if p.is_file() or p.parent.name in ("runs", "sweeps")]
        assert left == []  # nothing written, no empty run or sweep folder
