"""A vectorised-numpy reference of the model in :func:`sim.kernels.simulate_path`.

For tests and benchmarks only; runs go through the numba kernel.  It loops over time steps
in Python and treats all paths of a step at once, reading the same packed inputs as the kernel
and a pre-drawn shock array from :func:`shocks` (the draws the kernel makes, in its order),
and writes outputs in the kernel's layouts.  Arithmetic follows the kernel's order of
operations, so the two agree to rounding of the transcendental functions and to the solver
tolerance.  A path whose state becomes non-finite gets its failing step in ``O_FAIL_STEP``;
its other outputs are then meaningless (the kernel stops such a path instead).
"""
from __future__ import annotations

import numpy as np
from scipy.special import erfc

from sim import kernels as K
from sim.inputs import Inputs
from sim.rng import block_seeds


def shocks(seed: int, block_size: int, n_paths: int, n_steps: int) -> np.ndarray:
    """The kernel's draws for paths [0, n_paths): array (paths, steps, N_DRAWS)."""
    seeds = block_seeds(seed, 0, -(-n_paths // block_size))
    out = np.empty((n_paths, n_steps, K.N_DRAWS))
    K.draw_shocks(seeds, block_size, n_paths, out)
    return out


def norm_cdf(x):
    return 0.5 * erfc(-x * 0.7071067811865476)


def price_impact(flow, k, limit):
    size = np.abs(flow)
    with np.errstate(divide="ignore", invalid="ignore"):
        big = np.copysign(k * limit * np.sqrt(size / limit), flow)
    return np.where(size <= limit, k * flow, big)


def crossed_share(m, mu, width, phi0):
    share = (norm_cdf((m - mu) / width) - phi0) / (1.0 - phi0)
    return np.where(share > 0.0, share, 0.0)  # NaN -> 0, as in the kernel


def signal(kind, x, basis, boj, fed, jgb, ust, vol_pct, hedge):
    if kind == K.SIG_CARRY_TO_RISK:
        return -(fed - boj) / np.maximum(vol_pct, 0.5)
    if kind == K.SIG_DRAWDOWN:
        return 100.0 * (basis - x)
    if kind == K.SIG_HEDGED_PICKUP:
        return -(ust - jgb - hedge * (fed - boj))
    return jgb  # SIG_YIELD_LEVEL


def investor_targets(g, s, cls_par, speed):
    """Candidate exit shares (paths x classes), yen bought and variance at levels ``g``.

    ``s`` holds the step's state: arrays with one row per path of ``g``, and scalars.
    """
    r = g - s["x"]
    var = s["ewma"] * s["var"] + (1.0 - s["ewma"]) * r * r / s["dt"]
    vol_pct = 100.0 * np.sqrt(var)
    q, cpp = s["q"], s["cpp"]
    qn = np.empty_like(q)
    buying = np.zeros_like(g)
    for c in range(cls_par.shape[0]):
        kind, mu, width = int(cls_par[c, K.C_SIGNAL]), cls_par[c, K.C_MU], cls_par[c, K.C_WIDTH]
        qc = q[:, c]
        if kind == K.SIG_ALLOCATION:
            w0, wt = cls_par[c, K.C_W0], cls_par[c, K.C_WT]
            ratio = np.exp(g - s["logfx0"])
            wealth = 1.0 - w0 + w0 * ratio
            drift = 100.0 * (w0 * (1.0 - qc) * ratio / wealth - wt)
            pos_target = wt * wealth / (w0 * ratio)
            act = norm_cdf((np.abs(drift) - mu) / width)
            target = qc + act * ((1.0 - pos_target) - qc)
        else:
            m = signal(kind, g, s["basis"][:, c], s["boj"], s["fed"], s["jgb"], s["ust"], vol_pct,
                       cls_par[c, K.C_HEDGE0])
            phi0 = s["phi0"][c]
            lower = crossed_share(m, mu, width, phi0)
            upper = crossed_share(m + cls_par[c, K.C_REENTRY], mu, width, phi0)
            target = np.where(qc < lower, lower, np.where(qc > upper, upper, qc))
        qn[:, c] = qc + speed[c, K.CS_SPEED] * (target - qc)
        hs = cls_par[c, K.C_HEDGE_SHARE]
        hedge_gap = cls_par[c, K.C_HEDGE_MAX] - cls_par[c, K.C_HEDGE0]
        buying += cpp[:, c, K.CP_HOLDINGS] * (qn[:, c] - qc) * (
            cpp[:, c, K.CP_REPAT] * (1.0 - hs) + hs * hedge_gap)
    return qn, buying, var


def solve_step(paths, step, cls_par, speed, max_iter, tol):
    """:func:`sim.kernels.solve_step` for all paths at once; returns (level, converged, qn,
    buying, var), the last four being the investors' response at the returned level.

    ``paths`` holds the step's per-path arrays, ``step`` its scalars.  Every unfinished path
    takes one evaluation per round: plain iteration g <- g + h until two iterates straddle a
    root, then Illinois regula falsi.  The returned level is always the path's last
    evaluation, so its response is the one stored.
    """
    limit = step["limit"]

    def residual(g, idx):
        s = {k: v[idx] for k, v in paths.items()} | step
        qn, buying, var = investor_targets(g, s, cls_par, speed)
        h = s["xpre"] - price_impact(s["external"] + buying, s["impact"], limit) - g
        return h, qn, buying, var

    level = paths["xpre"] - price_impact(paths["external"], paths["impact"], limit)
    h, qn, buying, var = residual(level, slice(None))
    g = level.copy()
    a, fa, b, fb = (np.zeros_like(g) for _ in range(4))
    bracketed = np.zeros(g.shape, dtype=bool)
    converged = np.abs(h) <= tol
    active = ~converged & (1 < max_iter)
    n = 1
    while active.any():
        idx = slice(None) if active.all() else np.flatnonzero(active)
        br = bracketed[idx]
        ai, fai, bi, fbi, gi, hi = a[idx], fa[idx], b[idx], fb[idx], g[idx], h[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            trial = np.where(br, bi - fbi * (bi - ai) / (fbi - fai), gi + hi)
        f, qn[idx], buying[idx], var[idx] = residual(trial, idx)
        level[idx] = trial
        n += 1
        small = np.abs(f) <= tol
        # Plain iteration: a sign change away from the root starts the bracketing phase.
        cross = ~br & ((f > 0.0) != (hi > 0.0)) & ~small
        flip = (f > 0.0) != (fbi > 0.0)
        a[idx] = np.where(cross, gi, np.where(br & flip, bi, ai))
        fa[idx] = np.where(cross, hi, np.where(br, np.where(flip, fbi, 0.5 * fai), fai))
        b[idx] = np.where(cross | br, trial, bi)
        fb[idx] = np.where(cross | br, f, fbi)
        g[idx], h[idx] = trial, f
        bracketed[idx] = br | cross
        done = small | (br & (np.abs(bi - ai) <= tol))
        converged[idx] = done
        active[idx] = ~done & (n < max_iter)
    return level, converged, qn, buying, var


def decide(bank, gp, sched, t, col, rate, neutral, infl, act, logfx, since, stress, shock):
    """:func:`sim.kernels._decide` for all paths; returns (new rates, moved)."""
    o = K.G_BANK + bank * K.N_BANK
    kind = int(sched[t, col + 1])
    if kind == K.OVERRIDE_SCRIPTED:
        move = np.full_like(rate, sched[t, col + 2])
    elif kind == K.OVERRIDE_PROBABILITY:
        move = np.where(norm_cdf(shock) < sched[t, col + 3], sched[t, col + 2], 0.0)
    elif gp[K.G_DECISIONS] == 0.0:
        move = np.zeros_like(rate)
    else:
        desired = (neutral + gp[o + K.B_PHI_PI] * infl + gp[o + K.B_PHI_Y] * act
                   + gp[o + K.B_PHI_FX] * 100.0 * (logfx - gp[o + K.B_LOGFX_REF]))
        latent = gp[o + K.B_RHO] * (desired - rate) + gp[o + K.B_NOISE] * shock
        c25, c50 = gp[o + K.B_C25], gp[o + K.B_C50]
        move = np.select([latent > c50, latent > c25, latent < -c50, latent < -c25],
                         [0.5, 0.25, -0.5, -0.25], 0.0)
        cap = gp[o + K.B_MAXMOVE]
        move = np.minimum(np.maximum(move, -cap), cap)
        move = np.where(since < gp[o + K.B_SPACING], 0.0, move)
        if gp[o + K.B_PAUSE] != 0.0:
            move = np.where((move > 0.0) & stress, 0.0, move)
    new = np.maximum(rate + move, gp[o + K.B_LB])
    return new, new != rate


def ou(x, mean, a, s, shock):
    return mean + (x - mean) * a + s * shock


def simulate(inputs: Inputs, path_par: np.ndarray, cls_path_par: np.ndarray, draws: np.ndarray):
    """Simulate every path of ``draws``; returns (out_path, out_cls, out_time) as the kernel."""
    gp, sched, chol, cls_par, cls_step = inputs.shared
    n, n_steps, n_cls = draws.shape[0], sched.shape[0], cls_par.shape[0]
    out_path = np.zeros((n, K.N_OUT_PATH))
    out_cls = np.zeros((n, n_cls, K.N_OUT_CLS))
    out_time = np.empty((n, n_steps + 1, K.N_OUT_TIME))
    cpp = cls_path_par

    def full(v):
        return np.full(n, float(v))

    jpi, jpa, usi, usa = (full(gp[k])
                          for k in (K.G_INIT_JPI, K.G_INIT_JPA, K.G_INIT_USI, K.G_INIT_USA))
    boj, fed = full(gp[K.G_BOJ0]), full(gp[K.G_FED0])
    rs_boj, rs_fed = path_par[:, K.P_NEUTRAL_BOJ], path_par[:, K.P_NEUTRAL_FED]
    expf = gp[K.G_EXP_FACTOR]
    tpj = gp[K.G_JGB0] - (rs_boj + (boj - rs_boj) * expf)
    tpu = gp[K.G_UST0] - (rs_fed + (fed - rs_fed) * expf)
    jgb, ust = full(gp[K.G_JGB0]), full(gp[K.G_UST0])
    spread = ust - jgb
    x = full(gp[K.G_LOGFX0])
    logfx0 = gp[K.G_LOGFX0]
    var = full(gp[K.G_VAR0])
    transient = np.zeros(n)
    since_boj, since_fed = full(gp[K.G_BOJ_SINCE0]), full(gp[K.G_FED_SINCE0])
    since_interv = full(gp[K.G_INT_SPACING])
    stress = np.zeros(n, dtype=bool)
    impact = path_par[:, K.P_IMPACT]
    perm = gp[K.G_PERM_SHARE]
    pending_tpj, pending_tpu = np.zeros(n), np.zeros(n)
    # Initial signals are the same on every path, so each class has one phi0.
    vol0 = 100.0 * np.sqrt(gp[K.G_VAR0])
    x0, boj0, fed0, jgb0, ust0 = (gp[k]
                                  for k in (K.G_LOGFX0, K.G_BOJ0, K.G_FED0, K.G_JGB0, K.G_UST0))
    phi0 = np.zeros(n_cls)
    for c in range(n_cls):
        kind = int(cls_par[c, K.C_SIGNAL])
        if kind != K.SIG_ALLOCATION:
            m0 = float(signal(kind, x0, x0, boj0, fed0, jgb0, ust0, vol0, cls_par[c, K.C_HEDGE0]))
            phi0[c] = min(float(norm_cdf((m0 - cls_par[c, K.C_MU]) / cls_par[c, K.C_WIDTH])),
                          1.0 - 1e-12)
    q = np.zeros((n, n_cls))
    hold = cpp[:, :, K.CP_HOLDINGS].copy()
    basis = np.full((n, n_cls), x0)
    cum_unwind, cum_repat, cum_hedge = np.zeros(n), np.zeros(n), np.zeros(n)
    peak_weekly, first_large = np.zeros(n), np.full(n, -1.0)
    xmax, largest_app = x.copy(), np.zeros(n)
    abs_total, abs_exo = np.zeros(n), np.zeros(n)
    stress_steps, nonconv, crashes, interventions = (np.zeros(n) for _ in range(4))
    fail_step = np.zeros(n)

    def record(i):
        cols = {K.V_BOJ: boj, K.V_FED: fed, K.V_JGB: jgb, K.V_UST: ust, K.V_SPREAD: spread,
                K.V_USDJPY: np.exp(x), K.V_UNWIND: cum_unwind, K.V_REPAT: cum_repat,
                K.V_STRESS: stress.astype(float), K.V_FXVOL: 100.0 * np.sqrt(var),
                K.V_JPI: jpi, K.V_JPA: jpa, K.V_USI: usi, K.V_USA: usa}
        for k, v in cols.items():
            out_time[:, i, k] = v

    record(0)
    for t in range(n_steps):
        sc = sched[t]
        dt = sc[K.S_DT]
        z = draws[:, t]
        if sc[K.S_EV_STRESS] != 0.0:
            stress = np.ones(n, dtype=bool)
        e = np.empty((n, K.N_FACTORS))
        for i in range(K.N_FACTORS):  # the kernel's summation order, calm or stress factor
            acc = np.zeros(n)
            for j in range(i + 1):
                acc = acc + np.where(stress, chol[1, i, j], chol[0, i, j]) * z[:, j]
            e[:, i] = acc

        jpi = ou(jpi, gp[K.G_MEAN_JPI], sc[K.S_A0], sc[K.S_S0], e[:, 0]) + sc[K.S_EV_JPI]
        jpa = ou(jpa, gp[K.G_MEAN_JPA], sc[K.S_A1], sc[K.S_S1], e[:, 1]) + sc[K.S_EV_JPA]
        usi = ou(usi, gp[K.G_MEAN_USI], sc[K.S_A2], sc[K.S_S2], e[:, 2]) + sc[K.S_EV_USI]
        usa = ou(usa, gp[K.G_MEAN_USA], sc[K.S_A3], sc[K.S_S3], e[:, 3]) + sc[K.S_EV_USA]

        since_boj = since_boj + dt
        since_fed = since_fed + dt
        if sc[K.S_BOJ_MEET] != 0.0:
            boj, moved = decide(0, gp, sched, t, K.S_BOJ_MEET, boj, rs_boj, jpi, jpa, x,
                                since_boj, stress, z[:, 7])
            since_boj = np.where(moved, 0.0, since_boj)
        if sc[K.S_FED_MEET] != 0.0:
            fed, moved = decide(1, gp, sched, t, K.S_FED_MEET, fed, rs_fed, usi, usa, x,
                                since_fed, stress, z[:, 8])
            since_fed = np.where(moved, 0.0, since_fed)

        tpj = (ou(tpj, gp[K.G_MEAN_TPJ], sc[K.S_A4], sc[K.S_S4], e[:, 4])
               + sc[K.S_EV_TPJ] + pending_tpj)
        tpj = np.where(z[:, K.Z_FISCAL] < sc[K.S_P_FISCAL], tpj + gp[K.G_FISCAL_SIZE], tpj)
        tpu = (ou(tpu, gp[K.G_MEAN_TPU], sc[K.S_A5], sc[K.S_S5], e[:, 5])
               + sc[K.S_EV_TPU] + pending_tpu)
        jgb = rs_boj + (boj - rs_boj) * expf + tpj
        ust = rs_fed + (fed - rs_fed) * expf + tpu
        new_spread = ust - jgb
        d_spread = new_spread - spread
        spread = new_spread

        vol = np.where(stress, gp[K.G_VOL_STRESS], gp[K.G_VOL_CALM])
        crowd = np.zeros(n)
        for c in range(n_cls):
            if cls_par[c, K.C_CARRY] != 0.0:
                crowd = crowd + hold[:, c]
        lam = gp[K.G_CRASH_LAMBDA] * np.exp(gp[K.G_CRASH_GAMMA] * (crowd / gp[K.G_CROWD_REF] - 1.0))
        crash = z[:, K.Z_CRASH] < 1.0 - np.exp(-lam * dt)
        jump = np.where(crash, gp[K.G_CRASH_SIZE] * -np.log(z[:, K.Z_SIZE]), 0.0)
        dx_exo = (gp[K.G_ETA] * d_spread + vol * sc[K.S_SQDT] * e[:, 6] - jump
                  + np.log1p(sc[K.S_EV_FX] / 100.0))
        since_interv = since_interv + dt
        interv = ((gp[K.G_INT_ON] != 0.0) & (x > gp[K.G_INT_LOGLEVEL])
                  & (since_interv >= gp[K.G_INT_SPACING]) & (z[:, K.Z_INTERV] < sc[K.S_P_INTERV]))
        external = np.where(interv, sc[K.S_EV_INT] + gp[K.G_INT_SIZE], sc[K.S_EV_INT])
        interventions += interv
        since_interv = np.where(interv, 0.0, since_interv)
        decayed = transient * sc[K.S_DECAY]
        x_pre = x + dx_exo + (decayed - transient)

        limit = gp[K.G_IMPACT_LIMIT]
        paths = dict(x=x, var=var, boj=boj, fed=fed, jgb=jgb, ust=ust, q=q, cpp=cpp, basis=basis,
                     xpre=x_pre, external=external, impact=impact)
        step = dict(dt=dt, ewma=sc[K.S_EWMA], logfx0=logfx0, phi0=phi0, limit=limit)
        _, converged, qn, buying, var = solve_step(paths, step, cls_par, cls_step[t],
                                                   int(gp[K.G_MAX_ITER]), gp[K.G_TOL])
        nonconv += ~converged
        total_impact = price_impact(external + buying, impact, limit)
        move = dx_exo + (decayed - transient) - total_impact
        transient = decayed - (1.0 - perm) * total_impact
        x_new = x + move

        step_unwind, step_repat = np.zeros(n), np.zeros(n)
        bonds_sold, bonds_home = np.zeros(n), np.zeros(n)
        for c in range(n_cls):
            dq = qn[:, c] - q[:, c]
            h0, hs = cpp[:, c, K.CP_HOLDINGS], cls_par[c, K.C_HEDGE_SHARE]
            unwind = h0 * (1.0 - hs) * dq
            repat = cpp[:, c, K.CP_REPAT] * unwind
            hedge = h0 * hs * (cls_par[c, K.C_HEDGE_MAX] - cls_par[c, K.C_HEDGE0]) * dq
            hold[:, c] -= unwind
            out_cls[:, c, K.OC_UNWIND] += unwind
            out_cls[:, c, K.OC_REPAT] += repat
            out_cls[:, c, K.OC_HEDGE] += hedge
            step_unwind += unwind
            step_repat += repat
            cum_hedge += hedge
            bonds_sold += cls_par[c, K.C_BOND] * unwind
            bonds_home += cls_par[c, K.C_BOND] * repat
            basis[:, c] += cls_step[t, c, K.CS_BASIS] * (x_new - basis[:, c])
        q = qn
        pending_tpu = gp[K.G_BETA_UST] * bonds_sold / 1000.0
        pending_tpj = -gp[K.G_BETA_JGB] * bonds_home / 1000.0
        cum_unwind = cum_unwind + step_unwind
        cum_repat = cum_repat + step_repat
        weekly = step_unwind / sc[K.S_WEEKS]
        peak_weekly = np.where(weekly > peak_weekly, weekly, peak_weekly)
        first_large = np.where((first_large < 0.0) & (weekly > gp[K.G_LARGE_WEEKLY]), t + 1.0,
                               first_large)

        abs_total += np.abs(move)
        abs_exo += np.abs(dx_exo)
        x = x_new
        xmax = np.where(x > xmax, x, xmax)
        app = 100.0 * (1.0 - np.exp(x - xmax))
        largest_app = np.where(app > largest_app, app, largest_app)
        stress_steps += stress
        crashes += crash
        trigger = -move > gp[K.G_STRESS_TRIGGER] * np.sqrt(sc[K.S_WEEKS])
        u_regime = z[:, K.Z_REGIME]
        stress = np.where(crash | (sc[K.S_EV_STRESS] != 0.0), True,
                          np.where(stress, ~(u_regime < sc[K.S_P_STRESS2CALM]),
                                   trigger | (u_regime < sc[K.S_P_CALM2STRESS])))
        record(t + 1)
        state_sum = (x + var + jgb + ust + boj + fed + cum_unwind + cum_repat + cum_hedge
                     + jpi + jpa + usi + usa)
        fail_step = np.where((fail_step == 0.0) & ~np.isfinite(state_sum), t + 1.0, fail_step)

    out_cls[:, :, K.OC_HOLDINGS] = hold
    out_path[:, K.O_UNWIND] = cum_unwind
    out_path[:, K.O_REPAT] = cum_repat
    out_path[:, K.O_HEDGE] = cum_hedge
    out_path[:, K.O_PEAK_WEEKLY] = peak_weekly
    out_path[:, K.O_FIRST_LARGE] = first_large
    out_path[:, K.O_LARGEST_APP] = largest_app
    with np.errstate(divide="ignore", invalid="ignore"):
        out_path[:, K.O_AMPLIFICATION] = np.where(abs_exo > 0.0, abs_total / abs_exo, 1.0)
    out_path[:, K.O_STRESS_SHARE] = stress_steps / n_steps
    out_path[:, K.O_NONCONV] = nonconv
    out_path[:, K.O_CRASHES] = crashes
    out_path[:, K.O_INTERVENTIONS] = interventions
    out_path[:, K.O_FAIL_STEP] = fail_step
    for k, v in ((K.O_BOJ_END, boj), (K.O_FED_END, fed), (K.O_JGB_END, jgb), (K.O_UST_END, ust),
                 (K.O_SPREAD_END, spread), (K.O_USDJPY_END, np.exp(x))):
        out_path[:, k] = v
    return out_path, out_cls, out_time
