"""Config to kernel inputs: the config is validated and resolved here, once.

:func:`build_inputs` validates a :class:`sim.config.Config` and turns it into an
:class:`Inputs`: the kernel's path-independent records (:class:`sim.layout.Model`, every field
filled by name), the time grid, the investor classes, and the run's sampling plan (seed, paths,
blocks, chunks).  Nothing downstream reads the config for the model's numbers.
:func:`path_parameters` draws the per-path parameters of any range of paths from their priors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim import layout as L
from sim.calendar import (BUSINESS_DAYS_PER_YEAR, business_day_index, meeting_dates,
                          meeting_steps, parse_date, step_lengths, step_of, time_grid,
                          time_to_step_end)
from sim.config import Config, PriorConfig, rebuild_time
from sim.rng import draw_prior, parameter_uniforms
from sim.validate import ConfigError, as_matrix, check_correlation, validate

#: Decision events: (bank, how the meeting decides).
DECISION_EVENTS = {
    "boj_decision": ("boj", L.SCRIPTED), "fed_decision": ("fed", L.SCRIPTED),
    "boj_probability": ("boj", L.PROBABILITY), "fed_probability": ("fed", L.PROBABILITY),
}


@dataclass(frozen=True)
class Prior:
    """How one per-path parameter is drawn: its name in the random stream, prior, central value."""

    name: str
    prior: PriorConfig
    central: float
    shift: float = 0.0          # added to every draw (a neutral rate taken from the snapshot)
    scale: float = 1.0          # multiplies every draw (holdings at a past date's positioning)


@dataclass
class Plan:
    """How the paths are simulated: streams, blocks, chunks, threads, where the chunks run."""

    seed: int
    paths: int
    block_size: int
    chunk_paths: int            # a whole number of blocks
    sample_paths: int           # full paths kept in the results
    threads: int                # 0: all cores
    scheduler: str | None       # None, "local" or a Dask scheduler address
    workers: int
    progress: bool

    def chunk_ranges(self) -> list[tuple[int, int]]:
        """Global path ranges [start, stop) of the chunks, in order."""
        return [(s, min(s + self.chunk_paths, self.paths))
                for s in range(0, self.paths, self.chunk_paths)]


@dataclass
class Inputs:
    """Everything a run needs, resolved from a validated config."""

    cfg: Config                 # kept for provenance (the results' attributes), not for numbers
    model: L.Model              # path-independent kernel records
    dates: np.ndarray           # datetime64[D], n_steps + 1 grid points
    investors: list[str]        # enabled classes, in kernel order
    labels: list[str]           # their display names
    plan: Plan
    uncertain: bool             # parameters drawn from their priors (else central values)
    priors: dict[str, Prior]    # PATH_PARAM field -> its prior
    class_priors: list[dict[str, Prior]]  # per class: CLASS_PARAM field -> its prior
    notes: list[str] = field(default_factory=list)  # messages for the user

    @property
    def steps(self) -> np.ndarray:
        """STEP records, one per time step."""
        return self.model.steps


def nearest_correlation(arr: np.ndarray) -> np.ndarray:
    """Clip negative eigenvalues and rescale to a unit diagonal (a PSD correlation matrix)."""
    sym = 0.5 * (arr + arr.T)
    vals, vecs = np.linalg.eigh(sym)
    fixed = (vecs * np.maximum(vals, 1e-8)) @ vecs.T
    d = np.sqrt(np.diag(fixed))
    out = fixed / np.outer(d, d)
    np.fill_diagonal(out, 1.0)
    return out


def correlation_factors(cfg: Config) -> tuple[list[np.ndarray], list[str]]:
    """Cholesky factors of the calm and stress correlation matrices (stress defaults to calm)."""
    corr = cfg.model.correlation
    notes = []
    factors = []
    for regime, matrix in (("calm", corr.calm), ("stress", corr.stress or corr.calm)):
        key = f"model.correlation.{regime}"
        arr = as_matrix(key, matrix)
        if corr.repair and arr.shape == (L.N_FACTORS, L.N_FACTORS) and np.all(np.isfinite(arr)):
            fixed = nearest_correlation(arr)
            change = float(np.abs(fixed - arr).max())
            if change > 1e-12:
                notes.append(f"{key} repaired to the nearest valid correlation matrix "
                             f"(largest entry change {change:.4f})")
            arr = fixed
        arr = check_correlation(key, arr)
        factors.append(np.linalg.cholesky(arr + 1e-14 * np.eye(len(arr))))
    return [np.ascontiguousarray(f) for f in factors], notes


def _ou_coefficients(speed: float, vol: float, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact OU transition over ``dt``: x' = mean + (x - mean) a + s eps."""
    if speed > 0:
        a = np.exp(-speed * dt)
        s = vol * np.sqrt((1.0 - a * a) / (2.0 * speed))
    else:
        a = np.ones_like(dt)
        s = vol * np.sqrt(dt)
    return a, s


