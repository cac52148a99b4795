"""Config to arrays: everything the kernel needs that does not depend on the path.

:func:`build_inputs` turns a validated :class:`sim.config.Config` into the packed arrays of
:mod:`sim.kernels` (their layouts are the constants defined there).  Per-path parameter draws
live in :mod:`sim.rng`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim import kernels as K
from sim.calendar import (BUSINESS_DAYS_PER_YEAR, meeting_dates, meeting_steps,
                          parse_date, step_lengths, step_of, time_grid)
from sim.config import SIGNALS, Config
from sim.validate import ConfigError, as_matrix, check_correlation

#: Event kinds that add to a column of the schedule, with that column.
EVENT_COLUMNS = {
    "fx_shock": K.S_EV_FX, "jgb_term_premium": K.S_EV_TPJ, "ust_term_premium": K.S_EV_TPU,
    "jp_inflation": K.S_EV_JPI, "jp_activity": K.S_EV_JPA, "us_inflation": K.S_EV_USI,
    "us_activity": K.S_EV_USA, "intervention": K.S_EV_INT, "stress": K.S_EV_STRESS,
}
#: Decision events: (first schedule column of the bank, override kind).
DECISION_EVENTS = {
    "boj_decision": (K.S_BOJ_MEET, K.OVERRIDE_SCRIPTED),
    "fed_decision": (K.S_FED_MEET, K.OVERRIDE_SCRIPTED),
    "boj_probability": (K.S_BOJ_MEET, K.OVERRIDE_PROBABILITY),
    "fed_probability": (K.S_FED_MEET, K.OVERRIDE_PROBABILITY),
}


@dataclass
class Inputs:
    """Path-independent kernel inputs plus the labels the results need."""

    dates: np.ndarray          # datetime64[D], n_steps + 1 grid points
    gp: np.ndarray             # global parameters
    sched: np.ndarray          # n_steps x N_SCHED
    chol: np.ndarray           # 2 x 7 x 7: Cholesky factors, calm then stress
    cls_par: np.ndarray        # classes x N_CLS_PAR
    cls_step: np.ndarray       # n_steps x classes x 2
    investors: list[str]       # enabled classes, in kernel order
    notes: list[str]           # messages for the user (e.g. a repaired correlation matrix)

    @property
    def shared(self):
        return (self.gp, self.sched, self.chol, self.cls_par, self.cls_step)


def nearest_correlation(arr: np.ndarray) -> np.ndarray:
    """Clip negative eigenvalues and rescale to a unit diagonal (a PSD correlation matrix)."""
    sym = 0.5 * (arr + arr.T)
    vals, vecs = np.linalg.eigh(sym)
    fixed = (vecs * np.maximum(vals, 1e-8)) @ vecs.T
    d = np.sqrt(np.diag(fixed))
    out = fixed / np.outer(d, d)
    np.fill_diagonal(out, 1.0)
    return out


def correlation_factors(cfg: Config) -> tuple[np.ndarray, list[str]]:
    """Cholesky factors of the calm and stress correlation matrices (stress defaults to calm)."""
    corr = cfg.model.correlation
    notes = []
    factors = []
    for regime, matrix in (("calm", corr.calm), ("stress", corr.stress or corr.calm)):
        key = f"model.correlation.{regime}"
        arr = as_matrix(key, matrix)
        if corr.repair and arr.shape == (K.N_FACTORS, K.N_FACTORS) and np.all(np.isfinite(arr)):
            fixed = nearest_correlation(arr)
            change = float(np.abs(fixed - arr).max())
            if change > 1e-12:
                notes.append(f"{key} repaired to the nearest valid correlation matrix "
                             f"(largest entry change {change:.4f})")
            arr = fixed
        arr = check_correlation(key, arr)
        factors.append(np.linalg.cholesky(arr + 1e-14 * np.eye(len(arr))))
    return np.ascontiguousarray(np.stack(factors)), notes


def _ou_coefficients(speed: float, vol: float, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact OU transition over ``dt``: x' = mean + (x - mean) a + s eps."""
    if speed > 0:
        a = np.exp(-speed * dt)
        s = vol * np.sqrt((1.0 - a * a) / (2.0 * speed))
    else:
        a = np.ones_like(dt)
        s = vol * np.sqrt(dt)
    return a, s


def _years(later: np.datetime64, earlier: np.datetime64) -> float:
    return float(np.busday_count(earlier, later)) / BUSINESS_DAYS_PER_YEAR


