"""Shared helpers: configs composed exactly as the command line would, at small sizes.

Test modules import them as ``from tests.helpers import ...`` (``tests`` is a package, so
this works under both ``pytest`` and ``python -m pytest``); fixtures live in conftest.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.compose import load_config
from sim.inputs import build_inputs
from sim.pipeline import simulate

#: The shared FRED files beside the repository (CI checks out ``shared/`` beside the clone).
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

#: Switches that turn the model into its linear-Gaussian skeleton: no policy decisions,
#: no parameter uncertainty, no flows' effect on prices or yields, no jumps, calm regime only.
QUIET = [
    "model.policy.decisions=false",
    "model.parameter_uncertainty=false",
    "model.impact.price_impact=0",
    "model.yields.ust_tp_per_tn_sold=0",
    "model.yields.jgb_tp_per_tn_repatriated=0",
    "model.yields.fiscal_jump_intensity=0",
    "model.fx.crash_intensity=0",
    "model.fx.vol_of_vol=0",
    "model.fx.calm_to_stress=0",
    "model.fx.stress_trigger=1000",
    "model.intervention.enabled=false",
]


def small(overrides=(), paths=2000, months=12):
    return load_config([f"sampler.paths={paths}", f"sampler.horizon_months={months}",
                        "output.progress=false", *overrides])


def run(cfg):
    """The results Dataset of ``cfg``, with every path's full time series (path x time)."""
    return simulate(cfg, progress=False, series=True)[0]


def fx_vols(inputs, multiplier=1.0):
    """Diffusion volatility of USD/JPY in each step (1/sqrt(year)) when the vol of vol is zero:
    the log volatility's deterministic path from the snapshot towards its long-run level."""
    from sim.inputs import path_parameters

    g, steps = inputs.model.glob[0], inputs.steps
    logvol, out = float(path_parameters(inputs, 0, 1)[0]["logvol0"][0]), []
    for a in steps["a_logvol"]:
        out.append(np.exp(logvol) * multiplier)
        logvol = g["long_run_logvol"] + (logvol - g["long_run_logvol"]) * a
    return np.array(out)


def step_years(cfg):
    """Length of each time step in years, as the kernel uses it."""
    return build_inputs(cfg).steps["dt"]
