"""Shared helpers: configs composed exactly as the command line would, at small sizes.

Test modules import them as ``from tests.helpers import ...`` (``tests`` is a package, so
this works under both ``pytest`` and ``python -m pytest``).
"""
from __future__ import annotations

from pathlib import Path

from sim.compose import load_config

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
    "model.fx.calm_to_stress=0",
    "model.fx.stress_trigger=1000",
    "model.intervention.enabled=false",
]


def small(overrides=(), paths=2000, months=12):
    return load_config([f"sampler.paths={paths}", f"sampler.horizon_months={months}",
                        "output.progress=false", *overrides])
