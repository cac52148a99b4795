"""A vectorised-numpy reference of the model in :func:`sim.kernels.simulate_path`.

For tests and benchmarks only; runs go through the numba kernel.  It loops over time steps
in Python and treats all paths of a step at once, reading the same input records as the kernel
(:mod:`sim.layout`) and pre-drawn DRAWS records from :func:`shocks` (the draws the kernel
makes, in its order), and writes the kernel's output records.  Arithmetic follows the kernel's
order of operations, so the two agree to rounding of the transcendental functions and to the
solver tolerance.  A path whose state becomes non-finite gets its failing step in
``fail_step``; its other outputs are then meaningless (the kernel stops such a path instead).
"""
from __future__ import annotations

import numpy as np

from sim import kernels as K
from sim import layout as L
from sim.inputs import Inputs, crash_intensity
from sim.rng import block_seeds


def shocks(seed: int, block_size: int, n_paths: int, n_steps: int) -> np.ndarray:
    """The kernel's draws for paths [0, n_paths): DRAWS records (paths, steps)."""
    seeds = block_seeds(seed, 0, -(-n_paths // block_size))
    out = np.empty((n_paths, n_steps), L.DRAWS)
    K.draw_shocks(seeds, block_size, n_paths, out)
    return out


def norm_cdf_pdf(x):
    """:func:`sim.kernels.norm_cdf_pdf` elementwise: the same table, the same arithmetic."""
    x = np.asarray(x, dtype=float)
    u = (x + K.CDF_LIMIT) * (1.0 / K.CDF_STEP)
    with np.errstate(invalid="ignore"):
        i = np.clip(np.nan_to_num(u), 0, K.CDF_TABLE.shape[0] - 1).astype(np.int64)
    t = u - i
    c = K.CDF_TABLE[i].T
    cdf = ((((c[5] * t + c[4]) * t + c[3]) * t + c[2]) * t + c[1]) * t + c[0]
    slope = (((5.0 * c[5] * t + 4.0 * c[4]) * t + 3.0 * c[3]) * t + 2.0 * c[2]) * t + c[1]
    slope = slope * (1.0 / K.CDF_STEP)
    upper, lower = x >= K.CDF_LIMIT, x <= -K.CDF_LIMIT
    cdf = np.where(upper, 1.0, np.where(lower, 0.0, cdf))
    slope = np.where(upper | lower, 0.0, slope)
    return cdf, slope


def norm_cdf(x):
    return norm_cdf_pdf(x)[0]


def price_impact(flow, k, limit):
    size = np.abs(flow)
    with np.errstate(divide="ignore", invalid="ignore"):
        big = np.copysign(k * limit * np.sqrt(size / limit), flow)
    return np.where(size <= limit, k * flow, big)


def private_impact(flow, k, limit, weeks):
    return weeks * price_impact(flow / weeks, k, limit)


def official_impact(flow, k, limit, announcement):
    out = price_impact(flow, k, limit) + np.copysign(announcement, flow)
    return np.where(flow == 0.0, 0.0, out)


def crash_hazard(g, classes, hold, dt, hazard, u):
    """sim.kernels.crash_hazard for every path: (compensator, cumulative hazard, crash here)."""
    crowd = np.zeros(hold.shape[0])
    for c, cls in enumerate(classes):
        if cls["carry"]:
            crowd = crowd + hold[:, c]
    h = crash_intensity(g, crowd) * dt
    hazard = hazard + h
    return (1.0 - np.exp(-h)) * g["crash_mean_size"], hazard, u < 1.0 - np.exp(-hazard)


def crossed_share(m, mu, width, phi0, rebuild):
    """The crossed share and its derivative in the signal m."""
    z = (m - mu) / width
    cdf, pdf = norm_cdf_pdf(z)
    share = (cdf - phi0) / (1.0 - phi0)
    slope = pdf / (width * (1.0 - phi0))
    if rebuild:
        return share, slope
    keep = share > 0.0  # NaN -> 0, as in the kernel
    return np.where(keep, share, 0.0), np.where(keep, slope, 0.0)


def hedge_ratio(cls, q):
    if cls["hedge_share"] > 0.0:
        return cls["hedge_ratio"] + (cls["max_hedge_ratio"] - cls["hedge_ratio"]) * np.clip(q, 0.0, 1.0)
    return np.full_like(q, cls["hedge_ratio"])


def signal(cls, x, basis, rates, vol_pct):
    """Signal of the class with CLASS record ``cls``; ``rates`` has boj, fed, jgb, ust."""
    kind = cls["signal"]
    if kind == K.CARRY_TO_RISK:
        return -(rates["fed"] - rates["boj"]) / np.maximum(vol_pct, 0.5)
    if kind == K.DRAWDOWN:
        return 100.0 * (basis - x)
    if kind == K.HEDGED_PICKUP:
        return -(rates["ust"] - rates["jgb"] - cls["hedge_ratio"] * (rates["fed"] - rates["boj"]))
    return rates["jgb"]  # yield_level


def signal_slope(cls, rates, vol_pct, dvol):
    kind = cls["signal"]
    if kind == K.CARRY_TO_RISK:
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = (rates["fed"] - rates["boj"]) * dvol / (vol_pct * vol_pct)
        return np.where(vol_pct > 0.5, slope, 0.0)
    if kind == K.DRAWDOWN:
        return np.full_like(vol_pct, -100.0)
    return np.zeros_like(vol_pct)


def ewma_variance(var, ewma, r, dt):
    """:func:`sim.kernels._ewma_variance` on arrays."""
    return ewma * var + (1.0 - ewma) * r * r / dt


def investor_targets(g, s, classes, speeds):
    """Candidate exit shares (paths x classes), yen bought, variance at levels ``g`` and the
    derivative of the yen bought in g.

    ``s`` holds the step's state: arrays with one row per path of ``g``, and scalars.
    """
    var = ewma_variance(s["var"], s["ewma"], g - s["x"], s["dt"])
    q, cpp = s["q"], s["cpp"]
    qn = np.empty_like(q)
    buying = np.zeros_like(g)
    slope = np.zeros_like(g)
    for c, cls in enumerate(classes):
        width = cls["threshold_width"]
        qc = q[:, c]
        timing = speeds[c]["timing"]
        xc = s["x_start"] + timing * (g - s["x_start"])
        if cls["signal"] == K.ALLOCATION:
            w0, wt = cls["foreign_weight"], cls["target_weight"]
            ratio = np.exp(xc - s["logfx0"])
            wealth = 1.0 - w0 + w0 * ratio
            drift = 100.0 * (w0 * (1.0 - qc) * ratio / wealth - wt)
            pos_target = wt * wealth / (w0 * ratio)
            za = (np.abs(drift) - cls["threshold_mean"]) / width
            act, density = norm_cdf_pdf(za)
            target = qc + act * ((1.0 - pos_target) - qc)
            d_drift = 100.0 * w0 * (1.0 - qc) * ratio * (1.0 - w0) / (wealth * wealth)
            d_act = np.copysign(density / width, drift) * d_drift
            d_target = timing * (d_act * ((1.0 - pos_target) - qc)
                                 + act * wt * (1.0 - w0) / (w0 * ratio))
        else:
            ewma_at, since_at = speeds[c]["ewma_at"], speeds[c]["since_at"]
            rc = xc - s["x"]
            var_c = ewma_variance(s["var"], ewma_at, rc, since_at)
            vol_pct = 100.0 * np.sqrt(var_c)
            with np.errstate(divide="ignore", invalid="ignore"):
                dvol = np.where(var_c > 0.0, 100.0 * (1.0 - ewma_at) * rc
                                / (since_at * np.sqrt(var_c)), 0.0)
            m = signal(cls, xc, s["basis"][:, c], s, vol_pct)
            dm = timing * signal_slope(cls, s, vol_pct, dvol)
            phi0, mu, rebuild = s["phi0"][c], s["mu"][c], cls["carry"]
            lower, d_lower = crossed_share(m, mu, width, phi0, rebuild)
            upper, d_upper = crossed_share(m + cls["reentry_gap"], mu, width, phi0, rebuild)
            target = np.where(qc < lower, lower, np.where(qc > upper, upper, qc))
            d_target = np.where(qc < lower, d_lower * dm, np.where(qc > upper, d_upper * dm, 0.0))
        speed = np.where(target >= qc, speeds[c]["speed"], speeds[c]["rebuild_speed"])
        qn[:, c] = qc + speed * (target - qc)
        d_qn = speed * d_target
        sold = cpp["holdings"][:, c] * (1.0 - cls["hedge_share"]) * (qn[:, c] - qc)
        d_sold = cpp["holdings"][:, c] * (1.0 - cls["hedge_share"]) * d_qn
        hedge_old = s["hedge"][:, c]
        hedge_new = hedge_ratio(cls, qn[:, c])
        if cls["hedge_share"] > 0.0:
            inside = (qn[:, c] > 0.0) & (qn[:, c] < 1.0)
            d_hedge = np.where(inside, (cls["max_hedge_ratio"] - cls["hedge_ratio"]) * d_qn, 0.0)
        else:
            d_hedge = 0.0
        rep = cpp["repatriation"][:, c]
        buying += cls["spot_footprint"] * (sold * (1.0 - hedge_old) * rep
                                           + (s["hold"][:, c] - sold) * (hedge_new - hedge_old))
        slope += cls["spot_footprint"] * (d_sold * (1.0 - hedge_old) * rep
                                          - d_sold * (hedge_new - hedge_old)
                                          + (s["hold"][:, c] - sold) * d_hedge)
    return qn, buying, var, slope


def private_impact_slope(flow, k, limit, weeks):
    size = np.abs(flow / weeks)
    with np.errstate(divide="ignore", invalid="ignore"):
        big = 0.5 * k / np.sqrt(size / limit)
    return np.where(size <= limit, k, big)


#: Residual evaluations and solves (path-sub-steps) of :func:`solve_step` since the last reset;
#: the benchmark reads them for its evaluations per solve.
EVALUATIONS = np.zeros(2, dtype=np.int64)


def solve_step(paths, step, classes, speeds, max_iter, tol):
    """:func:`sim.kernels.solve_step` for all paths at once; returns (level, converged, qn,
    buying, var), the last four being the investors' response at the returned level.

    ``paths`` holds the sub-step's per-path arrays, ``step`` its scalars.  Every unfinished path
    takes one evaluation per round: safeguarded Newton steps (plain iteration g <- g + h where
    sim.kernels.unbracketed_newton says so) until two iterates straddle a root, then
    Newton steps inside the bracket with Illinois regula falsi as the fallback.  The returned
    level is always the path's last evaluation, so its response is the one stored.
    """
    limit = step["limit"]

    def residual(g, idx):
        s = {k: v[idx] for k, v in paths.items()} | step
        qn, buying, var, slope = investor_targets(g, s, classes, speeds)
        h = s["xoff"] - private_impact(buying, s["impact"], limit, s["weeks"]) - g
        dh = -private_impact_slope(buying, s["impact"], limit, s["weeks"]) * slope - 1.0
        return h, qn, buying, var, dh

    level = paths["xoff"].copy()
    h, qn, buying, var, dh = residual(level, slice(None))
    EVALUATIONS[:] += level.size
    g = level.copy()
    a, fa, b, fb = (np.zeros_like(g) for _ in range(4))
    bracketed = np.zeros(g.shape, dtype=bool)
    plain = np.zeros(g.shape, dtype=bool)
    was_newton = np.zeros(g.shape, dtype=bool)
    linear = np.zeros(g.shape, dtype=bool)
    converged = np.abs(h) <= tol
    active = ~converged & (1 < max_iter)
    n = 1
    while active.any():
        idx = slice(None) if active.all() else np.flatnonzero(active)
        br, pl = bracketed[idx], plain[idx]
        ai, fai, bi, fbi, gi, hi, dhi = a[idx], fa[idx], b[idx], fb[idx], g[idx], h[idx], dh[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            # sim.kernels.unbracketed_newton, path by path
            short = (dhi < 0.0) & (np.abs(hi) <= -K.NEWTON_SHORT * dhi)
            use_newton = np.where(pl, short & linear[idx] & ~was_newton[idx],
                                  (dhi < -1.0 / K.NEWTON_REACH) | short)
            free = np.where(use_newton, gi - hi / dhi, gi + hi)
            lo, up = np.minimum(ai, bi), np.maximum(ai, bi)
            newton = np.where(dhi != 0.0, bi - fbi / dhi, lo)
            falsi = bi - fbi * (bi - ai) / (fbi - fai)
        inside = np.where(pl | ~((lo < newton) & (newton < up)), falsi, newton)
        trial = np.where(br, inside, free)
        f, qn[idx], buying[idx], var[idx], df = residual(trial, idx)
        EVALUATIONS[0] += trial.size
        level[idx] = trial
        n += 1
        small = np.abs(f) <= tol
        # Free steps: a sign change away from the root starts the bracketing phase.
        cross = ~br & ((f > 0.0) != (hi > 0.0)) & ~small
        flip = (f > 0.0) != (fbi > 0.0)
        plain[idx] = ~(np.abs(f) <= 0.5 * np.abs(np.where(br, fbi, hi)))
        was_newton[idx] = ~br & use_newton
        with np.errstate(divide="ignore", invalid="ignore"):
            sec = (f - hi) / (trial - gi)
        lin = ((trial != gi) & (np.abs(sec - dhi) <= K.LINEAR_SLOPE * np.abs(dhi))
               & (np.abs(sec - df) <= K.LINEAR_SLOPE * np.abs(df)))
        linear[idx] = ~br & lin
        a[idx] = np.where(cross, gi, np.where(br & flip, bi, ai))
        fa[idx] = np.where(cross, hi, np.where(br, np.where(flip, fbi, 0.5 * fai), fai))
        b[idx] = np.where(cross | br, trial, bi)
        fb[idx] = np.where(cross | br, f, fbi)
        g[idx], h[idx], dh[idx] = trial, f, df
        bracketed[idx] = br | cross
        done = small | (br & (np.abs(bi - ai) <= tol))
        converged[idx] = done
        active[idx] = ~done & (n < max_iter)
    return level, converged, qn, buying, var


def meeting_sub(meeting) -> int:
    """kernels.meeting_sub: the sub-step from which a step's meeting decision holds."""
    return int(meeting["sub"]) if meeting["meets"] else 0


def rates_within(prev: dict, new: dict, j: int, n_sub: int, boj_from: int, fed_from: int) -> dict:
    """kernels.rates_within: the rates investors read in sub-step ``j`` of a step."""
    w = (j + 1.0) / n_sub
    return dict(boj=new["boj"] if j >= boj_from else prev["boj"],
                fed=new["fed"] if j >= fed_from else prev["fed"],
                jgb=prev["jgb"] + w * (new["jgb"] - prev["jgb"]),
                ust=prev["ust"] + w * (new["ust"] - prev["ust"]))


def decide(bank, meeting, rules_on, seen):
    """:func:`sim.kernels._decide` for all paths; ``seen`` holds what the bank sees (arrays
    over paths: rate, neutral, inflation, activity, logfx, since, stress, shock).  Returns
    (new rates, moved)."""
    rate, shock = seen["rate"], seen["shock"]
    if meeting["override"] == K.SCRIPTED:
        move = np.full_like(rate, meeting["move"])
    elif meeting["override"] == K.PROBABILITY:
        move = np.where(norm_cdf(shock) < meeting["probability"], meeting["move"], 0.0)
    elif not rules_on:
        move = np.zeros_like(rate)
    else:
        desired = (seen["neutral"] + bank["inflation_response"] * seen["inflation"]
                   + bank["activity_response"] * seen["activity"]
                   + bank["fx_response"] * 100.0 * (seen["logfx"] - bank["logfx_reference"]))
        latent = bank["smoothing"] * (desired - rate) + bank["decision_noise"] * shock
        pressure = np.abs(latent) - bank["spacing_penalty"]
        latent = np.where(seen["since"] < bank["min_spacing"],
                          np.where(pressure > 0.0, np.copysign(pressure, latent), 0.0), latent)
        c25, c50 = bank["threshold_25"], bank["threshold_50"]
        move = np.select([latent > c50, latent > c25, latent < -c50, latent < -c25],
                         [0.5, 0.25, -0.5, -0.25], 0.0)
        cap = bank["max_move"]
        move = np.minimum(np.maximum(move, -cap), cap)
        if bank["pause_in_stress"]:
            move = np.where((move > 0.0) & seen["stress"], 0.0, move)
    new = np.maximum(rate + move, np.minimum(bank["lower_bound"], rate))
    return new, new != rate


def ou(x, mean, a, s, shock):
    return mean + (x - mean) * a + s * shock


def simulate(inputs: Inputs, params: np.ndarray, class_params: np.ndarray, draws: np.ndarray):
    """Simulate every path of ``draws`` (DRAWS records, paths x steps) with the drawn
    PATH_PARAM and CLASS_PARAM records; returns (PATH_OUT, CLASS_OUT, TIME_OUT) records as the
    kernel writes them."""
    mdl = inputs.model
    g, steps, classes = mdl.glob[0], mdl.steps, mdl.classes
    n, n_steps, n_cls = draws.shape[0], len(steps), len(classes)
    out_path = np.zeros(n, L.PATH_OUT)
    out_cls = np.zeros((n, n_cls), L.CLASS_OUT)
    out_time = np.empty((n, n_steps + 1), L.TIME_OUT)
    cpp = class_params

    def full(v):
        return np.full(n, float(v))

    jpi, jpa, usi, usa = (full(g[k]) for k in ("jp_inflation0", "jp_activity0", "us_inflation0",
                                               "us_activity0"))
    boj, fed = full(g["boj0"]), full(g["fed0"])
    rs_boj, rs_fed = params["neutral_boj"], params["neutral_fed"]
    expf = g["expectations_factor"]
    tpj = g["jgb0"] - (rs_boj + (boj - rs_boj) * expf)
    tpu = g["ust0"] - (rs_fed + (fed - rs_fed) * expf)
    mean_tpj = tpj.copy() if g["anchor_snapshot"] else g["mean_jgb_term_premium"]
    mean_tpu = tpu.copy() if g["anchor_snapshot"] else g["mean_ust_term_premium"]
    jgb, ust = full(g["jgb0"]), full(g["ust0"])
    spread = ust - jgb
    x = full(g["logfx0"])
    logfx0 = g["logfx0"]
    var = full(g["var0"])
    x_check, var_check = x.copy(), var.copy()
    logvol = params["logvol0"].astype(float)
    transient = np.zeros(n)
    since_boj, since_fed = full(g["boj_since0"]), full(g["fed_since0"])
    since_interv = full(g["intervention_spacing"])
    stress = np.zeros(n, dtype=bool)
    impact = params["impact"]
    perm = g["permanent_share"]
    pending_tpj, pending_tpu = np.zeros(n), np.zeros(n)
    # Initial signals are the same on every path, so each class has one phi0.
    vol0 = 100.0 * np.sqrt(g["var0"])
    x0 = g["logfx0"]
    rates0 = {"boj": g["boj0"], "fed": g["fed0"], "jgb": g["jgb0"], "ust": g["ust0"]}
    phi0, mu = np.zeros(n_cls), np.zeros(n_cls)
    for c, cls in enumerate(classes):
        if cls["signal"] != K.ALLOCATION:
            m0 = float(signal(cls, x0, x0, rates0, vol0))
            mu[c] = m0 + cls["threshold_distance"]
            # Mid-way in the hysteresis band: exits start half a re-entry gap above m0.
            edge = m0 + 0.5 * cls["reentry_gap"]
            phi0[c] = float(norm_cdf((edge - mu[c]) / cls["threshold_width"]))
    q = np.zeros((n, n_cls))
    hold = cpp["holdings"].copy()
    hold_low = hold.copy()
    hedge = np.tile(classes["hedge_ratio"], (n, 1))
    basis = np.full((n, n_cls), x0)
    cum_unwind, cum_repat, cum_hedge = np.zeros(n), np.zeros(n), np.zeros(n)
    peak_weekly, first_large = np.zeros(n), np.full(n, -1)
    xmax, largest_app, largest_week = x.copy(), np.zeros(n), np.zeros(n)
    abs_total, abs_exo = np.zeros(n), np.zeros(n)
    stress_steps, nonconv, crashes, interventions = (np.zeros(n, dtype=np.int64) for _ in range(4))
    fail_step = np.zeros(n, dtype=np.int64)

    def record(i):
        row = out_time[:, i]
        values = {"boj_rate": boj, "fed_rate": fed, "jgb10": jgb, "ust10": ust, "spread": spread,
                  "usdjpy": np.exp(x), "unwind": cum_unwind, "repatriation": cum_repat,
                  "stress": stress.astype(float), "fx_vol": 100.0 * np.sqrt(var),
                  "jp_inflation_gap": jpi, "jp_activity_gap": jpa, "us_inflation_gap": usi,
                  "us_activity_gap": usa}
        for name, v in values.items():
            row[name] = v

    record(0)
    for t in range(n_steps):
        sc = steps[t]
        dt = sc["dt"]
        z = draws[:, t]
        if sc["ev_stress"]:
            stress = np.ones(n, dtype=bool)
        factor = z["factor"]
        e = np.empty((n, L.N_FACTORS))
        for i in range(L.N_FACTORS):  # the kernel's summation order, calm or stress factor
            acc = np.zeros(n)
            for j in range(i + 1):
                acc = acc + np.where(stress, mdl.chol_stress[i, j], mdl.chol_calm[i, j]) * factor[:, j]
            e[:, i] = acc
        # The correlated factors, in the order of layout.OU_PROCESSES, then USD/JPY.
        e_jpi, e_jpa, e_usi, e_usa, e_tpj, e_tpu, e_fx = (e[:, i] for i in range(L.N_FACTORS))

        def ou_step(value, name, shock):
            return ou(value, g[f"mean_{name}"], sc[f"a_{name}"], sc[f"s_{name}"], shock)

        jpi = ou_step(jpi, "jp_inflation", e_jpi) + sc["ev_jp_inflation"]
        jpa = ou_step(jpa, "jp_activity", e_jpa) + sc["ev_jp_activity"]
        usi = ou_step(usi, "us_inflation", e_usi) + sc["ev_us_inflation"]
        usa = ou_step(usa, "us_activity", e_usa) + sc["ev_us_activity"]

        prev = dict(boj=boj, fed=fed, jgb=jgb, ust=ust)   # the rates at the step's start
        since_boj = since_boj + dt
        since_fed = since_fed + dt
        meeting = mdl.boj_meetings[t]
        if meeting["meets"]:
            seen = dict(rate=boj, neutral=rs_boj, inflation=jpi, activity=jpa, logfx=x,
                        since=since_boj - meeting["after"], stress=stress,
                        shock=z["boj_decision"])
            boj, moved = decide(mdl.boj[0], meeting, g["policy_rules"], seen)
            since_boj = np.where(moved, meeting["after"], since_boj)
        meeting = mdl.fed_meetings[t]
        if meeting["meets"]:
            seen = dict(rate=fed, neutral=rs_fed, inflation=usi, activity=usa, logfx=x,
                        since=since_fed - meeting["after"], stress=stress,
                        shock=z["fed_decision"])
            fed, moved = decide(mdl.fed[0], meeting, g["policy_rules"], seen)
            since_fed = np.where(moved, meeting["after"], since_fed)

        tpj = (ou(tpj, mean_tpj, sc["a_jgb_term_premium"], sc["s_jgb_term_premium"], e_tpj)
               + sc["ev_jgb_term_premium"] + pending_tpj)
        tpj = np.where(z["fiscal"] < sc["p_fiscal"], tpj + g["fiscal_jump_size"], tpj)
        tpu = (ou(tpu, mean_tpu, sc["a_ust_term_premium"], sc["s_ust_term_premium"], e_tpu)
               + sc["ev_ust_term_premium"] + pending_tpu)
        jgb = rs_boj + (boj - rs_boj) * expf + tpj
        ust = rs_fed + (fed - rs_fed) * expf + tpu
        new_spread = ust - jgb
        d_spread = new_spread - spread
        spread = new_spread

        vol = np.exp(logvol) * np.where(stress, g["stress_vol_multiplier"], 1.0)
        n_sub = int(sc["subs"])
        smooth = (g["eta"] * d_spread + vol * sc["sqrt_dt"] * e_fx) / n_sub
        scripted = np.log1p(sc["ev_fx_shock"] / 100.0)
        jump = g["crash_mean_size"] * -np.log(z["crash_size"])
        crash = np.zeros(n, dtype=bool)
        crash_sub = np.full(n, -1)
        hazard = np.zeros(n)
        logvol = ou(logvol, g["long_run_logvol"], sc["a_logvol"], sc["s_logvol"], z["vol_shock"])
        since_interv = since_interv + dt
        interv = (g["intervention_on"] & (x > g["intervention_loglevel"])
                  & (since_interv >= g["intervention_spacing"])
                  & (z["intervention"] < sc["p_intervention"]))
        external = np.where(interv, sc["ev_intervention"] + g["intervention_size"],
                            sc["ev_intervention"])
        interventions += interv
        since_interv = np.where(interv, 0.0, since_interv)
        limit = g["impact_limit"]
        k = impact * np.where(stress, g["impact_stress_multiplier"], 1.0)
        k_stress = impact * g["impact_stress_multiplier"]
        official = official_impact(external, k, limit, g["announcement"])

        x_sub = x.copy()
        boj_from = meeting_sub(mdl.boj_meetings[t])
        fed_from = meeting_sub(mdl.fed_meetings[t])
        dx_exo, dx_flows = np.zeros(n), np.zeros(n)
        converged = np.ones(n, dtype=bool)
        step_unwind, step_repat = np.zeros(n), np.zeros(n)
        bonds_sold, bonds_home = np.zeros(n), np.zeros(n)
        for j in range(n_sub):
            si = int(sc["first_sub"]) + j
            sub = mdl.substeps[si]
            comp, hazard_new, hit = crash_hazard(g, classes, hold, dt / n_sub, hazard, z["crash"])
            d_exo = np.where(crash, smooth, smooth + comp) + (scripted if j == 0 else 0.0)
            hazard = np.where(crash, hazard, hazard_new)
            crash_sub = np.where(~crash & hit, j, crash_sub)
            crash = crash | hit
            d_exo = np.where(crash_sub == j, d_exo - jump, d_exo)
            dx_exo = dx_exo + d_exo
            off = official if j == 0 else np.zeros(n)
            decayed = transient * sub["decay"]
            x_pre = x_sub + d_exo + (decayed - transient)
            k_sub = np.where(crash & (j > crash_sub), k_stress, k)
            k_private = k_sub if g["private_flows"] else np.zeros(n)
            seen = rates_within(prev, dict(boj=boj, fed=fed, jgb=jgb, ust=ust), j, n_sub,
                                boj_from, fed_from)
            paths = dict(x=x_check, x_start=x_sub, var=var_check, q=q, cpp=cpp, basis=basis,
                         hold=hold, hedge=hedge, xoff=x_pre - off, impact=k_private, **seen)
            step = dict(dt=sub["since_check"], weeks=sub["weeks"], ewma=sub["ewma"],
                        logfx0=logfx0, phi0=phi0, mu=mu, limit=limit)
            speeds = mdl.class_steps[si]
            _, ok, qn, buying, var = solve_step(paths, step, classes, speeds,
                                                int(g["max_iter"]), g["tol"])
            converged &= ok
            total_impact = off + private_impact(buying, k_private, limit, sub["weeks"])
            dx_flows = dx_flows + ((decayed - transient) - total_impact)
            x_sub = x + (dx_exo + dx_flows)
            transient = decayed - (1.0 - perm) * total_impact
            # sim.kernels._commit: the sub-step's totals over the classes, then added
            sub_unwind, sub_repat, sub_hedge = np.zeros(n), np.zeros(n), np.zeros(n)
            sub_sold, sub_home = np.zeros(n), np.zeros(n)
            for c, cls in enumerate(classes):
                dq = qn[:, c] - q[:, c]
                h0 = cpp["holdings"][:, c]
                unwind = h0 * (1.0 - cls["hedge_share"]) * dq
                repat = cpp["repatriation"][:, c] * unwind
                hedge_new = hedge_ratio(cls, qn[:, c])
                hold[:, c] -= unwind
                hedge_bought = hold[:, c] * (hedge_new - hedge[:, c])
                hedge[:, c] = hedge_new
                hold_low[:, c] = np.minimum(hold_low[:, c], hold[:, c])
                oc = out_cls[:, c]
                oc["unwind_by_investor"] += unwind
                oc["repatriation_by_investor"] += repat
                oc["hedge_by_investor"] += hedge_bought
                sub_unwind += unwind
                sub_repat += repat
                sub_hedge += hedge_bought
                sub_sold += cls["bond_share"] * unwind
                sub_home += cls["bond_share"] * repat
                basis[:, c] += speeds[c]["basis_speed"] * (x_sub - basis[:, c])
            q = qn
            step_unwind += sub_unwind
            step_repat += sub_repat
            cum_hedge += sub_hedge
            bonds_sold += sub_sold
            bonds_home += sub_home
        nonconv += ~converged
        move = dx_exo + dx_flows
        pending_tpu = g["ust_tp_per_tn_sold"] * bonds_sold / 1000.0
        pending_tpj = -g["jgb_tp_per_tn_repatriated"] * bonds_home / 1000.0
        cum_unwind = cum_unwind + step_unwind
        cum_repat = cum_repat + step_repat
        weekly = step_unwind / sc["weeks"]
        peak_weekly = np.where(weekly > peak_weekly, weekly, peak_weekly)
        first_large = np.where((first_large < 0) & (weekly > g["large_weekly"]), t + 1,
                               first_large)

        abs_total += np.abs(move)
        abs_exo += np.abs(dx_exo)
        x = x_sub
        xmax = np.where(x > xmax, x, xmax)
        app = 100.0 * (1.0 - np.exp(x - xmax))
        largest_app = np.where(app > largest_app, app, largest_app)
        stress_steps += stress
        crashes += crash
        lag = sc["check_lag"]
        if lag > 0:
            x_check, var_check = x.copy(), var.copy()
            rally = np.log(out_time["usdjpy"][:, t + 1 - lag]) - x
            trigger = rally > sc["trigger_level"]
            largest_week = np.maximum(largest_week, 100.0 * (1.0 - np.exp(-rally)))
        else:
            trigger = np.zeros(n, dtype=bool)
        u_regime = z["regime"]
        stress = np.where(crash | sc["ev_stress"], True,
                          np.where(stress, ~(u_regime < sc["p_stress_to_calm"]),
                                   trigger | (u_regime < sc["p_calm_to_stress"])))
        record(t + 1)
        state_sum = (x + var + jgb + ust + boj + fed + cum_unwind + cum_repat + cum_hedge
                     + jpi + jpa + usi + usa)
        fail_step = np.where((fail_step == 0) & ~np.isfinite(state_sum), t + 1, fail_step)

    out_cls["holdings_end"] = hold
    out_cls["holdings_low"] = hold_low
    with np.errstate(divide="ignore", invalid="ignore"):
        amplification = np.where(abs_exo > 0.0, abs_total / abs_exo, 1.0)
    values = {"cum_unwind": cum_unwind, "cum_repatriation": cum_repat,
              "hedge_yen_buying": cum_hedge, "peak_weekly_unwind": peak_weekly,
              "first_large_step": first_large, "largest_yen_appreciation": largest_app,
              "amplification_ratio": amplification, "largest_weekly_rally": largest_week,
              "stress_share": stress_steps / n_steps,
              "nonconverged_steps": nonconv, "crashes": crashes, "interventions": interventions,
              "fail_step": fail_step, "boj_rate_end": boj, "fed_rate_end": fed, "jgb10_end": jgb,
              "ust10_end": ust, "spread_end": spread, "usdjpy_end": np.exp(x)}
    for name, v in values.items():
        out_path[name] = v
    return out_path, out_cls, out_time
