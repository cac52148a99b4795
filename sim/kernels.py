"""Numba kernels: the model's time stepping, and nothing else.

Everything here is a pure function of arrays and scalars.  The wrapper in
:mod:`sim.engine` prepares float64/int64 contiguous inputs and allocates the outputs; the
kernel writes only the rows of its own paths.  Parallelism lives in one place: ``prange``
over fixed-size blocks of paths in :func:`simulate_chunk`.  Each block owns a xoshiro256**
random stream seeded from ``numpy.random.SeedSequence`` by its global block index, so results
do not depend on the number of threads or on how blocks are grouped into chunks.

Every path draws the same fixed sequence of random numbers per step, whatever the parameter
values, the scripted events or the investor classes: variants share their shocks (common
random numbers).  The layouts of the packed arrays are the integer constants below; the
equations are documented in docs/model.md.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# ---------------------------------------------------------------------------------------
# Array layouts (column indices).  sim.engine fills the arrays in this order.
# ---------------------------------------------------------------------------------------
# Global parameters, vector ``gp``.
(G_MEAN_JPI, G_MEAN_JPA, G_MEAN_USI, G_MEAN_USA, G_MEAN_TPJ, G_MEAN_TPU,
 G_INIT_JPI, G_INIT_JPA, G_INIT_USI, G_INIT_USA,
 G_BOJ0, G_FED0, G_JGB0, G_UST0, G_LOGFX0, G_VAR0, G_BOJ_SINCE0, G_FED_SINCE0,
 G_DECISIONS, G_EXP_FACTOR,
 G_FISCAL_SIZE, G_BETA_UST, G_BETA_JGB,
 G_ETA, G_VOL_CALM, G_VOL_STRESS, G_STRESS_TRIGGER,
 G_CRASH_LAMBDA, G_CRASH_GAMMA, G_CRASH_SIZE, G_CROWD_REF,
 G_PERM_SHARE, G_INT_ON, G_INT_LOGLEVEL, G_INT_SIZE,
 G_MAX_ITER, G_TOL, G_LARGE_WEEKLY, G_IMPACT_LIMIT, G_INT_SPACING,
 G_BANK) = range(41)
# Per-bank block starting at G_BANK + bank * N_BANK (bank 0 = BoJ, 1 = Fed).
(B_PHI_PI, B_PHI_Y, B_PHI_FX, B_LOGFX_REF, B_RHO, B_NOISE, B_C25, B_C50, B_MAXMOVE,
 B_SPACING, B_LB, B_PAUSE) = range(12)
N_BANK = 12
N_GLOBAL = G_BANK + 2 * N_BANK

# Per-step schedule, matrix ``sched`` (steps x columns).
(S_DT, S_SQDT, S_WEEKS, S_EWMA, S_DECAY, S_P_FISCAL, S_P_CALM2STRESS, S_P_STRESS2CALM,
 S_A0, S_A1, S_A2, S_A3, S_A4, S_A5,
 S_S0, S_S1, S_S2, S_S3, S_S4, S_S5,
 S_BOJ_MEET, S_BOJ_KIND, S_BOJ_MOVE, S_BOJ_PROB,
 S_FED_MEET, S_FED_KIND, S_FED_MOVE, S_FED_PROB,
 S_EV_FX, S_EV_TPJ, S_EV_TPU, S_EV_JPI, S_EV_JPA, S_EV_USI, S_EV_USA, S_EV_INT, S_EV_STRESS,
 S_P_INTERV, N_SCHED) = range(39)
N_MEETING_COLS = 4  # MEET, KIND, MOVE, PROB for each bank, BoJ first
OVERRIDE_NONE, OVERRIDE_SCRIPTED, OVERRIDE_PROBABILITY = 0, 1, 2

# Per-path parameters, matrix ``path_par``.
P_NEUTRAL_BOJ, P_NEUTRAL_FED, P_IMPACT, N_PATH_PAR = range(4)

# Investor class parameters, matrix ``cls_par`` (classes x columns).
(C_SIGNAL, C_MU, C_WIDTH, C_REENTRY, C_HEDGE_SHARE, C_HEDGE0, C_HEDGE_MAX, C_BOND, C_CARRY,
 C_W0, C_WT, N_CLS_PAR) = range(12)
SIG_CARRY_TO_RISK, SIG_DRAWDOWN, SIG_HEDGED_PICKUP, SIG_YIELD_LEVEL, SIG_ALLOCATION = range(5)
# Per-path class parameters, array ``cls_path_par`` (paths x classes x 2).
CP_HOLDINGS, CP_REPAT = 0, 1
# Per-step class coefficients, array ``cls_step`` (steps x classes x 2).
CS_SPEED, CS_BASIS = 0, 1

# Outputs.
(O_UNWIND, O_REPAT, O_HEDGE, O_PEAK_WEEKLY, O_FIRST_LARGE, O_LARGEST_APP, O_AMPLIFICATION,
 O_STRESS_SHARE, O_NONCONV, O_CRASHES, O_INTERVENTIONS, O_FAIL_STEP,
 O_BOJ_END, O_FED_END, O_JGB_END, O_UST_END, O_SPREAD_END, O_USDJPY_END, N_OUT_PATH) = range(19)
OC_UNWIND, OC_REPAT, OC_HEDGE, OC_HOLDINGS, N_OUT_CLS = range(5)
(V_BOJ, V_FED, V_JGB, V_UST, V_SPREAD, V_USDJPY, V_UNWIND, V_REPAT, V_STRESS, V_FXVOL,
 V_JPI, V_JPA, V_USI, V_USA, N_OUT_TIME) = range(15)

N_FACTORS = 7
# Class scratch columns (per block).
W_Q, W_QN, W_HOLD, W_BASIS, W_PHI0, W_Z0, N_WORK = range(7)
# The step's state seen by the within-step solver, vector ``st`` (per block).
(ST_XPRE, ST_EXTERNAL, ST_IMPACT, ST_LIMIT, ST_X, ST_VAR, ST_DT, ST_EWMA, ST_BOJ, ST_FED, ST_JGB,
 ST_UST, ST_LOGFX0, ST_BUYING, ST_VAR_NEW, N_ST) = range(16)
# The draws of one step, vector ``z``: 10 normals (7 factors, BoJ and Fed decisions, a spare),
# then 5 uniforms (regime switch, crash, crash size, fiscal jump, intervention).
N_NORMALS = 10
(Z_REGIME, Z_CRASH, Z_SIZE, Z_FISCAL, Z_INTERV, N_DRAWS) = range(N_NORMALS, N_NORMALS + 6)


# ---------------------------------------------------------------------------------------
# Random numbers: xoshiro256** (Blackman and Vigna), uniforms, polar-method normals.
# ---------------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def next_u64(s):
    """Advance the xoshiro256** state ``s`` (uint64[4]) and return 64 random bits."""
    result = _rotl(s[1] * np.uint64(5), 7) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


@njit(cache=True, inline="always")
def uniform(s):
    """A uniform draw on the open interval (0, 1) with 53 random bits."""
    return (float(next_u64(s) >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def normal_pair(s):
    """Two independent standard normals (Marsaglia's polar method)."""
    while True:
        u = 2.0 * uniform(s) - 1.0
        v = 2.0 * uniform(s) - 1.0
        r2 = u * u + v * v
        if r2 < 1.0:
            f = math.sqrt(-2.0 * math.log(r2) / r2)
            return u * f, v * f


@njit(cache=True, inline="always")
def draw_step(rng, z):
    """All random numbers of one path-step, always the same count whatever the parameters."""
    for k in range(0, N_NORMALS, 2):
        z[k], z[k + 1] = normal_pair(rng)
    for k in range(N_NORMALS, N_DRAWS):
        z[k] = uniform(rng)


@njit(cache=True, parallel=True)
def draw_shocks(seeds, block_size, n_paths, out):
    """The draws ``simulate_chunk`` makes, path by path: out[path, step, :N_DRAWS]."""
    for b in prange(seeds.shape[0]):
        rng = seeds[b].copy()
        stop = min((b + 1) * block_size, n_paths)
        for p in range(b * block_size, stop):
            for t in range(out.shape[1]):
                draw_step(rng, out[p, t])


@njit(cache=True, inline="always")
def norm_cdf(x):
    return 0.5 * math.erfc(-x * 0.7071067811865476)


@njit(cache=True, parallel=True)
def draw_normals_floor(seeds, block_size, n_paths, per_path, out):
    """Benchmark floor: draw ``per_path`` normals for each path with the model's streams.

    Writes the per-path sum into ``out`` so that the work cannot be optimised away.
    """
    for b in prange(seeds.shape[0]):
        s = seeds[b].copy()
        stop = min((b + 1) * block_size, n_paths)
        for p in range(b * block_size, stop):
            acc = 0.0
            for _ in range(per_path // 2):
                z0, z1 = normal_pair(s)
                acc += z0 + z1
            out[p] = acc


# ---------------------------------------------------------------------------------------
# Investor behaviour.
# ---------------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def price_impact(flow, k, limit):
    """Log fall of USD/JPY caused by ``flow`` USD bn of yen buying in one step.

    Linear (``k`` per USD bn) up to ``limit``, the size of a typical intervention, and growing
    with the square root of the flow beyond it.
    """
    size = abs(flow)
    if size <= limit:
        return k * flow
    return math.copysign(k * limit * math.sqrt(size / limit), flow)


@njit(cache=True, inline="always")
def _crossed_share(m, mu, width, phi0, z0):
    """Share of a class's current holders whose threshold the signal ``m`` has crossed.

    Thresholds are Normal(mu, width) across investors; those holding at the snapshot are the
    ones whose threshold lay above the initial signal, whose CDF value is ``phi0``.
    """
    z = (m - mu) / width
    if z <= z0:  # not past the snapshot signal: nobody has crossed (saves the erfc)
        return 0.0
    share = (norm_cdf(z) - phi0) / (1.0 - phi0)
    return share if share > 0.0 else 0.0


@njit(cache=True, inline="always")
def _signal(kind, x, basis, boj, fed, jgb, ust, vol_pct, hedge):
    """Decision signal of a threshold class, oriented so that higher means 'get out'.

    The hedged pick-up charges the class's hedge ratio ``hedge`` times the policy-rate
    differential (the cost of an FX hedge) against the 10y spread.
    """
    if kind == SIG_CARRY_TO_RISK:
        return -(fed - boj) / max(vol_pct, 0.5)
    if kind == SIG_DRAWDOWN:
        return 100.0 * (basis - x)
    if kind == SIG_HEDGED_PICKUP:
        return -(ust - jgb - hedge * (fed - boj))
    return jgb  # SIG_YIELD_LEVEL


@njit(cache=True)
def _investor_targets(x, st, cls_par, speed, cpp, work):
    """Candidate exit shares of every class at log USD/JPY ``x``; returns (yen bought, var).

    Writes the candidate share of each class into ``work[:, W_QN]``; nothing is committed.
    The realised variance includes this step's candidate return.
    """
    r = x - st[ST_X]
    ewma = st[ST_EWMA]
    var = ewma * st[ST_VAR] + (1.0 - ewma) * r * r / st[ST_DT]
    vol_pct = 100.0 * math.sqrt(var)
    boj, fed, jgb, ust = st[ST_BOJ], st[ST_FED], st[ST_JGB], st[ST_UST]
    buying = 0.0
    for c in range(cls_par.shape[0]):
        kind = int(cls_par[c, C_SIGNAL])
        q = work[c, W_Q]
        if kind == SIG_ALLOCATION:
            # Band rebalancing of a pension fund towards its policy weight.
            # Wealth at current prices is 1 - w0 + w0 * ratio whatever has been sold (trades
            # are self-financing); the foreign weight is the held foreign part of it.
            w0 = cls_par[c, C_W0]
            wt = cls_par[c, C_WT]
            ratio = math.exp(x - st[ST_LOGFX0])
            wealth = 1.0 - w0 + w0 * ratio
            drift = 100.0 * (w0 * (1.0 - q) * ratio / wealth - wt)
            pos_target = wt * wealth / (w0 * ratio)
            act = norm_cdf((abs(drift) - cls_par[c, C_MU]) / cls_par[c, C_WIDTH])
            target = q + act * ((1.0 - pos_target) - q)
        else:
            m = _signal(kind, x, work[c, W_BASIS], boj, fed, jgb, ust, vol_pct,
                        cls_par[c, C_HEDGE0])
            mu = cls_par[c, C_MU]
            width = cls_par[c, C_WIDTH]
            phi0 = work[c, W_PHI0]
            z0 = work[c, W_Z0]
            lower = _crossed_share(m, mu, width, phi0, z0)
            if q < lower:
                target = lower
            else:
                upper = _crossed_share(m + cls_par[c, C_REENTRY], mu, width, phi0, z0)
                target = upper if q > upper else q
        qn = q + speed[c, CS_SPEED] * (target - q)
        work[c, W_QN] = qn
        dq = qn - q
        hs = cls_par[c, C_HEDGE_SHARE]
        h0 = cpp[c, CP_HOLDINGS]
        buying += h0 * dq * (cpp[c, CP_REPAT] * (1.0 - hs)
                             + hs * (cls_par[c, C_HEDGE_MAX] - cls_par[c, C_HEDGE0]))
    return buying, var


@njit(cache=True)
def _residual(g, st, cls_par, speed, cpp, work):
    """Psi(g) - g, where Psi(g) is log USD/JPY after the flows that the level g triggers."""
    buying, var = _investor_targets(g, st, cls_par, speed, cpp, work)
    st[ST_BUYING] = buying
    st[ST_VAR_NEW] = var
    return st[ST_XPRE] - price_impact(st[ST_EXTERNAL] + buying, st[ST_IMPACT], st[ST_LIMIT]) - g


@njit(cache=True)
def solve_step(st, cls_par, speed, cpp, work, max_iter, tol):
    """The within-step equilibrium: a level g with |Psi(g) - g| <= tol; returns (g, converged).

    The last evaluation is always at the returned level, so ``work[:, W_QN]``,
    ``st[ST_BUYING]`` and ``st[ST_VAR_NEW]`` hold the investors' response at that level.

    Plain iteration g <- Psi(g) starts from the level with official flows only, which is the
    path a market would take (tatonnement).  As soon as two iterates straddle a root, the root
    between them is found by the Illinois variant of regula falsi, so an oscillating iteration
    still converges and the root selected is the one the iteration reached.
    """
    g = st[ST_XPRE] - price_impact(st[ST_EXTERNAL], st[ST_IMPACT], st[ST_LIMIT])
    h = _residual(g, st, cls_par, speed, cpp, work)
    n = 1
    while abs(h) > tol and n < max_iter:
        g_next = g + h
        h_next = _residual(g_next, st, cls_par, speed, cpp, work)
        n += 1
        if (h_next > 0.0) != (h > 0.0) and abs(h_next) > tol:
            a, fa, b, fb = g, h, g_next, h_next
            while n < max_iter:
                c = b - fb * (b - a) / (fb - fa)
                fc = _residual(c, st, cls_par, speed, cpp, work)
                n += 1
                if abs(fc) <= tol or abs(b - a) <= tol:
                    return c, True  # within tol of a root: h is continuous and changes sign
                if (fc > 0.0) != (fb > 0.0):
                    a, fa = b, fb
                else:
                    fa *= 0.5
                b, fb = c, fc
            return b, False
        g, h = g_next, h_next
    return g, abs(h) <= tol


# ---------------------------------------------------------------------------------------
# One path.
# ---------------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _ou(x, mean, a, s, shock):
    return mean + (x - mean) * a + s * shock


@njit(cache=True)
def _decide(bank, gp, sched, t, col, rate, neutral, infl, act, logfx, since, stress, shock):
    """Policy decision of one central bank at step ``t``; returns (new rate, moved)."""
    o = G_BANK + bank * N_BANK
    kind = int(sched[t, col + 1])
    if kind == OVERRIDE_SCRIPTED:
        move = sched[t, col + 2]
    elif kind == OVERRIDE_PROBABILITY:
        move = sched[t, col + 2] if norm_cdf(shock) < sched[t, col + 3] else 0.0
    elif gp[G_DECISIONS] == 0.0:
        move = 0.0
    else:
        desired = (neutral + gp[o + B_PHI_PI] * infl + gp[o + B_PHI_Y] * act
                   + gp[o + B_PHI_FX] * 100.0 * (logfx - gp[o + B_LOGFX_REF]))
        latent = gp[o + B_RHO] * (desired - rate) + gp[o + B_NOISE] * shock
        if latent > gp[o + B_C50]:
            move = 0.5
        elif latent > gp[o + B_C25]:
            move = 0.25
        elif latent < -gp[o + B_C50]:
            move = -0.5
        elif latent < -gp[o + B_C25]:
            move = -0.25
        else:
            move = 0.0
        cap = gp[o + B_MAXMOVE]
        move = min(max(move, -cap), cap)
        if since < gp[o + B_SPACING]:
            move = 0.0
        if move > 0.0 and stress and gp[o + B_PAUSE] != 0.0:
            move = 0.0
    new = max(rate + move, gp[o + B_LB])
    return new, new != rate


@njit(cache=True)
def simulate_path(rng, gp, sched, chol, cls_par, cls_step, pp, cpp, o_path, o_cls, o_time,
                  z, e, work, st):
    """Simulate one path from the snapshot to the horizon, writing its outputs."""
    n_steps = sched.shape[0]
    n_cls = cls_par.shape[0]
    # Macro gaps (inflation and activity, Japan then US).
    jpi, jpa, usi, usa = gp[G_INIT_JPI], gp[G_INIT_JPA], gp[G_INIT_USI], gp[G_INIT_USA]
    boj, fed = gp[G_BOJ0], gp[G_FED0]
    rs_boj, rs_fed = pp[P_NEUTRAL_BOJ], pp[P_NEUTRAL_FED]
    expf = gp[G_EXP_FACTOR]
    tpj = gp[G_JGB0] - (rs_boj + (boj - rs_boj) * expf)
    tpu = gp[G_UST0] - (rs_fed + (fed - rs_fed) * expf)
    jgb, ust = gp[G_JGB0], gp[G_UST0]
    spread = ust - jgb
    x = gp[G_LOGFX0]
    st[ST_LOGFX0] = x
    var = gp[G_VAR0]
    transient = 0.0
    since_boj, since_fed = gp[G_BOJ_SINCE0], gp[G_FED_SINCE0]
    since_interv = gp[G_INT_SPACING]
    stress = False
    impact = pp[P_IMPACT]
    perm = gp[G_PERM_SHARE]
    pending_tpj = 0.0
    pending_tpu = 0.0
    vol0 = 100.0 * math.sqrt(var)
    for c in range(n_cls):
        work[c, W_Q] = 0.0
        work[c, W_HOLD] = cpp[c, CP_HOLDINGS]
        work[c, W_BASIS] = x
        kind = int(cls_par[c, C_SIGNAL])
        if kind == SIG_ALLOCATION:
            work[c, W_PHI0] = 0.0
            work[c, W_Z0] = -np.inf
        else:
            m0 = _signal(kind, x, x, boj, fed, jgb, ust, vol0, cls_par[c, C_HEDGE0])
            z0 = (m0 - cls_par[c, C_MU]) / cls_par[c, C_WIDTH]
            phi0 = norm_cdf(z0)
            work[c, W_PHI0] = min(phi0, 1.0 - 1e-12)
            # Below z0 the share is exactly zero; with phi0 clipped that shortcut would not hold.
            work[c, W_Z0] = z0 if phi0 < 1.0 - 1e-12 else -np.inf
        for k in range(N_OUT_CLS):
            o_cls[c, k] = 0.0
        o_cls[c, OC_HOLDINGS] = cpp[c, CP_HOLDINGS]
    cum_unwind = 0.0
    cum_repat = 0.0
    cum_hedge = 0.0
    peak_weekly = 0.0
    first_large = -1.0
    xmax = x
    largest_app = 0.0
    abs_total = 0.0
    abs_exo = 0.0
    stress_steps = 0
    nonconv = 0
    crashes = 0
    interventions = 0
    _record(o_time, 0, boj, fed, jgb, ust, spread, x, 0.0, 0.0, stress, var, jpi, jpa, usi, usa)

    for t in range(n_steps):
        dt = sched[t, S_DT]
        draw_step(rng, z)
        u_regime, u_crash, u_size = z[Z_REGIME], z[Z_CRASH], z[Z_SIZE]
        u_fiscal, u_interv = z[Z_FISCAL], z[Z_INTERV]
        if sched[t, S_EV_STRESS] != 0.0:
            stress = True  # a scripted stress event takes effect in its own step
        lower = chol[1] if stress else chol[0]
        for i in range(N_FACTORS):
            acc = 0.0
            for j in range(i + 1):
                acc += lower[i, j] * z[j]
            e[i] = acc

        # Macro drivers.
        jpi = _ou(jpi, gp[G_MEAN_JPI], sched[t, S_A0], sched[t, S_S0], e[0]) + sched[t, S_EV_JPI]
        jpa = _ou(jpa, gp[G_MEAN_JPA], sched[t, S_A1], sched[t, S_S1], e[1]) + sched[t, S_EV_JPA]
        usi = _ou(usi, gp[G_MEAN_USI], sched[t, S_A2], sched[t, S_S2], e[2]) + sched[t, S_EV_USI]
        usa = _ou(usa, gp[G_MEAN_USA], sched[t, S_A3], sched[t, S_S3], e[3]) + sched[t, S_EV_USA]

        # Policy rates on the meeting calendar.
        since_boj += dt
        since_fed += dt
        if sched[t, S_BOJ_MEET] != 0.0:
            boj, moved = _decide(0, gp, sched, t, S_BOJ_MEET, boj, rs_boj, jpi, jpa, x,
                                 since_boj, stress, z[7])
            if moved:
                since_boj = 0.0
        if sched[t, S_FED_MEET] != 0.0:
            fed, moved = _decide(1, gp, sched, t, S_FED_MEET, fed, rs_fed, usi, usa, x,
                                 since_fed, stress, z[8])
            if moved:
                since_fed = 0.0

        # Term premia and 10y yields.
        tpj = (_ou(tpj, gp[G_MEAN_TPJ], sched[t, S_A4], sched[t, S_S4], e[4])
               + sched[t, S_EV_TPJ] + pending_tpj)
        if u_fiscal < sched[t, S_P_FISCAL]:
            tpj += gp[G_FISCAL_SIZE]
        tpu = (_ou(tpu, gp[G_MEAN_TPU], sched[t, S_A5], sched[t, S_S5], e[5])
               + sched[t, S_EV_TPU] + pending_tpu)
        jgb = rs_boj + (boj - rs_boj) * expf + tpj
        ust = rs_fed + (fed - rs_fed) * expf + tpu
        new_spread = ust - jgb
        d_spread = new_spread - spread
        spread = new_spread

        # USD/JPY before this step's flows.
        vol = gp[G_VOL_STRESS] if stress else gp[G_VOL_CALM]
        crowd = 0.0
        for c in range(n_cls):
            if cls_par[c, C_CARRY] != 0.0:
                crowd += work[c, W_HOLD]
        lam = gp[G_CRASH_LAMBDA] * math.exp(gp[G_CRASH_GAMMA] * (crowd / gp[G_CROWD_REF] - 1.0))
        crash = u_crash < 1.0 - math.exp(-lam * dt)
        jump = gp[G_CRASH_SIZE] * -math.log(u_size) if crash else 0.0
        dx_exo = (gp[G_ETA] * d_spread + vol * sched[t, S_SQDT] * e[6] - jump
                  + math.log1p(sched[t, S_EV_FX] / 100.0))
        external = sched[t, S_EV_INT]
        since_interv += dt
        if (gp[G_INT_ON] != 0.0 and x > gp[G_INT_LOGLEVEL] and since_interv >= gp[G_INT_SPACING]
                and u_interv < sched[t, S_P_INTERV]):
            external += gp[G_INT_SIZE]
            interventions += 1
            since_interv = 0.0
        decayed = transient * sched[t, S_DECAY]
        x_pre = x + dx_exo + (decayed - transient)

        # Within-step feedback (flows move the yen, the yen moves signals, signals move flows):
        # solve for the level at which flows and the yen agree, then commit the flows there.
        speed = cls_step[t]
        limit = gp[G_IMPACT_LIMIT]
        st[ST_XPRE] = x_pre
        st[ST_EXTERNAL] = external
        st[ST_IMPACT] = impact
        st[ST_LIMIT] = limit
        st[ST_X] = x
        st[ST_VAR] = var
        st[ST_DT] = dt
        st[ST_EWMA] = sched[t, S_EWMA]
        st[ST_BOJ] = boj
        st[ST_FED] = fed
        st[ST_JGB] = jgb
        st[ST_UST] = ust
        level, converged = solve_step(st, cls_par, speed, cpp, work, int(gp[G_MAX_ITER]), gp[G_TOL])
        if not converged:
            nonconv += 1
        var = st[ST_VAR_NEW]
        flow = external + st[ST_BUYING]
        # Permanent and transient parts of the impact; with zero impact, move == dx_exo exactly.
        total_impact = price_impact(flow, impact, limit)
        move = dx_exo + (decayed - transient) - total_impact
        transient = decayed - (1.0 - perm) * total_impact
        x_new = x + move

        # Commit the investors' step.
        step_unwind = 0.0
        step_repat = 0.0
        bonds_sold = 0.0
        bonds_home = 0.0
        for c in range(n_cls):
            dq = work[c, W_QN] - work[c, W_Q]
            work[c, W_Q] = work[c, W_QN]
            h0 = cpp[c, CP_HOLDINGS]
            hs = cls_par[c, C_HEDGE_SHARE]
            unwind = h0 * (1.0 - hs) * dq
            repat = cpp[c, CP_REPAT] * unwind
            hedge = h0 * hs * (cls_par[c, C_HEDGE_MAX] - cls_par[c, C_HEDGE0]) * dq
            work[c, W_HOLD] -= unwind
            o_cls[c, OC_UNWIND] += unwind
            o_cls[c, OC_REPAT] += repat
            o_cls[c, OC_HEDGE] += hedge
            step_unwind += unwind
            step_repat += repat
            cum_hedge += hedge
            bonds_sold += cls_par[c, C_BOND] * unwind
            bonds_home += cls_par[c, C_BOND] * repat
            work[c, W_BASIS] += cls_step[t, c, CS_BASIS] * (x_new - work[c, W_BASIS])
        pending_tpu = gp[G_BETA_UST] * bonds_sold / 1000.0
        pending_tpj = -gp[G_BETA_JGB] * bonds_home / 1000.0
        cum_unwind += step_unwind
        cum_repat += step_repat
        weekly = step_unwind / sched[t, S_WEEKS]
        if weekly > peak_weekly:
            peak_weekly = weekly
        if first_large < 0.0 and weekly > gp[G_LARGE_WEEKLY]:
            first_large = t + 1.0

        # Trackers and the volatility regime for the next step.
        abs_total += abs(move)
        abs_exo += abs(dx_exo)
        x = x_new
        if x > xmax:
            xmax = x
        app = 100.0 * (1.0 - math.exp(x - xmax))
        if app > largest_app:
            largest_app = app
        if stress:
            stress_steps += 1
        if crash:
            crashes += 1
        # A crash or a scripted stress event starts (or prolongs) stress; a large yen rally
        # starts it from calm; otherwise the regime switches with its Markov probabilities.
        trigger = -move > gp[G_STRESS_TRIGGER] * math.sqrt(sched[t, S_WEEKS])
        if crash or sched[t, S_EV_STRESS] != 0.0:
            stress = True
        elif stress:
            stress = not (u_regime < sched[t, S_P_STRESS2CALM])
        else:
            stress = trigger or u_regime < sched[t, S_P_CALM2STRESS]
        _record(o_time, t + 1, boj, fed, jgb, ust, spread, x, cum_unwind, cum_repat, stress, var,
                jpi, jpa, usi, usa)
        # Numerical guard: stop the path at the first non-finite state and report the step.
        state = x + var + jgb + ust + boj + fed + cum_unwind + cum_repat + cum_hedge + jpi + jpa + usi + usa
        if not math.isfinite(state):
            o_path[O_FAIL_STEP] = t + 1
            return

    for c in range(n_cls):
        o_cls[c, OC_HOLDINGS] = work[c, W_HOLD]
    o_path[O_UNWIND] = cum_unwind
    o_path[O_REPAT] = cum_repat
    o_path[O_HEDGE] = cum_hedge
    o_path[O_PEAK_WEEKLY] = peak_weekly
    o_path[O_FIRST_LARGE] = first_large
    o_path[O_LARGEST_APP] = largest_app
    o_path[O_AMPLIFICATION] = abs_total / abs_exo if abs_exo > 0.0 else 1.0
    o_path[O_STRESS_SHARE] = stress_steps / n_steps
    o_path[O_NONCONV] = nonconv
    o_path[O_CRASHES] = crashes
    o_path[O_INTERVENTIONS] = interventions
    o_path[O_FAIL_STEP] = 0.0
    o_path[O_BOJ_END] = boj
    o_path[O_FED_END] = fed
    o_path[O_JGB_END] = jgb
    o_path[O_UST_END] = ust
    o_path[O_SPREAD_END] = spread
    o_path[O_USDJPY_END] = math.exp(x)


@njit(cache=True, inline="always")
def _record(o_time, i, boj, fed, jgb, ust, spread, x, unwind, repat, stress, var,
            jpi, jpa, usi, usa):
    o_time[i, V_BOJ] = boj
    o_time[i, V_FED] = fed
    o_time[i, V_JGB] = jgb
    o_time[i, V_UST] = ust
    o_time[i, V_SPREAD] = spread
    o_time[i, V_USDJPY] = math.exp(x)
    o_time[i, V_UNWIND] = unwind
    o_time[i, V_REPAT] = repat
    o_time[i, V_STRESS] = 1.0 if stress else 0.0
    o_time[i, V_FXVOL] = 100.0 * math.sqrt(var)
    o_time[i, V_JPI] = jpi
    o_time[i, V_JPA] = jpa
    o_time[i, V_USI] = usi
    o_time[i, V_USA] = usa


@njit(cache=True, parallel=True)
def simulate_chunk(seeds, block_size, shared, per_path, outs):
    """Simulate the paths of one chunk: ``prange`` over its blocks of ``block_size`` paths.

    seeds    : uint64[n_blocks, 4], the xoshiro state of each block (by global block index)
    shared   : (gp, sched, chol, cls_par, cls_step)
    per_path : (path_par, cls_path_par), rows indexed by the chunk's path number
    outs     : (out_path, out_cls, out_time), written row by row
    """
    gp, sched, chol, cls_par, cls_step = shared
    path_par, cls_path_par = per_path
    out_path, out_cls, out_time = outs
    n_paths = out_path.shape[0]
    n_cls = cls_par.shape[0]
    for b in prange(seeds.shape[0]):
        rng = seeds[b].copy()
        z = np.empty(N_DRAWS)
        e = np.empty(N_FACTORS)
        work = np.empty((n_cls, N_WORK))
        st = np.empty(N_ST)
        stop = min((b + 1) * block_size, n_paths)
        for p in range(b * block_size, stop):
            simulate_path(rng, gp, sched, chol, cls_par, cls_step, path_par[p], cls_path_par[p],
                          out_path[p], out_cls[p], out_time[p], z, e, work, st)
