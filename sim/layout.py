"""Every array the kernel reads or writes, declared once as numpy structured dtypes.

A record type is a list of fields, each with its numpy type, its unit and a long name; the
unit and long name of the output records are the metadata the results Dataset carries.
:mod:`sim.inputs` fills the input records by field name, :mod:`sim.kernels` reads and writes
them by field name (numba compiles a field access to a load at a fixed offset), and
:mod:`sim.results` turns the output records into Dataset variables with their metadata.

Inputs (filled once per run by :mod:`sim.inputs`):

* ``GLOBAL``: one record of parameters and initial conditions;
* ``BANK``: one record per central bank (``Model.boj``, ``Model.fed``);
* ``STEP``: one record per time step (step lengths, transition probabilities, OU
  coefficients, scripted event sizes);
* ``MEETING``: one record per time step and bank (is there a meeting, is its decision scripted);
* ``SUBSTEP``: one record per sub-step of the investors' clock (a business day, or a step);
* ``CLASS``: one record per investor class; ``CLASS_STEP`` per sub-step and class;
* ``PATH_PARAM`` per path and ``CLASS_PARAM`` per path and class: parameters drawn from their
  priors by :func:`sim.inputs.path_parameters`.

Outputs (written by the kernel, one row per path): ``PATH_OUT``, ``CLASS_OUT`` and ``TIME_OUT``
(per path and date).  ``DRAWS`` is the layout of the random numbers of one path-step, in the
order they are drawn; ``HOLDER`` is the kernel's per-class working state.
"""
from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    units: str = ""
    long_name: str = ""
    shape: tuple = ()


#: Metadata of every declared field, by record dtype: {dtype: {name: Field}}.
_FIELDS: dict[np.dtype, dict[str, Field]] = {}


def declare(*fields: Field) -> np.dtype:
    """A structured dtype (C-aligned fields) whose fields carry their units and long names."""
    dtype = np.dtype([(f.name, f.type, f.shape) for f in fields], align=True)
    _FIELDS[dtype] = {f.name: f for f in fields}
    return dtype


def fields(dtype: np.dtype) -> list[Field]:
    """The declared fields of a record dtype, in memory order."""
    return list(_FIELDS[dtype].values())


def meta(dtype: np.dtype, name: str) -> Field:
    return _FIELDS[dtype][name]


def columns(records: np.ndarray) -> np.ndarray:
    """An all-float64 record array seen as a plain float array with one more axis (no copy)."""
    n = len(records.dtype.names)
    assert records.dtype.itemsize == 8 * n and all(
        records.dtype[f] == np.float64 for f in records.dtype.names)
    return np.ascontiguousarray(records).view(np.float64).reshape(records.shape + (n,))