def build_inputs(cfg: Config) -> Inputs:
    snap, m, smp = cfg.snapshot, cfg.model, cfg.sampler
    start = parse_date(snap.date, "snapshot.date")
    dates = time_grid(start, smp.horizon_months, smp.step)
    if len(dates) < 2:
        raise ConfigError("sampler.horizon_months", smp.horizon_months,
                          f"a horizon that spans at least one {smp.step} step")
    end = dates[-1]
    dt = step_lengths(dates)
    weeks = dt * BUSINESS_DAYS_PER_YEAR / 5.0
    n_steps = len(dt)

    sched = np.zeros((n_steps, K.N_SCHED))
    sched[:, K.S_DT] = dt
    sched[:, K.S_SQDT] = np.sqrt(dt)
    sched[:, K.S_WEEKS] = weeks
    sched[:, K.S_EWMA] = 0.5 ** (weeks / m.fx.vol_halflife_weeks)
    sched[:, K.S_DECAY] = 0.5 ** (weeks / m.impact.transient_halflife_weeks)
    sched[:, K.S_P_FISCAL] = 1.0 - np.exp(-m.yields.fiscal_jump_intensity * dt)
    sched[:, K.S_P_CALM2STRESS] = 1.0 - np.exp(-m.fx.calm_to_stress * dt)
    sched[:, K.S_P_STRESS2CALM] = 1.0 - np.exp(-m.fx.stress_to_calm * dt)
    sched[:, K.S_P_INTERV] = 1.0 - (1.0 - m.intervention.probability) ** weeks
    processes = (m.macro.jp_inflation, m.macro.jp_activity, m.macro.us_inflation,
                 m.macro.us_activity, m.yields.jgb_term_premium, m.yields.ust_term_premium)
    for k, ou in enumerate(processes):
        sched[:, K.S_A0 + k], sched[:, K.S_S0 + k] = _ou_coefficients(ou.speed, ou.vol, dt)

    for col, known, key in ((K.S_BOJ_MEET, snap.boj_meetings, "snapshot.boj_meetings"),
                            (K.S_FED_MEET, snap.fed_meetings, "snapshot.fed_meetings")):
        sched[:, col] = meeting_steps(dates, meeting_dates(list(known), start, end, key))

    for i, ev in enumerate(cfg.scenario.events):
        key = f"scenario.events[{i}]"
        t = step_of(dates, parse_date(ev.date, f"{key}.date"))
        if t < 0:
            raise ConfigError(f"{key}.date", ev.date,
                              f"a date after the snapshot ({start}) and no later than the horizon ({end})")
        if ev.kind in DECISION_EVENTS:
            col, kind = DECISION_EVENTS[ev.kind]
            sched[t, col] = 1.0  # a scripted decision off the calendar is an unscheduled meeting
            sched[t, col + 1] = kind
            sched[t, col + 2] = ev.value
            sched[t, col + 3] = ev.probability
        elif ev.kind == "stress":
            sched[t, K.S_EV_STRESS] = 1.0
        else:
            sched[t, EVENT_COLUMNS[ev.kind]] += ev.value

    gp = np.zeros(K.N_GLOBAL)
    mac = m.macro
    gp[K.G_MEAN_JPI], gp[K.G_MEAN_JPA] = mac.jp_inflation.mean, mac.jp_activity.mean
    gp[K.G_MEAN_USI], gp[K.G_MEAN_USA] = mac.us_inflation.mean, mac.us_activity.mean
    gp[K.G_MEAN_TPJ] = m.yields.jgb_term_premium.mean
    gp[K.G_MEAN_TPU] = m.yields.ust_term_premium.mean
    gp[K.G_INIT_JPI] = snap.jp_inflation - mac.inflation_target_jp
    gp[K.G_INIT_JPA] = snap.jp_activity_gap
    gp[K.G_INIT_USI] = snap.us_inflation - mac.inflation_target_us
    gp[K.G_INIT_USA] = snap.us_activity_gap
    gp[K.G_BOJ0], gp[K.G_FED0] = snap.boj_rate, snap.fed_rate
    gp[K.G_JGB0], gp[K.G_UST0] = snap.jgb10, snap.ust10
    gp[K.G_LOGFX0] = math.log(snap.usdjpy)
    gp[K.G_VAR0] = (snap.fx_vol / 100.0) ** 2
    gp[K.G_BOJ_SINCE0] = _years(start, parse_date(snap.boj_last_move, "snapshot.boj_last_move"))
    gp[K.G_FED_SINCE0] = _years(start, parse_date(snap.fed_last_move, "snapshot.fed_last_move"))
    gp[K.G_DECISIONS] = float(m.policy.decisions)
    lam = m.yields.expectations_speed
    gp[K.G_EXP_FACTOR] = (1.0 - math.exp(-10.0 * lam)) / (10.0 * lam)
    gp[K.G_FISCAL_SIZE] = m.yields.fiscal_jump_size
    gp[K.G_BETA_UST] = m.yields.ust_tp_per_tn_sold
    gp[K.G_BETA_JGB] = m.yields.jgb_tp_per_tn_repatriated
    gp[K.G_ETA] = m.fx.spread_elasticity / 100.0
    gp[K.G_VOL_CALM] = m.fx.calm_vol / 100.0
    gp[K.G_VOL_STRESS] = m.fx.stress_vol / 100.0
    gp[K.G_STRESS_TRIGGER] = m.fx.stress_trigger / 100.0
    gp[K.G_CRASH_LAMBDA] = m.fx.crash_intensity
    gp[K.G_CRASH_GAMMA] = m.fx.crash_crowding
    gp[K.G_CRASH_SIZE] = m.fx.crash_mean_size / 100.0
    gp[K.G_CROWD_REF] = m.fx.crowding_reference
    gp[K.G_PERM_SHARE] = m.impact.permanent_share
    gp[K.G_IMPACT_LIMIT] = m.impact.linear_limit
    gp[K.G_INT_ON] = float(m.intervention.enabled)
    gp[K.G_INT_LOGLEVEL] = math.log(m.intervention.level) if m.intervention.level > 0 else -np.inf
    gp[K.G_INT_SIZE] = m.intervention.size
    gp[K.G_INT_SPACING] = m.intervention.min_spacing_weeks * 5.0 / BUSINESS_DAYS_PER_YEAR - 1e-9
    gp[K.G_MAX_ITER] = m.feedback.max_iter
    gp[K.G_TOL] = m.feedback.tol
    gp[K.G_LARGE_WEEKLY] = cfg.output.large_unwind_weekly
    for bank, b in enumerate((m.policy.boj, m.policy.fed)):
        o = K.G_BANK + bank * K.N_BANK
        gp[o + K.B_PHI_PI] = b.inflation_response
        gp[o + K.B_PHI_Y] = b.activity_response
        gp[o + K.B_PHI_FX] = b.fx_response
        gp[o + K.B_LOGFX_REF] = math.log(b.fx_reference)
        gp[o + K.B_RHO] = b.smoothing
        gp[o + K.B_NOISE] = b.decision_noise
        gp[o + K.B_C25] = b.threshold_25
        gp[o + K.B_C50] = b.threshold_50
        gp[o + K.B_MAXMOVE] = b.max_move
        gp[o + K.B_SPACING] = b.min_spacing_months / 12.0 - 0.5 / BUSINESS_DAYS_PER_YEAR
        gp[o + K.B_LB] = b.lower_bound
        gp[o + K.B_PAUSE] = float(b.pause_in_stress)

    investors = [name for name, c in cfg.investors.items() if c.enabled]
    cls_par = np.zeros((len(investors), K.N_CLS_PAR))
    cls_step = np.zeros((n_steps, len(investors), 2))
    for i, name in enumerate(investors):
        c = cfg.investors[name]
        cls_par[i, K.C_SIGNAL] = SIGNALS.index(c.signal)
        cls_par[i, K.C_MU] = c.threshold_mean
        cls_par[i, K.C_WIDTH] = c.threshold_width
        cls_par[i, K.C_REENTRY] = c.reentry_gap
        cls_par[i, K.C_HEDGE_SHARE] = c.hedge_share
        cls_par[i, K.C_HEDGE0] = c.hedge_ratio
        cls_par[i, K.C_HEDGE_MAX] = c.max_hedge_ratio
        cls_par[i, K.C_BOND] = c.bond_share
        cls_par[i, K.C_CARRY] = float(c.carry)
        cls_par[i, K.C_W0] = c.foreign_weight
        cls_par[i, K.C_WT] = c.target_weight
        cls_step[:, i, K.CS_SPEED] = 1.0 - np.exp(-weeks / c.adjustment_weeks)
        cls_step[:, i, K.CS_BASIS] = 1.0 - np.exp(-weeks / c.basis_weeks)

    chol, notes = correlation_factors(cfg)
    return Inputs(dates=dates, gp=gp, sched=np.ascontiguousarray(sched), chol=chol,
                  cls_par=np.ascontiguousarray(cls_par), cls_step=np.ascontiguousarray(cls_step),
                  investors=investors, notes=notes)