def _regime_switches(to_stress: float, to_calm: float,
                     dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact switching probabilities of the two-state Markov chain over ``dt`` (intensities
    per year): P(calm -> stress) = a / (a + b) (1 - e^{-(a + b) dt}), and alike for b."""
    total = to_stress + to_calm
    if total <= 0.0:
        return np.zeros_like(dt), np.zeros_like(dt)
    moved = -np.expm1(-total * dt)
    return to_stress / total * moved, to_calm / total * moved


def _weekly_checks(dates: np.ndarray, weeks: np.ndarray,
                   trigger: float) -> tuple[np.ndarray, np.ndarray]:
    """Where the one-week yen rally is measured: (steps back to the previous check point, or 0
    where a step ends between check points; the rally that starts stress there).

    The check points are the grid points on or just before the weekly dates from the snapshot,
    so daily and weekly grids test the same weekly moves; on a grid coarser than weekly every
    step is checked and the trigger scales with the square root of its length in weeks.
    """
    n = len(dates) - 1
    lag = np.zeros(n, dtype=np.int64)
    level = np.full(n, trigger)
    if np.all(weeks >= 1.0 - 1e-9):
        lag[:] = 1
        return lag, trigger * np.sqrt(np.maximum(weeks, 1.0))
    weekly = time_grid(dates[0], 121, "weekly")
    weekly = weekly[weekly <= dates[-1]]
    points = np.unique(np.searchsorted(dates, weekly, side="right") - 1)
    points = points[points > 0]
    previous = np.concatenate([[0], points[:-1]])
    lag[points - 1] = points - previous
    return lag, level


def _years(later: np.datetime64, earlier: np.datetime64) -> float:
    return float(np.busday_count(earlier, later)) / BUSINESS_DAYS_PER_YEAR


def _records(dtype: np.dtype, n: int | tuple = 1) -> np.ndarray:
    """Zeroed records; every field the kernel reads is then set by name."""
    return np.zeros(n, dtype=dtype)


def _plan(cfg: Config) -> Plan:
    smp = cfg.sampler
    chunk = max(smp.block_size, (smp.chunk_paths // smp.block_size) * smp.block_size)
    return Plan(seed=smp.seed, paths=smp.paths, block_size=smp.block_size, chunk_paths=chunk,
                sample_paths=min(smp.sample_paths, smp.paths), threads=smp.threads,
                scheduler=smp.scheduler, workers=smp.workers, progress=cfg.output.progress)


def _meeting_sub(dates: np.ndarray, steps: np.ndarray, t: int, day: np.datetime64) -> int:
    """The sub-step of step ``t`` from which a decision on ``day`` holds: its business day in
    the step, on the investors' clock (the last sub-step at most; 0 with one sub-step a step)."""
    return min(business_day_index(dates, t, day), int(steps["subs"][t]) - 1)


def _schedule(cfg: Config, dates: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """STEP records and the MEETING records of each bank."""
    snap, m = cfg.snapshot, cfg.model
    start, end = dates[0], dates[-1]
    dt = step_lengths(dates)
    weeks = dt * BUSINESS_DAYS_PER_YEAR / 5.0
    n_steps = len(dt)
    steps = _records(L.STEP, n_steps)
    steps["dt"] = dt
    steps["sqrt_dt"] = np.sqrt(dt)
    steps["weeks"] = weeks
    # The investors' clock (docs/model.md 8.1): with clock=daily a step of k business days holds
    # k sub-steps, so investors trade once a business day whatever the output grid.
    if m.feedback.clock == "daily":
        steps["subs"] = np.maximum(np.rint(weeks * 5.0), 1.0).astype(np.int64)
    else:
        steps["subs"] = 1
    steps["p_fiscal"] = 1.0 - np.exp(-m.yields.fiscal_jump_intensity * dt)
    steps["p_calm_to_stress"], steps["p_stress_to_calm"] = _regime_switches(
        m.fx.calm_to_stress, m.fx.stress_to_calm, dt)
    # Log FX volatility: OU with half-life vol_persistence_weeks and vol of vol per sqrt(year).
    persistence = math.log(2.0) / (m.fx.vol_persistence_weeks * 5.0 / BUSINESS_DAYS_PER_YEAR)
    steps["a_logvol"], steps["s_logvol"] = _ou_coefficients(persistence, m.fx.vol_of_vol, dt)
    steps["check_lag"], steps["trigger_level"] = _weekly_checks(dates, weeks,
                                                                m.fx.stress_trigger / 100.0)
    # Realised variance: an EWMA of the moves between weekly check points (as the snapshot's
    # fx_vol is of weekly changes); between them, the move since the last check is provisional.
    since, elapsed = np.empty(len(dt)), 0.0
    for t in range(len(dt)):
        elapsed += dt[t]
        since[t] = elapsed
        if steps["check_lag"][t] > 0:
            elapsed = 0.0
    steps["since_check"] = since
    # The MoF rule decides once a week, at the steps that start on a weekly check point (every
    # step on grids of a week or more), with its probability per week.
    decides = np.concatenate([[True], steps["check_lag"][:-1] > 0])
    steps["p_intervention"] = np.where(
        decides, 1.0 - (1.0 - m.intervention.probability) ** np.maximum(weeks, 1.0), 0.0)
    processes = {"jp_inflation": m.macro.jp_inflation, "jp_activity": m.macro.jp_activity,
                 "us_inflation": m.macro.us_inflation, "us_activity": m.macro.us_activity,
                 "jgb_term_premium": m.yields.jgb_term_premium,
                 "ust_term_premium": m.yields.ust_term_premium}
    for name in L.OU_PROCESSES:
        ou = processes[name]
        steps[f"a_{name}"], steps[f"s_{name}"] = _ou_coefficients(ou.speed, ou.vol, dt)

    meetings = {}
    for bank, known in (("boj", snap.boj_meetings), ("fed", snap.fed_meetings)):
        meetings[bank] = _records(L.MEETING, n_steps)
        key = f"snapshot.{bank}_meetings"
        days = meeting_dates(list(known), start, end, key)
        after = meeting_steps(dates, days)
        meetings[bank]["meets"] = after >= 0.0
        meetings[bank]["after"] = np.maximum(after, 0.0)
        for day in days:  # in date order, so the step's last meeting counts (as meeting_steps)
            t = step_of(dates, day)
            if t >= 0:
                meetings[bank]["sub"][t] = _meeting_sub(dates, steps, t, day)

    for i, ev in enumerate(cfg.scenario.events):
        key = f"scenario.events[{i}]"
        day = parse_date(ev.date, f"{key}.date")
        t = step_of(dates, day)
        if t < 0:
            raise ConfigError(f"{key}.date", ev.date,
                              f"a date after the snapshot ({start}) and no later than the horizon ({end})")
        if ev.kind in DECISION_EVENTS:
            bank, override = DECISION_EVENTS[ev.kind]
            meeting = meetings[bank][t:t + 1]
            meeting["meets"] = True  # a scripted decision off the calendar is an unscheduled meeting
            meeting["after"] = time_to_step_end(dates, t, day)
            meeting["sub"] = _meeting_sub(dates, steps, t, day)
            meeting["override"] = L.OVERRIDES.index(override)
            meeting["move"] = ev.value
            meeting["probability"] = ev.probability
        elif ev.kind == "stress":
            steps["ev_stress"][t] = True
        else:
            steps[f"ev_{ev.kind}"][t] += ev.value
    return steps, meetings


def _global(cfg: Config, start: np.datetime64) -> np.ndarray:
    snap, m = cfg.snapshot, cfg.model
    mac = m.macro
    gl = _records(L.GLOBAL)
    g = gl[0]
    g["mean_jp_inflation"], g["mean_jp_activity"] = mac.jp_inflation.mean, mac.jp_activity.mean
    g["mean_us_inflation"], g["mean_us_activity"] = mac.us_inflation.mean, mac.us_activity.mean
    g["mean_jgb_term_premium"] = m.yields.jgb_term_premium.mean
    g["mean_ust_term_premium"] = m.yields.ust_term_premium.mean
    g["jp_inflation0"] = snap.jp_inflation - mac.inflation_target_jp
    g["jp_activity0"] = snap.jp_activity_gap
    g["us_inflation0"] = snap.us_inflation - mac.inflation_target_us
    g["us_activity0"] = snap.us_activity_gap
    g["boj0"], g["fed0"] = snap.boj_rate, snap.fed_rate
    g["jgb0"], g["ust0"] = snap.jgb10, snap.ust10
    g["logfx0"] = math.log(snap.usdjpy)
    g["var0"] = (snap.fx_vol / 100.0) ** 2
    g["boj_since0"] = _years(start, parse_date(snap.boj_last_move, "snapshot.boj_last_move"))
    g["fed_since0"] = _years(start, parse_date(snap.fed_last_move, "snapshot.fed_last_move"))
    g["policy_rules"] = bool(m.policy.decisions)
    g["anchor_snapshot"] = m.yields.anchor == "snapshot"
    lam = m.yields.expectations_speed
    g["expectations_factor"] = (1.0 - math.exp(-10.0 * lam)) / (10.0 * lam)
    g["fiscal_jump_size"] = m.yields.fiscal_jump_size
    g["ust_tp_per_tn_sold"] = m.yields.ust_tp_per_tn_sold
    g["jgb_tp_per_tn_repatriated"] = m.yields.jgb_tp_per_tn_repatriated
    g["eta"] = m.fx.spread_elasticity / 100.0
    g["long_run_logvol"] = math.log(m.fx.long_run_vol / 100.0)
    g["stress_vol_multiplier"] = m.fx.stress_vol_multiplier
    g["crash_intensity"] = m.fx.crash_intensity * m.fx.crash_scale
    g["crash_crowding"] = m.fx.crash_crowding
    g["crash_mean_size"] = m.fx.crash_mean_size / 100.0
    g["crowding_reference"] = m.fx.crowding_reference
    g["permanent_share"] = m.impact.permanent_share
    g["impact_limit"] = m.impact.linear_limit
    g["impact_stress_multiplier"] = m.impact.stress_multiplier
    g["private_flows"] = bool(m.impact.private_flows)
    g["announcement"] = -math.log1p(-m.intervention.announcement / 100.0)
    g["intervention_on"] = bool(m.intervention.enabled)
    g["intervention_loglevel"] = (math.log(m.intervention.level) if m.intervention.level > 0
                                  else -np.inf)
    g["intervention_size"] = m.intervention.size
    g["intervention_spacing"] = (m.intervention.min_spacing_weeks * 5.0 / BUSINESS_DAYS_PER_YEAR
                                 - 1e-9)
    g["max_iter"] = m.feedback.max_iter
    g["tol"] = m.feedback.tol
    g["large_weekly"] = cfg.output.large_unwind_weekly
    return gl


def _bank(b) -> np.ndarray:
    rec = _records(L.BANK)
    r = rec[0]
    r["inflation_response"] = b.inflation_response
    r["activity_response"] = b.activity_response
    r["fx_response"] = b.fx_response
    r["logfx_reference"] = math.log(b.fx_reference)
    r["smoothing"] = b.smoothing
    r["decision_noise"] = b.decision_noise
    r["threshold_25"] = b.threshold_25
    r["threshold_50"] = b.threshold_50
    r["max_move"] = b.max_move
    r["min_spacing"] = b.min_spacing_months / 12.0 - 0.5 / BUSINESS_DAYS_PER_YEAR
    r["spacing_penalty"] = b.spacing_penalty
    r["lower_bound"] = b.lower_bound
    r["pause_in_stress"] = bool(b.pause_in_stress)
    return rec


def evaluation_timing(a):
    """Where in a sub-step a class's target is read, as a share of the sub-step: the centre of
    mass of the weights e^(s/tau) with which the level at time s of the sub-step enters the
    class's exit share after it (dq/dt = (target - q) / tau, the level moving linearly over the
    sub-step), 1 / (1 - e^-a) - 1 / a for a = sub-step / tau.  1/2 for a slow class, towards 1
    for one that adjusts within the sub-step (docs/model.md, section 8)."""
    a = np.asarray(a, dtype=float)
    small = a < 1e-4
    safe = np.where(small, 1.0, a)
    return np.where(small, 0.5 + a / 12.0, 1.0 / -np.expm1(-safe) - 1.0 / safe)


def ewma_weight(years, halflife_weeks):
    """Weight left on the old realised variance after ``years`` with an EWMA half-life of
    ``halflife_weeks``."""
    return 0.5 ** (years * BUSINESS_DAYS_PER_YEAR / 5.0 / halflife_weeks)


def _substeps(cfg: Config, steps: np.ndarray) -> np.ndarray:
    """SUBSTEP records of the investors' clock (each step's ``subs``, set by ``_schedule``);
    sets each step's ``first_sub``.

    With ``model.feedback.clock=daily`` a step of k business days holds k sub-steps of equal
    length (a daily grid one each), so investors trade once a business day whatever the output
    grid; with ``step`` every step is one sub-step (docs/model.md, section 8.1).
    """
    m = cfg.model
    subs = steps["subs"]
    first = np.concatenate([[0], np.cumsum(subs)[:-1]])
    steps["first_sub"] = first
    owner = np.repeat(np.arange(len(steps)), subs)
    n = subs[owner]
    left = first[owner] + n - 1 - np.arange(subs.sum())   # sub-steps left after this one
    dt = steps["dt"][owner] / n
    sub = _records(L.SUBSTEP, int(subs.sum()))
    sub["dt"] = dt
    sub["weeks"] = steps["weeks"][owner] / n
    sub["since_check"] = steps["since_check"][owner] - left * dt
    sub["ewma"] = ewma_weight(sub["since_check"], m.fx.vol_halflife_weeks)
    sub["decay"] = 0.5 ** (sub["weeks"] / m.impact.transient_halflife_weeks)
    return sub


def _classes(cfg: Config, investors: list[str], substeps: np.ndarray):
    """CLASS records and CLASS_STEP records (sub-steps x classes) of the enabled classes."""
    weeks, dt = substeps["weeks"], substeps["dt"]
    classes = _records(L.CLASS, len(investors))
    class_steps = _records(L.CLASS_STEP, (len(weeks), len(investors)))
    for i, name in enumerate(investors):
        c = cfg.investors[name]
        r = classes[i:i + 1]
        r["signal"] = L.SIGNAL_KINDS.index(c.signal)
        if c.signal == "allocation_drift":
            r["threshold_mean"] = c.threshold_mean
        else:
            r["threshold_distance"] = c.threshold_distance
        r["spot_footprint"] = c.spot_footprint
        r["threshold_width"] = c.threshold_width
        r["reentry_gap"] = c.reentry_gap
        r["hedge_share"] = c.hedge_share
        r["hedge_ratio"] = c.hedge_ratio
        r["max_hedge_ratio"] = c.max_hedge_ratio
        r["bond_share"] = c.bond_share
        r["carry"] = bool(c.carry)
        r["foreign_weight"] = c.foreign_weight
        r["target_weight"] = c.target_weight
        class_steps["speed"][:, i] = 1.0 - np.exp(-weeks / c.adjustment_weeks)
        class_steps["rebuild_speed"][:, i] = 1.0 - np.exp(-weeks / rebuild_time(c))
        class_steps["basis_speed"][:, i] = 1.0 - np.exp(-weeks / c.basis_weeks)
        timing = evaluation_timing(weeks / c.adjustment_weeks)
        since_at = substeps["since_check"] - (1.0 - timing) * dt
        class_steps["timing"][:, i] = timing
        class_steps["since_at"][:, i] = since_at
        class_steps["ewma_at"][:, i] = ewma_weight(since_at, cfg.model.fx.vol_halflife_weeks)
    return classes, class_steps


def build_inputs(cfg: Config) -> Inputs:
    """Validate ``cfg`` and resolve it into the kernel's records and the run's plan."""
    validate(cfg)
    snap, m, smp = cfg.snapshot, cfg.model, cfg.sampler
    start = parse_date(snap.date, "snapshot.date")
    dates = time_grid(start, smp.horizon_months, smp.step)
    if len(dates) < 2:
        raise ConfigError("sampler.horizon_months", smp.horizon_months,
                          f"a horizon that spans at least one {smp.step} step")
    steps, meetings = _schedule(cfg, dates)
    investors = [name for name, c in cfg.investors.items() if c.enabled]
    substeps = _substeps(cfg, steps)
    classes, class_steps = _classes(cfg, investors, substeps)
    (chol_calm, chol_stress), notes = correlation_factors(cfg)
    model = L.Model(glob=_global(cfg, start), boj=_bank(m.policy.boj), fed=_bank(m.policy.fed),
                    steps=steps, boj_meetings=meetings["boj"], fed_meetings=meetings["fed"],
                    chol_calm=chol_calm, chol_stress=chol_stress, classes=classes,
                    substeps=substeps, class_steps=class_steps)
    pol, imp = m.policy, m.impact
    # neutral_from=snapshot: the policy rate at the snapshot is the bank's neutral rate, with
    # the prior's spread around it (the prior's draws shifted by rate - neutral).
    shift = {bank: (getattr(snap, f"{bank}_rate") - getattr(pol, bank).neutral
                    if getattr(pol, bank).neutral_from == "snapshot" else 0.0)
             for bank in ("boj", "fed")}
    priors = {"neutral_boj": Prior("policy.boj.neutral", pol.boj.neutral_prior, pol.boj.neutral,
                                   shift["boj"]),
              "neutral_fed": Prior("policy.fed.neutral", pol.fed.neutral_prior, pol.fed.neutral,
                                   shift["fed"]),
              "impact": Prior("impact.price_impact", imp.price_impact_prior, imp.price_impact)}
    class_priors = []
    for name in investors:
        c = cfg.investors[name]
        class_priors.append({
            "holdings": Prior(f"investors.{name}.holdings", c.holdings_prior, c.holdings,
                              scale=snap.carry_positions if c.carry else 1.0),
            "repatriation": Prior(f"investors.{name}.repatriation_share", c.repatriation_prior,
                                  c.repatriation_share)})
    return Inputs(cfg=cfg, model=model, dates=dates, investors=investors,
                  labels=[cfg.investors[n].label or n for n in investors], plan=_plan(cfg),
                  uncertain=m.parameter_uncertainty, priors=priors, class_priors=class_priors,
                  notes=notes)


#: The diffusion's volatility at the snapshot is at least this share of the snapshot's realised
#: volatility, however much of it the spread and the crash jumps would explain.
MIN_DIFFUSION_SHARE = 1.0 / 3.0


def spread_variance_rate(cfg: Config) -> tuple[float, float]:
    """What the 10y spread adds to the variance per year of log USD/JPY in calm markets through
    the spread elasticity eta: (eta^2 Var(dS), eta Cov(dS, e_fx)) with dS = d tp_u - d tp_j the
    two term premia's shocks (policy moves, rare within a week, are left out).  The first is
    added as it is; the second is the covariance with the diffusion per unit of its volatility."""
    ylds, fx = cfg.model.yields, cfg.model.fx
    su, sj = ylds.ust_term_premium.vol, ylds.jgb_term_premium.vol
    c = np.asarray(cfg.model.correlation.calm, dtype=float)   # jgb_tp 4, ust_tp 5, usdjpy 6
    eta = fx.spread_elasticity / 100.0
    var = eta ** 2 * max(su * su + sj * sj - 2.0 * c[4, 5] * su * sj, 0.0)
    return var, eta * (c[5, 6] * su - c[4, 6] * sj)


def start_logvol(var0, other_var, cross: float = 0.0):
    """Log diffusion volatility s at the snapshot: the root of s^2 + 2 cross s + other_var =
    ``var0``, the snapshot's realised variance, so that the model's total variance rate (the
    diffusion, the other sources ``other_var`` -- the spread, the crash jumps at the path's
    positioning -- and the spread's covariance ``cross`` with the diffusion) starts where the
    data's realised volatility is, not above it; floored at :data:`MIN_DIFFUSION_SHARE` of the
    realised vol (docs/model.md, 6.1.1)."""
    var0 = np.asarray(var0, dtype=float)
    disc = cross * cross + var0 - other_var
    # No non-negative root (the other sources alone exceed the realised variance): the floor.
    s = np.where(disc >= 0.0, -cross + np.sqrt(np.maximum(disc, 0.0)), 0.0)
    return np.log(np.maximum(s, MIN_DIFFUSION_SHARE * np.sqrt(var0)))


def crash_intensity(g, crowd):
    """Crashes a year at carry positions ``crowd`` (USD bn, any array shape), with the global
    record ``g``'s parameters (docs/model.md 6.2; the kernel's ``crash_hazard`` in numba)."""
    return g["crash_intensity"] * np.exp(g["crash_crowding"] * (crowd / g["crowding_reference"] - 1.0))


def path_parameters(inputs: Inputs, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-path parameter draws for global paths [start, stop): PATH_PARAM records and
    CLASS_PARAM records (paths x classes)."""
    paths = np.arange(start, stop, dtype=np.int64)
    seed = inputs.plan.seed

    def draw(p: Prior) -> np.ndarray:
        return p.shift + p.scale * draw_prior(p.prior, p.central,
                                              parameter_uniforms(seed, p.name, paths), inputs.uncertain)

    par = _records(L.PATH_PARAM, len(paths))
    par["neutral_boj"] = draw(inputs.priors["neutral_boj"])
    par["neutral_fed"] = draw(inputs.priors["neutral_fed"])
    par["impact"] = np.maximum(draw(inputs.priors["impact"]), 0.0) / 100.0
    cpar = _records(L.CLASS_PARAM, (len(paths), len(inputs.investors)))
    for i, priors in enumerate(inputs.class_priors):
        cpar["holdings"][:, i] = np.maximum(draw(priors["holdings"]), 0.0)
        cpar["repatriation"][:, i] = np.clip(draw(priors["repatriation"]), 0.0, 1.0)
    cfg, g = inputs.cfg, inputs.model.glob[0]   # the kernel's crash parameters (scale applied)
    carry = np.array([cfg.investors[n].carry for n in inputs.investors], dtype=bool)
    crowd = cpar["holdings"][:, carry].sum(axis=1)
    jump_var = crash_intensity(g, crowd) * 2.0 * g["crash_mean_size"] ** 2     # E[J^2] of an exponential jump
    spread_var, cross = spread_variance_rate(cfg)
    par["logvol0"] = start_logvol((cfg.snapshot.fx_vol / 100.0) ** 2, spread_var + jump_var, cross)
    return par, cpar