def as_records(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The inverse of :func:`columns`: the last axis of a float array read as ``dtype`` fields."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    assert values.shape[-1] == len(dtype.names)
    return values.view(dtype).reshape(values.shape[:-1])


# ---------------------------------------------------------------------------------------
# Inputs.
# ---------------------------------------------------------------------------------------
F = Field
GLOBAL = declare(
    F("mean_jp_inflation", "f8", "pp", "Long-run mean of the Japanese inflation gap"),
    F("mean_jp_activity", "f8", "pp", "Long-run mean of the Japanese activity gap"),
    F("mean_us_inflation", "f8", "pp", "Long-run mean of the US inflation gap"),
    F("mean_us_activity", "f8", "pp", "Long-run mean of the US activity gap"),
    F("mean_jgb_term_premium", "f8", "pp", "Long-run mean of the JGB term premium"),
    F("mean_ust_term_premium", "f8", "pp", "Long-run mean of the UST term premium"),
    F("jp_inflation0", "f8", "pp", "Japanese inflation gap at the snapshot"),
    F("jp_activity0", "f8", "pp", "Japanese activity gap at the snapshot"),
    F("us_inflation0", "f8", "pp", "US inflation gap at the snapshot"),
    F("us_activity0", "f8", "pp", "US activity gap at the snapshot"),
    F("boj0", "f8", "% p.a.", "BoJ policy rate at the snapshot"),
    F("fed0", "f8", "% p.a.", "Fed policy rate at the snapshot"),
    F("jgb0", "f8", "% p.a.", "10y JGB yield at the snapshot"),
    F("ust0", "f8", "% p.a.", "10y UST yield at the snapshot"),
    F("logfx0", "f8", "log JPY per USD", "Log USD/JPY at the snapshot"),
    F("var0", "f8", "1/year", "Variance of USD/JPY log returns at the snapshot"),
    F("boj_since0", "f8", "years", "Time since the BoJ's last move at the snapshot"),
    F("fed_since0", "f8", "years", "Time since the Fed's last move at the snapshot"),
    F("policy_rules", "?", "", "Central banks decide by their rules (else rates stay unless scripted)"),
    F("anchor_snapshot", "?", "", "Term premia revert to their snapshot values (else to the config's means)"),
    F("expectations_factor", "f8", "1", "Weight of today's policy gap in the 10y expected short rate"),
    F("fiscal_jump_size", "f8", "pp", "JGB term-premium jump of a fiscal event"),
    F("ust_tp_per_tn_sold", "f8", "pp per USD tn", "UST term premium per USD tn of bonds sold"),
    F("jgb_tp_per_tn_repatriated", "f8", "pp per USD tn", "JGB term-premium fall per USD tn repatriated"),
    F("eta", "f8", "log points per pp", "Elasticity of log USD/JPY to the 10y spread"),
    F("long_run_logvol", "f8", "log(1/sqrt(year))", "Level to which the log volatility reverts"),
    F("stress_vol_multiplier", "f8", "1", "Factor on the diffusion volatility in stress"),
    F("crash_intensity", "f8", "1/year", "Crash intensity at the reference crowding"),
    F("crash_crowding", "f8", "1", "Sensitivity of the crash intensity to crowding"),
    F("crash_mean_size", "f8", "log points", "Mean size of a crash jump"),
    F("crowding_reference", "f8", "USD bn", "Carry holdings at which the crash intensity is its reference"),
    F("permanent_share", "f8", "1", "Permanent share of the price impact"),
    F("intervention_on", "?", "", "Rule-based Ministry of Finance interventions"),
    F("intervention_loglevel", "f8", "log JPY per USD", "Log USD/JPY above which the MoF may intervene"),
    F("intervention_size", "f8", "USD bn", "Yen bought by one intervention"),
    F("max_iter", "i8", "1", "Evaluations allowed to the within-step solver"),
    F("tol", "f8", "log points", "Tolerance of the within-step solver"),
    F("large_weekly", "f8", "USD bn per week", "Weekly unwind counted as large"),
    F("impact_limit", "f8", "USD bn",
      "Official flow, or private flow per week, up to which the price impact is linear"),
    F("impact_stress_multiplier", "f8", "1", "Factor on the price impact in stress"),
    F("private_flows", "?", "", "Private flows move USD/JPY (false: the flows-off counterfactual)"),
    F("announcement", "f8", "log points", "Signalling move of an intervention beyond its flow"),
    F("intervention_spacing", "f8", "years", "Least time between two interventions"),
)

BANK = declare(
    F("inflation_response", "f8", "1", "Response of the desired rate to the inflation gap"),
    F("activity_response", "f8", "1", "Response of the desired rate to the activity gap"),
    F("fx_response", "f8", "pp per log point x 100", "Response of the desired rate to USD/JPY"),
    F("logfx_reference", "f8", "log JPY per USD", "Log USD/JPY at which the FX response is zero"),
    F("smoothing", "f8", "1", "Weight of the gap to the desired rate in the decision"),
    F("decision_noise", "f8", "pp", "Standard deviation of the decision noise"),
    F("threshold_25", "f8", "pp", "Latent pressure for a 25bp move"),
    F("threshold_50", "f8", "pp", "Latent pressure for a 50bp move"),
    F("max_move", "f8", "pp", "Largest move at one meeting"),
    F("min_spacing", "f8", "years", "Preferred least time between two moves"),
    F("spacing_penalty", "f8", "pp", "Extra latent hurdle for a move within the preferred spacing"),
    F("lower_bound", "f8", "% p.a.", "Lower bound of the policy rate"),
    F("pause_in_stress", "?", "", "No hikes while markets are in stress"),
)

#: The six Ornstein-Uhlenbeck processes, in the order of the first six correlated factors.
OU_PROCESSES = ("jp_inflation", "jp_activity", "us_inflation", "us_activity", "jgb_term_premium",
                "ust_term_premium")
#: Scripted events that add to a quantity in their step (config event kind = field ``ev_<kind>``).
ADDITIVE_EVENTS = ("fx_shock", "jgb_term_premium", "ust_term_premium", "jp_inflation",
                   "jp_activity", "us_inflation", "us_activity", "intervention")

STEP = declare(
    F("dt", "f8", "years", "Step length"),
    F("sqrt_dt", "f8", "sqrt(years)", "Square root of the step length"),
    F("weeks", "f8", "weeks", "Step length in weeks"),
    F("since_check", "f8", "years", "Time from the last weekly check point to the step's end"),
    F("first_sub", "i8", "", "Index of the step's first sub-step (SUBSTEP records)"),
    F("subs", "i8", "", "Number of sub-steps in which the investors trade within the step"),
    F("p_fiscal", "f8", "1", "Probability of a fiscal jump in the step"),
    F("p_calm_to_stress", "f8", "1", "Probability of a switch from calm to stress"),
    F("p_stress_to_calm", "f8", "1", "Probability of a switch from stress to calm"),
    F("a_logvol", "f8", "1", "OU autoregression of the log FX volatility over the step"),
    F("s_logvol", "f8", "1", "OU shock scale of the log FX volatility over the step"),
    F("check_lag", "i8", "steps",
      "Steps back to the previous weekly check point (0: no check at this step's end)"),
    F("trigger_level", "f8", "log points", "Yen rally since the previous check point that starts stress"),
    *[F(f"a_{p}", "f8", "1", f"OU autoregression of {p} over the step") for p in OU_PROCESSES],
    *[F(f"s_{p}", "f8", "pp", f"OU shock scale of {p} over the step") for p in OU_PROCESSES],
    *[F(f"ev_{k}", "f8", "", f"Scripted {k} in the step") for k in ADDITIVE_EVENTS],
    F("ev_stress", "?", "", "Scripted start of stress in the step"),
    F("p_intervention", "f8", "1", "Probability of an intervention in the step, if allowed"),
)

#: How a meeting decides: by the bank's rule, a scripted move, or a move with a probability.
RULE, SCRIPTED, PROBABILITY = "rule", "scripted", "probability"
OVERRIDES = (RULE, SCRIPTED, PROBABILITY)
MEETING = declare(
    F("meets", "?", "", "The bank meets in this step"),
    F("after", "f8", "years", "Time from the meeting to the step's end"),
    F("sub", "i8", "", "Sub-step of the meeting's business day within the step (from which "
      "the investors read its decision)"),
    F("override", "i8", "", "How the meeting decides: index into OVERRIDES"),
    F("move", "f8", "pp", "Scripted move"),
    F("probability", "f8", "1", "Probability of the scripted move"),
)

#: Signals of the investor classes (config.SIGNALS in the same order).
SIGNAL_KINDS = ("carry_to_risk", "drawdown", "hedged_pickup", "yield_level", "allocation_drift")
CLASS = declare(
    F("signal", "i8", "", "Decision signal: index into SIGNAL_KINDS"),
    F("threshold_mean", "f8", "pp", "Mean band half-width (allocation classes)"),
    F("threshold_distance", "f8", "signal units",
      "Mean distance of current holders' thresholds beyond the snapshot signal"),
    F("threshold_width", "f8", "signal units", "Dispersion of exit thresholds"),
    F("reentry_gap", "f8", "signal units", "Signal retreat before holders come back"),
    F("hedge_share", "f8", "1", "Share of a move made by raising the FX hedge ratio"),
    F("hedge_ratio", "f8", "1", "FX hedge ratio at the snapshot"),
    F("max_hedge_ratio", "f8", "1", "FX hedge ratio when fully out"),
    F("bond_share", "f8", "1", "Share of an unwind sold in US bonds"),
    F("carry", "?", "", "Counted in the carry crowding; may rebuild beyond its snapshot holdings"),
    F("spot_footprint", "f8", "1", "Share of the class's yen buying that reaches the spot market"),
    F("foreign_weight", "f8", "1", "Foreign weight at the snapshot (allocation classes)"),
    F("target_weight", "f8", "1", "Policy foreign weight (allocation classes)"),
)
#: The investors' clock within a step: sub-steps of equal length (a business day each, or the
#: whole step), in which flows and the yen are solved together in turn.
SUBSTEP = declare(
    F("dt", "f8", "years", "Sub-step length"),
    F("weeks", "f8", "weeks", "Sub-step length in weeks"),
    F("since_check", "f8", "years", "Time from the last weekly check point to the sub-step's end"),
    F("ewma", "f8", "1",
      "Weight of the variance at the last weekly check point in the realised-variance update"),
    F("decay", "f8", "1", "Share of the transient price impact left after the sub-step"),
)
CLASS_STEP = declare(
    F("speed", "f8", "1", "Share of the gap to a higher target exit share closed in the sub-step"),
    F("rebuild_speed", "f8", "1",
      "Share of the gap to a lower target exit share closed in the sub-step"),
    F("basis_speed", "f8", "1", "Share of the gap between the drawdown basis and USD/JPY closed"),
    F("timing", "f8", "1", "Where in the sub-step the class's target reads the level: the centre of "
      "its adjustment's weights over the sub-step (sim.inputs.evaluation_timing)"),
    F("since_at", "f8", "years", "Time from the last weekly check point to that point"),
    F("ewma_at", "f8", "1", "Weight of the old realised variance at that point"),
)

PATH_PARAM = declare(
    F("neutral_boj", "f8", "% p.a.", "BoJ neutral rate (drawn)"),
    F("neutral_fed", "f8", "% p.a.", "Fed neutral rate (drawn)"),
    F("impact", "f8", "log points per USD bn", "Price impact of yen buying (drawn)"),
    F("logvol0", "f8", "log(1/sqrt(year))",
      "Log USD/JPY diffusion volatility at the snapshot: what the spread and the crash jumps "
      "leave of the snapshot's realised variance (sim.inputs.start_logvol)"),
)
CLASS_PARAM = declare(
    F("holdings", "f8", "USD bn", "Foreign holdings at the snapshot by investor class (drawn)"),
    F("repatriation", "f8", "1", "Share of an unwind repatriated into yen (drawn)"),
)

#: The path-independent inputs of the kernel, as one value numba can take apart.
Model = namedtuple("Model", "glob boj fed steps boj_meetings fed_meetings chol_calm chol_stress "
                            "classes substeps class_steps")
Model.__doc__ = """Path-independent kernel inputs.

glob: GLOBAL[1]; boj, fed: BANK[1]; steps: STEP[steps]; boj_meetings, fed_meetings:
MEETING[steps]; chol_calm, chol_stress: lower Cholesky factors (7 x 7) of the factor
correlations (order: OU_PROCESSES, then USD/JPY); classes: CLASS[classes]; substeps:
SUBSTEP[sub-steps] (a step's are STEP.first_sub onwards); class_steps: CLASS_STEP[sub-steps,
classes]."""

# ---------------------------------------------------------------------------------------
# Random numbers of one path-step, in drawing order: ten normals (pairs from the polar
# method), then five uniforms.
# ---------------------------------------------------------------------------------------
N_FACTORS = 7
DRAWS = declare(
    F("factor", "f8", "1", "Independent normals behind the correlated factors, in the order of "
                           "OU_PROCESSES then USD/JPY", (N_FACTORS,)),
    F("boj_decision", "f8", "1", "Normal of the BoJ's decision noise"),
    F("fed_decision", "f8", "1", "Normal of the Fed's decision noise"),
    F("vol_shock", "f8", "1", "Normal of the log FX volatility"),
    F("regime", "f8", "1", "Uniform of the regime switch"),
    F("crash", "f8", "1", "Uniform of the crash arrival"),
    F("crash_size", "f8", "1", "Uniform of the crash size"),
    F("fiscal", "f8", "1", "Uniform of the fiscal jump"),
    F("intervention", "f8", "1", "Uniform of the intervention"),
)
NORMALS_PER_STEP = N_FACTORS + 3   # the factors, two decision normals and the volatility's
UNIFORMS_PER_STEP = 5

#: The kernel's working state of one investor class on the current path.
HOLDER = declare(
    F("q", "f8", "1", "Exit share committed so far"),
    F("q_new", "f8", "1", "Candidate exit share at the solver's last level"),
    F("holdings", "f8", "USD bn", "Foreign holdings left"),
    F("basis", "f8", "log JPY per USD", "Reference level of the drawdown signal"),
    F("phi0", "f8", "1", "Share of thresholds below the exit edge (snapshot signal + half the re-entry gap)"),
    F("mu", "f8", "signal units", "Mean threshold (snapshot signal plus the threshold distance)"),
    F("hedge", "f8", "1", "FX hedge ratio now"),
    F("z0", "f8", "1", "Standardised exit edge (below it nobody has crossed)"),
    F("buying_new", "f8", "USD bn", "Spot yen bought at the candidate share q_new"),
)

# ---------------------------------------------------------------------------------------
# Outputs.
# ---------------------------------------------------------------------------------------
PATH_OUT = declare(
    F("cum_unwind", "f8", "USD bn", "Cumulative net unwind of foreign positions"),
    F("cum_repatriation", "f8", "USD bn", "Cumulative repatriation into yen"),
    F("hedge_yen_buying", "f8", "USD bn", "Cumulative yen bought through higher FX hedge ratios"),
    F("peak_weekly_unwind", "f8", "USD bn per week", "Peak weekly unwind"),
    F("first_large_step", "i8", "1", "Step whose end first saw a large weekly unwind (-1: none)"),
    F("largest_yen_appreciation", "f8", "%",
      "Largest yen appreciation (peak-to-trough fall of USD/JPY)"),
    F("amplification_ratio", "f8", "1",
      "Amplification ratio (sum of absolute USD/JPY moves over the sum without flows)"),
    F("largest_weekly_rally", "f8", "%",
      "Largest one-week yen appreciation (fall of USD/JPY between weekly check points)"),
    F("stress_share", "f8", "1", "Share of time in the stress regime"),
    F("nonconverged_steps", "i8", "1", "Steps whose feedback did not converge"),
    F("crashes", "i8", "1", "Yen crash jumps"),
    F("interventions", "i8", "1", "Rule-based Ministry of Finance interventions"),
    F("fail_step", "i8", "1", "First step with a non-finite state (0: none)"),
    F("boj_rate_end", "f8", "% p.a.", "BoJ policy rate at the horizon"),
    F("fed_rate_end", "f8", "% p.a.", "Fed policy rate (midpoint of target range) at the horizon"),
    F("jgb10_end", "f8", "% p.a.", "10y JGB yield at the horizon"),
    F("ust10_end", "f8", "% p.a.", "10y UST yield at the horizon"),
    F("spread_end", "f8", "pp", "US-Japan 10y yield spread at the horizon"),
    F("usdjpy_end", "f8", "JPY per USD", "USD/JPY at the horizon"),
)
CLASS_OUT = declare(
    F("unwind_by_investor", "f8", "USD bn", "Cumulative net unwind by investor class"),
    F("repatriation_by_investor", "f8", "USD bn", "Cumulative repatriation by investor class"),
    F("hedge_by_investor", "f8", "USD bn", "Yen bought through hedging by investor class"),
    F("holdings_end", "f8", "USD bn", "Foreign holdings at the horizon by investor class"),
    F("holdings_low", "f8", "USD bn", "Lowest foreign holdings over the horizon by investor class"),
)
TIME_OUT = declare(
    F("boj_rate", "f8", "% p.a.", "BoJ policy rate"),
    F("fed_rate", "f8", "% p.a.", "Fed policy rate (midpoint of target range)"),
    F("jgb10", "f8", "% p.a.", "10y JGB yield"),
    F("ust10", "f8", "% p.a.", "10y UST yield"),
    F("spread", "f8", "pp", "US-Japan 10y yield spread"),
    F("usdjpy", "f8", "JPY per USD", "USD/JPY"),
    F("unwind", "f8", "USD bn", "Cumulative net unwind"),
    F("repatriation", "f8", "USD bn", "Cumulative repatriation"),
    F("stress", "f8", "1", "In the stress regime (1) or calm (0)"),
    F("fx_vol", "f8", "% p.a.", "Realised USD/JPY volatility"),
    F("jp_inflation_gap", "f8", "pp", "Japanese inflation minus its target"),
    F("jp_activity_gap", "f8", "pp", "Japanese activity gap"),
    F("us_inflation_gap", "f8", "pp", "US inflation minus its target"),
    F("us_activity_gap", "f8", "pp", "US activity gap"),
)
#: Per-date outputs on the 12.5bp rate grid (or 0/1): their per-date quantiles are exact.
DISCRETE_SERIES = ("boj_rate", "fed_rate", "stress")
del F
