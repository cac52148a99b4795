"""Numba kernels: the model's time stepping, and nothing else.

Everything here is a pure function of arrays, records and scalars.  The records are the
structured dtypes of :mod:`sim.layout` and are read by field name; :mod:`sim.inputs` fills the
input records and :mod:`sim.engine` allocates the output records, and the kernel writes only
the rows of its own paths.  Parallelism lives in one place: ``prange`` over fixed-size blocks
of paths in :func:`simulate_chunk`.  Each block owns a xoshiro256** random stream seeded from
``numpy.random.SeedSequence`` by its global block index, so results do not depend on the number
of threads or on how blocks are grouped into chunks.

Every path draws the same fixed sequence of random numbers per step (``layout.DRAWS``), whatever
the parameter values, the scripted events or the investor classes: variants share their shocks
(common random numbers).  The equations are documented in docs/model.md.

Every kernel compiles with numba's ``error_model="numpy"``: a division by zero gives an
infinity or NaN instead of raising, so parameters too extreme for the model end as a non-finite
state, which :func:`simulate_path` reports as the path's failing step (``fail_step``).

Small groups of scalars travel as named tuples (``Rates``, ``Market``, ``Seen``, ``Shocks``),
which numba passes by value, so no function takes more than six arguments; the within-step
solver returns what it computed.
"""
from __future__ import annotations

import math
from collections import namedtuple
from functools import partial

import numba
import numpy as np
from numba import njit, prange

from sim.layout import HOLDER, N_FACTORS, OVERRIDES, SIGNAL_KINDS

#: How every function here compiles (the module docstring says why the numpy error model).
kernel = partial(njit, cache=True, error_model="numpy")

HOLDER_TYPE = numba.from_dtype(HOLDER)
CARRY_TO_RISK = SIGNAL_KINDS.index("carry_to_risk")
DRAWDOWN = SIGNAL_KINDS.index("drawdown")
HEDGED_PICKUP = SIGNAL_KINDS.index("hedged_pickup")
ALLOCATION = SIGNAL_KINDS.index("allocation_drift")
SCRIPTED = OVERRIDES.index("scripted")
PROBABILITY = OVERRIDES.index("probability")

#: The draws of one step besides the seven factor normals (layout.DRAWS gives the order).
Shocks = namedtuple("Shocks", "boj_decision fed_decision vol_shock regime crash crash_size fiscal "
                              "intervention")
#: Policy rates and 10y yields, % p.a.
Rates = namedtuple("Rates", "boj fed jgb ust")
#: What the solver of one sub-step sees: log USD/JPY after the sub-step's exogenous move and
#: official flows (x_off), the price impact of private flows and its linear limit (per week),
#: log USD/JPY and realised variance at the last weekly check point (x, var), the time from it
#: to the sub-step's end (dt, years), the sub-step's length in weeks, the EWMA weight of var,
#: the snapshot's log USD/JPY, the rates, and log USD/JPY at the sub-step's start (x_start).
Market = namedtuple("Market", "x_off impact limit x var dt weeks ewma logfx0 rates x_start")
#: The investor classes in one sub-step: CLASS records, CLASS_STEP records of the sub-step,
#: the path's CLASS_PARAM records and its HOLDER state.
Investors = namedtuple("Investors", "classes speeds params holders")
#: What a central bank sees at a meeting.
Seen = namedtuple("Seen", "rate neutral inflation activity logfx since stress shock")


# ---------------------------------------------------------------------------------------
# Random numbers: xoshiro256** (Blackman and Vigna), uniforms, polar-method normals.
# ---------------------------------------------------------------------------------------
@kernel(inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@kernel(inline="always")
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


@kernel(inline="always")
def uniform(s):
    """A uniform draw on the open interval (0, 1) with 53 random bits."""
    return (float(next_u64(s) >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@kernel(inline="always")
def normal_pair(s):
    """Two independent standard normals (Marsaglia's polar method)."""
    while True:
        u = 2.0 * uniform(s) - 1.0
        v = 2.0 * uniform(s) - 1.0
        r2 = u * u + v * v
        if r2 < 1.0:
            f = math.sqrt(-2.0 * math.log(r2) / r2)
            return u * f, v * f


@kernel(inline="always")
def draw_step(rng, factors):
    """All random numbers of one path-step, always the same count and order (layout.DRAWS).

    Writes the seven independent factor normals into ``factors`` and returns the other draws.
    """
    factors[0], factors[1] = normal_pair(rng)
    factors[2], factors[3] = normal_pair(rng)
    factors[4], factors[5] = normal_pair(rng)
    factors[6], boj = normal_pair(rng)
    fed, vol_shock = normal_pair(rng)
    regime = uniform(rng)
    crash = uniform(rng)
    crash_size = uniform(rng)
    fiscal = uniform(rng)
    intervention = uniform(rng)
    return Shocks(boj, fed, vol_shock, regime, crash, crash_size, fiscal, intervention)


@kernel(parallel=True)
def draw_shocks(seeds, block_size, n_paths, out):
    """The draws ``simulate_chunk`` makes, path by path, into DRAWS records out[path, step]."""
    for b in prange(seeds.shape[0]):
        _draw_block(seeds[b].copy(), b * block_size, min((b + 1) * block_size, n_paths), out)


@kernel()
def _draw_block(rng, first, stop, out):
    for p in range(first, stop):
        for t in range(out.shape[1]):
            rec = out[p, t]
            s = draw_step(rng, rec.factor)
            rec.boj_decision = s.boj_decision
            rec.fed_decision = s.fed_decision
            rec.vol_shock = s.vol_shock
            rec.regime = s.regime
            rec.crash = s.crash
            rec.crash_size = s.crash_size
            rec.fiscal = s.fiscal
            rec.intervention = s.intervention


# ---------------------------------------------------------------------------------------
# The standard normal distribution function: a table with quintic Hermite interpolation.
# ---------------------------------------------------------------------------------------
#: Beyond +-CDF_LIMIT the distribution function is taken as exactly 1 or 0 (the tail mass there
#: is 3.2e-14); inside, nodes every CDF_STEP carry the function, its density and the density's
#: derivative, and each interval holds the quintic Hermite polynomial through them.
CDF_LIMIT = 7.5
CDF_STEP = 1.0 / 32.0


def _cdf_table() -> np.ndarray:
    """Power-basis coefficients (intervals x 6) of the quintic Hermite interpolant of the
    standard normal distribution function in t = (x - node) / CDF_STEP on [0, 1]."""
    n = int(round(2.0 * CDF_LIMIT / CDF_STEP))
    x = -CDF_LIMIT + CDF_STEP * np.arange(n + 1)
    p = np.array([0.5 * math.erfc(-v * 0.7071067811865476) for v in x])
    density = 0.3989422804014327 * np.exp(-0.5 * x * x)
    d = CDF_STEP * density                        # first derivative in t
    s = CDF_STEP * CDF_STEP * -x * density        # second derivative in t
    rise = p[1:] - p[:-1]
    c = np.empty((n, 6))
    c[:, 0] = p[:-1]
    c[:, 1] = d[:-1]
    c[:, 2] = 0.5 * s[:-1]
    c[:, 3] = 10.0 * rise - 6.0 * d[:-1] - 4.0 * d[1:] - 1.5 * s[:-1] + 0.5 * s[1:]
    c[:, 4] = -15.0 * rise + 8.0 * d[:-1] + 7.0 * d[1:] + 1.5 * s[:-1] - s[1:]
    c[:, 5] = 6.0 * rise - 3.0 * d[:-1] - 3.0 * d[1:] - 0.5 * s[:-1] + 0.5 * s[1:]
    return c


CDF_TABLE = _cdf_table()
_CDF_INTERVALS = CDF_TABLE.shape[0]


@kernel(inline="always")
def norm_cdf_pdf(x):
    """The standard normal distribution function at ``x`` (absolute error below 1e-13 on the
    whole real line, tests/test_cdf.py) and the derivative of that interpolant, the density
    (error below 1e-10).  NaN gives NaN."""
    if x >= CDF_LIMIT:
        return 1.0, 0.0
    if x <= -CDF_LIMIT:
        return 0.0, 0.0
    if x != x:
        return x, x
    u = (x + CDF_LIMIT) * (1.0 / CDF_STEP)
    i = min(int(u), _CDF_INTERVALS - 1)
    t = u - i
    c = CDF_TABLE[i]
    cdf = ((((c[5] * t + c[4]) * t + c[3]) * t + c[2]) * t + c[1]) * t + c[0]
    slope = (((5.0 * c[5] * t + 4.0 * c[4]) * t + 3.0 * c[3]) * t + 2.0 * c[2]) * t + c[1]
    return cdf, slope * (1.0 / CDF_STEP)


@kernel(inline="always")
def norm_cdf(x):
    """The standard normal distribution function (see :func:`norm_cdf_pdf`)."""
    return norm_cdf_pdf(x)[0]


@kernel(parallel=True)
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
@kernel(inline="always")
def price_impact(flow, k, limit):
    """Log fall of USD/JPY caused by ``flow`` USD bn of yen buying.

    Linear (``k`` per USD bn) up to ``limit``, the size of a typical intervention, and growing
    with the square root of the flow beyond it.
    """
    size = abs(flow)
    if size <= limit:
        return k * flow
    return math.copysign(k * limit * math.sqrt(size / limit), flow)


@kernel(inline="always")
def private_impact(flow, k, limit, weeks):
    """Log fall of USD/JPY caused by ``flow`` USD bn of private yen buying in a step of
    ``weeks`` weeks: the concave impact applies to the flow per week, so a constant flow moves
    USD/JPY alike on any grid."""
    return weeks * price_impact(flow / weeks, k, limit)


@kernel(inline="always")
def official_impact(flow, k, limit, announcement):
    """Log fall of USD/JPY caused by an official purchase of ``flow`` USD bn of yen in one
    step: the concave impact of its size plus the announcement (signalling) effect."""
    if flow == 0.0:
        return 0.0
    return price_impact(flow, k, limit) + math.copysign(announcement, flow)


@kernel(inline="always")
def _crossed_share(m, mu, width, phi0, z0, rebuild):
    """Share of a class's snapshot holdings whose holders' threshold the signal ``m`` has
    crossed, and its derivative in ``m``; the share is negative (holdings above the
    snapshot's) for a class that rebuilds.

    Thresholds are Normal(mu, width) across potential holders, mu being the snapshot signal
    plus the class's threshold distance; those holding at the snapshot are the ones whose
    threshold lies above the exit edge (the snapshot signal plus half the re-entry gap), a
    share 1 - ``phi0`` of them.  Below that edge a rebuilding class gains the holders whose
    threshold the signal has fallen back under (down to -phi0 / (1 - phi0)); any other class
    stays at zero.
    """
    z = (m - mu) / width
    if z <= z0 and not rebuild:  # not past the exit edge: nobody has crossed
        return 0.0, 0.0
    cdf, pdf = norm_cdf_pdf(z)
    share = (cdf - phi0) / (1.0 - phi0)
    slope = pdf / (width * (1.0 - phi0))
    if rebuild or share > 0.0:
        return share, slope
    return 0.0, 0.0


@kernel(inline="always")
def _hedge_ratio(cls, q):
    """FX hedge ratio of a class (CLASS record) at exit share ``q``: a class that hedges
    (hedge_share > 0) moves from its snapshot ratio towards max_hedge_ratio as it responds."""
    if cls.hedge_share > 0.0:
        return cls.hedge_ratio + (cls.max_hedge_ratio - cls.hedge_ratio) * min(max(q, 0.0), 1.0)
    return cls.hedge_ratio


@kernel(inline="always")
def _signal(cls, x, basis, rates, vol_pct):
    """Decision signal of a threshold class (a CLASS record), oriented so that higher means
    'get out'.

    The hedged pick-up charges the class's hedge ratio times the policy-rate differential (the
    cost of an FX hedge) against the 10y spread.
    """
    kind = cls.signal
    if kind == CARRY_TO_RISK:
        return -(rates.fed - rates.boj) / max(vol_pct, 0.5)
    if kind == DRAWDOWN:
        return 100.0 * (basis - x)
    if kind == HEDGED_PICKUP:
        return -(rates.ust - rates.jgb - cls.hedge_ratio * (rates.fed - rates.boj))
    return rates.jgb  # yield_level


@kernel(inline="always")
def _signal_slope(cls, rates, vol_pct, dvol):
    """Derivative of :func:`_signal` in log USD/JPY, given that of the FX vol (``dvol``, % per
    unit of log USD/JPY); zero for the signals that do not depend on the level."""
    kind = cls.signal
    if kind == CARRY_TO_RISK:
        return (rates.fed - rates.boj) * dvol / (vol_pct * vol_pct) if vol_pct > 0.5 else 0.0
    if kind == DRAWDOWN:
        return -100.0
    return 0.0


@kernel(inline="always")
def crash_hazard(g, classes, holders, dt, hazard, u):
    """One sub-step of length ``dt`` (years) of the crash process, given no crash yet in the
    step: the intensity follows the carry classes' holdings at the sub-step's start (section
    6.2), ``hazard`` is the step's cumulative hazard before it, and the step's crash uniform
    ``u`` falls in this sub-step when it lies below the probability of a first crash by its end
    (the inverse transform of the first crash's time: one uniform a step, and on a one-sub-step
    grid exactly the rule u < 1 - exp(-lambda dt)).  Returns (the jumps' compensator for the
    sub-step, in log points: the chance of a crash in it given none before, times the mean
    size; the cumulative hazard; whether the crash falls here)."""
    crowd = 0.0
    for c in range(classes.shape[0]):
        if classes[c].carry:
            crowd += holders[c].holdings
    lam = g.crash_intensity * math.exp(g.crash_crowding * (crowd / g.crowding_reference - 1.0))
    h = lam * dt
    hazard += h
    return (1.0 - math.exp(-h)) * g.crash_mean_size, hazard, u < 1.0 - math.exp(-hazard)


@kernel(inline="always")
def _ewma_variance(var, ewma, r, dt):
    """Realised variance after a move ``r`` over ``dt`` years since the last weekly check point,
    from the variance ``var`` there and the EWMA weight ``ewma`` of that time."""
    return ewma * var + (1.0 - ewma) * r * r / dt


@kernel(inline="always")
def moves_with_level(cls):
    """Whether a class's target depends on the level within a sub-step (its signal or, for
    allocation drift, its foreign weight); the others' targets are fixed for the sub-step."""
    return cls.signal == CARRY_TO_RISK or cls.signal == DRAWDOWN or cls.signal == ALLOCATION


@kernel()
def _investor_targets(x, market, inv, again):
    """Candidate exit shares of every class at log USD/JPY ``x``; returns (yen bought, var,
    derivative of the yen bought in x).

    Writes the candidate share of each class into ``inv.holders[c].q_new`` and its spot yen
    buying into ``buying_new``; nothing is committed.  The realised variance includes the
    candidate return since the last weekly check point.  With ``again`` (a later evaluation in
    the same sub-step), classes
    whose target does not depend on the level keep what the previous evaluation wrote: the
    same numbers, summed in the same order.
    """
    var = _ewma_variance(market.var, market.ewma, x - market.x, market.dt)
    buying = 0.0
    slope = 0.0
    for c in range(inv.classes.shape[0]):
        cls = inv.classes[c]
        h = inv.holders[c]
        if again and not moves_with_level(cls):
            buying += h.buying_new
            continue
        q = h.q
        # The class reads the level (and the realised vol) at its point of the sub-step, where
        # the weights of its adjustment centre (CLASS_STEP.timing): the sub-step's path is
        # linear from x_start to x; d(level)/dx = timing.
        sp = inv.speeds[c]
        timing = sp.timing
        xc = market.x_start + timing * (x - market.x_start)
        if cls.signal == ALLOCATION:
            # Band rebalancing of a pension fund towards its policy weight.
            # Wealth at current prices is 1 - w0 + w0 * ratio whatever has been sold (trades
            # are self-financing); the foreign weight is the held foreign part of it.
            w0 = cls.foreign_weight
            wt = cls.target_weight
            ratio = math.exp(xc - market.logfx0)
            wealth = 1.0 - w0 + w0 * ratio
            drift = 100.0 * (w0 * (1.0 - q) * ratio / wealth - wt)
            pos_target = wt * wealth / (w0 * ratio)
            act, density = norm_cdf_pdf((abs(drift) - cls.threshold_mean) / cls.threshold_width)
            target = q + act * ((1.0 - pos_target) - q)
            d_drift = 100.0 * w0 * (1.0 - q) * ratio * (1.0 - w0) / (wealth * wealth)
            d_act = math.copysign(density / cls.threshold_width, drift) * d_drift
            d_target = timing * (d_act * ((1.0 - pos_target) - q)
                                 + act * wt * (1.0 - w0) / (w0 * ratio))
        else:
            vol_pct = 0.0
            dvol = 0.0
            if cls.signal == CARRY_TO_RISK:
                rc = xc - market.x
                var_c = _ewma_variance(market.var, sp.ewma_at, rc, sp.since_at)
                vol_pct = 100.0 * math.sqrt(var_c)
                if var_c > 0.0:
                    dvol = 100.0 * (1.0 - sp.ewma_at) * rc / (sp.since_at * math.sqrt(var_c))
            m = _signal(cls, xc, h.basis, market.rates, vol_pct)
            dm = timing * _signal_slope(cls, market.rates, vol_pct, dvol)
            width = cls.threshold_width
            lower, d_lower = _crossed_share(m, h.mu, width, h.phi0, h.z0, cls.carry)
            if q < lower:
                target, d_target = lower, d_lower * dm
            else:
                upper, d_upper = _crossed_share(m + cls.reentry_gap, h.mu, width, h.phi0, h.z0,
                                                cls.carry)
                if q > upper:
                    target, d_target = upper, d_upper * dm
                else:
                    target, d_target = q, 0.0
        # Exits at the class's adjustment speed, re-entry at its rebuild speed.
        speed = inv.speeds[c].speed if target >= q else inv.speeds[c].rebuild_speed
        qn = q + speed * (target - q)
        d_qn = speed * d_target
        h.q_new = qn
        par = inv.params[c]
        # Spot yen bought: the unhedged, repatriated part of a sale (a hedged asset's sale
        # unwinds its hedge instead), plus the holdings left times the rise of the hedge ratio;
        # only the class's spot footprint of it reaches the spot market.
        sold = par.holdings * (1.0 - cls.hedge_share) * (qn - q)
        d_sold = par.holdings * (1.0 - cls.hedge_share) * d_qn
        hedge_new = _hedge_ratio(cls, qn)
        d_hedge = 0.0
        if cls.hedge_share > 0.0 and 0.0 < qn < 1.0:
            d_hedge = (cls.max_hedge_ratio - cls.hedge_ratio) * d_qn
        flow = cls.spot_footprint * (sold * (1.0 - h.hedge) * par.repatriation
                                     + (h.holdings - sold) * (hedge_new - h.hedge))
        h.buying_new = flow
        buying += flow
        slope += cls.spot_footprint * (d_sold * (1.0 - h.hedge) * par.repatriation
                                       - d_sold * (hedge_new - h.hedge)
                                       + (h.holdings - sold) * d_hedge)
    return buying, var, slope


@kernel(inline="always")
def private_impact_slope(flow, k, limit, weeks):
    """Derivative of :func:`private_impact` in the flow."""
    size = abs(flow / weeks)
    if size <= limit:
        return k
    return 0.5 * k / math.sqrt(size / limit)


@kernel()
def _residual(g, market, inv, again):
    """Psi(g) - g, where Psi(g) is log USD/JPY after the flows that the level g triggers;
    returns it with the investors' yen buying, the variance at g and the residual's
    derivative in g."""
    buying, var, slope = _investor_targets(g, market, inv, again)
    h = market.x_off - private_impact(buying, market.impact, market.limit, market.weeks) - g
    dh = -private_impact_slope(buying, market.impact, market.limit, market.weeks) * slope - 1.0
    return h, buying, var, dh


#: Before a root is bracketed, a Newton step is at most this many times the plain step g + h,
#: or at most NEWTON_SHORT (log USD/JPY) long; where the residual is flatter (h' > -1 /
#: NEWTON_REACH) and the Newton step longer, the solver takes the plain step.  Near a loop gain
#: of one the plain step shrinks |h| by only |h'| a step: the short Newton step finishes there.
NEWTON_REACH = 16.0
NEWTON_SHORT = 1e-3


#: The residual counts as linear between the last two points when the secant's slope is
#: within this share of the analytic slope at both.
LINEAR_SLOPE = 0.1


@kernel(inline="always")
def unbracketed_newton(h, dh, failed, newton, linear):
    """Whether the next unbracketed step from a point with residual ``h`` and slope ``dh`` is
    Newton's, given whether the last step failed to halve |h| (``failed``), whether it was
    Newton's (``newton``) and whether the residual was linear over it (``linear``).  A Newton
    step goes in the direction of h (dh < 0) and is at most NEWTON_REACH plain steps or
    NEWTON_SHORT long.  After a failed Newton step the next step is plain; after a failed plain
    step only a short Newton step where the residual has been linear: that is a crawl near a
    loop gain of one, where Newton's step is exact, while with curvature it could jump a pair of
    close roots."""
    short = dh < 0.0 and abs(h) <= -NEWTON_SHORT * dh
    if failed:
        return short and linear and not newton
    return dh < -1.0 / NEWTON_REACH or short


@kernel(inline="always")
def is_linear(g0, h0, dh0, g1, h1, dh1):
    """Whether the secant through (g0, h0) and (g1, h1) has the analytic slope at both ends,
    within LINEAR_SLOPE."""
    if g1 == g0:
        return False
    sec = (h1 - h0) / (g1 - g0)
    return (abs(sec - dh0) <= LINEAR_SLOPE * abs(dh0)
            and abs(sec - dh1) <= LINEAR_SLOPE * abs(dh1))


@kernel()
def solve_step(market, inv, max_iter, tol):
    """The equilibrium of one sub-step (section 8.1 of docs/model.md): a level g with
    |Psi(g) - g| <= tol.

    Returns (g, converged, yen bought, variance, evaluations), the yen bought and variance
    being the investors' response at g, whose candidate shares are in ``inv.holders.q_new``
    (the last evaluation is always at the returned level).

    The search starts from the level with official flows only, where a market would start to
    grope (tatonnement), and moves by Newton steps g - h / h' on the residual h(g) = Psi(g) - g,
    whose derivative h' is analytic (docs/model.md, section 8).  Where h' > -1 / NEWTON_REACH
    (the flows' feedback near or beyond one for one, where a Newton step would reach far)
    unless h' < 0 and the Newton step is shorter than NEWTON_SHORT, and after a step that
    failed to halve |h| (unless it was a plain step over which the residual was linear and the
    Newton step is short), it takes the plain iteration step g + h (:func:`unbracketed_newton`).
    As soon as
    two iterates straddle a root, the solver keeps that bracket: a Newton step is taken when it
    lands strictly inside it and the previous step halved |h|, and otherwise the Illinois
    variant of regula falsi.  The root selected is the first one on the way from the start
    except where steps jump over a pair of close roots (docs/model.md).
    """
    g = market.x_off
    h, buying, var, dh = _residual(g, market, inv, False)
    n = 1
    plain = False  # the previous step failed to halve |h|
    newton = False  # the previous step was Newton's
    linear = False  # the residual was linear over the previous step
    bracketed = False
    a = fa = b = fb = 0.0
    while abs(h) > tol and n < max_iter:
        if not bracketed:
            newton = unbracketed_newton(h, dh, plain, newton, linear)
            if newton:
                g_next = g - h / dh
            else:
                g_next = g + h
            h_next, buying, var, dh_next = _residual(g_next, market, inv, True)
            n += 1
            if (h_next > 0.0) != (h > 0.0) and abs(h_next) > tol:
                bracketed = True
                a, fa, b, fb = g, h, g_next, h_next
            plain = not abs(h_next) <= 0.5 * abs(h)
            # read only after a failed step (unbracketed_newton): not computed otherwise
            linear = plain and is_linear(g, h, dh, g_next, h_next, dh_next)
            g, h, dh = g_next, h_next, dh_next
            continue
        # Bracketed: [a, b] holds the root, b is the last point.
        lo, hi = min(a, b), max(a, b)
        c = b - fb / dh if dh != 0.0 else lo
        if plain or not lo < c < hi:
            c = b - fb * (b - a) / (fb - fa)
        fc, buying, var, dc = _residual(c, market, inv, True)
        n += 1
        g, h = c, fc
        if abs(fc) <= tol or abs(b - a) <= tol:
            return c, True, buying, var, n  # within tol of a root: h changes sign
        plain = not abs(fc) <= 0.5 * abs(fb)
        if (fc > 0.0) != (fb > 0.0):
            a, fa = b, fb
        else:
            fa *= 0.5
        b, fb, dh = c, fc, dc
    return g, abs(h) <= tol, buying, var, n


# ---------------------------------------------------------------------------------------
# One path.
# ---------------------------------------------------------------------------------------
@kernel(inline="always")
def _ou(x, mean, a, s, shock):
    return mean + (x - mean) * a + s * shock


@kernel()
def _decide(bank, meeting, rules_on, seen):
    """Decision of a central bank (BANK record) at a meeting (MEETING record); returns
    (new rate, moved)."""
    if meeting.override == SCRIPTED:
        move = meeting.move
    elif meeting.override == PROBABILITY:
        move = meeting.move if norm_cdf(seen.shock) < meeting.probability else 0.0
    elif not rules_on:
        move = 0.0
    else:
        desired = (seen.neutral + bank.inflation_response * seen.inflation
                   + bank.activity_response * seen.activity
                   + bank.fx_response * 100.0 * (seen.logfx - bank.logfx_reference))
        latent = bank.smoothing * (desired - seen.rate) + bank.decision_noise * seen.shock
        if seen.since < bank.min_spacing:
            # Within the preferred spacing a move needs a stronger case: the penalty comes off
            # the pressure in either direction.
            pressure = abs(latent) - bank.spacing_penalty
            latent = math.copysign(pressure, latent) if pressure > 0.0 else 0.0
        if latent > bank.threshold_50:
            move = 0.5
        elif latent > bank.threshold_25:
            move = 0.25
        elif latent < -bank.threshold_50:
            move = -0.5
        elif latent < -bank.threshold_25:
            move = -0.25
        else:
            move = 0.0
        cap = bank.max_move
        move = min(max(move, -cap), cap)
        if move > 0.0 and seen.stress and bank.pause_in_stress:
            move = 0.0
    # The bound stops cuts; it never lifts a rate already below it (the BoJ's -0.1% of
    # 2016-2024 at a snapshot from the data).
    new = max(seen.rate + move, min(bank.lower_bound, seen.rate))
    return new, new != seen.rate


@kernel(inline="always")
def meeting_sub(meeting):
    """The sub-step of a step from which its meeting's decision holds (the meeting's business
    day, MEETING.sub); 0 without a meeting (the rate does not move)."""
    return meeting.sub if meeting.meets else 0


@kernel(inline="always")
def rates_within(prev, new, j, n_sub, boj_from, fed_from):
    """The rates investors read in sub-step ``j`` of ``n_sub`` of a step that moves them from
    ``prev`` to ``new``: the 10y yields evenly over the sub-steps, as USD/JPY's spread term
    moves, and each policy rate from its meeting's sub-step; the last sub-step reads ``new``."""
    w = (j + 1.0) / n_sub
    return Rates(new.boj if j >= boj_from else prev.boj, new.fed if j >= fed_from else prev.fed,
                 prev.jgb + w * (new.jgb - prev.jgb), prev.ust + w * (new.ust - prev.ust))


@kernel(inline="always")
def _record(row, rates, gaps, fx, flows):
    """Write one date of a path into its TIME_OUT record ``row``.

    gaps: (Japanese inflation, Japanese activity, US inflation, US activity);
    fx: (log USD/JPY, variance, stress); flows: (cumulative unwind, cumulative repatriation).
    """
    x, var, stress = fx
    unwind, repatriation = flows
    jp_inflation, jp_activity, us_inflation, us_activity = gaps
    row.boj_rate = rates.boj
    row.fed_rate = rates.fed
    row.jgb10 = rates.jgb
    row.ust10 = rates.ust
    row.spread = rates.ust - rates.jgb
    row.usdjpy = math.exp(x)
    row.unwind = unwind
    row.repatriation = repatriation
    row.stress = 1.0 if stress else 0.0
    row.fx_vol = 100.0 * math.sqrt(var)
    row.jp_inflation_gap = jp_inflation
    row.jp_activity_gap = jp_activity
    row.us_inflation_gap = us_inflation
    row.us_activity_gap = us_activity


@kernel()
def _commit(inv, o_cls, x_new):
    """Commit the investors' candidate exit shares (``inv.holders.q_new``) at the level
    ``x_new`` reached; returns the (unwind, repatriation, hedge yen buying, bonds sold, bonds
    repatriated) of the sub-step, USD bn, and adds each class's to its CLASS_OUT record."""
    unwind_all = 0.0
    repat_all = 0.0
    hedge_all = 0.0
    bonds_sold = 0.0
    bonds_home = 0.0
    for c in range(inv.classes.shape[0]):
        cls = inv.classes[c]
        h = inv.holders[c]
        oc = o_cls[c]
        dq = h.q_new - h.q
        h.q = h.q_new
        unwind = inv.params[c].holdings * (1.0 - cls.hedge_share) * dq
        repat = inv.params[c].repatriation * unwind
        hedge_new = _hedge_ratio(cls, h.q)
        h.holdings -= unwind
        hedge = h.holdings * (hedge_new - h.hedge)
        h.hedge = hedge_new
        if h.holdings < oc.holdings_low:
            oc.holdings_low = h.holdings
        oc.unwind_by_investor += unwind
        oc.repatriation_by_investor += repat
        oc.hedge_by_investor += hedge
        unwind_all += unwind
        repat_all += repat
        hedge_all += hedge
        bonds_sold += cls.bond_share * unwind
        bonds_home += cls.bond_share * repat
        h.basis += inv.speeds[c].basis_speed * (x_new - h.basis)
    return unwind_all, repat_all, hedge_all, bonds_sold, bonds_home


@kernel()
def simulate_path(rng, model, per_path, outs, p, scratch):
    """Simulate path ``p`` from the snapshot to the horizon, writing its rows of ``outs``.

    rng      : the block's xoshiro256** state, advanced in place
    model    : layout.Model, the path-independent inputs
    per_path : (PATH_PARAM[paths], CLASS_PARAM[paths, classes]) drawn parameters
    outs     : (PATH_OUT[paths], CLASS_OUT[paths, classes], TIME_OUT[paths, dates])
    scratch  : (factor normals[7], correlated factors[7], HOLDER[classes]) of the block
    """
    g = model.glob[0]
    par = per_path[0][p]
    cpp = per_path[1][p]
    o_path = outs[0][p]
    o_cls = outs[1][p]
    o_time = outs[2][p]
    z, e, holders = scratch
    n_steps = model.steps.shape[0]
    n_cls = model.classes.shape[0]
    # Macro gaps (inflation and activity, Japan then US).
    jpi, jpa, usi, usa = g.jp_inflation0, g.jp_activity0, g.us_inflation0, g.us_activity0
    boj, fed = g.boj0, g.fed0
    rs_boj, rs_fed = par.neutral_boj, par.neutral_fed
    expf = g.expectations_factor
    tpj = g.jgb0 - (rs_boj + (boj - rs_boj) * expf)
    tpu = g.ust0 - (rs_fed + (fed - rs_fed) * expf)
    # Long-run term premia: their snapshot values (no drift by construction) or the config's.
    mean_tpj = tpj if g.anchor_snapshot else g.mean_jgb_term_premium
    mean_tpu = tpu if g.anchor_snapshot else g.mean_ust_term_premium
    jgb, ust = g.jgb0, g.ust0
    spread = ust - jgb
    x = g.logfx0
    logfx0 = x
    var = g.var0
    x_check, var_check = x, var   # at the last weekly check point (realised variance)
    logvol = par.logvol0
    transient = 0.0
    since_boj, since_fed = g.boj_since0, g.fed_since0
    since_interv = g.intervention_spacing
    stress = False
    impact = par.impact
    perm = g.permanent_share
    pending_tpj = 0.0
    pending_tpu = 0.0
    vol0 = 100.0 * math.sqrt(var)
    rates = Rates(boj, fed, jgb, ust)
    for c in range(n_cls):
        cls = model.classes[c]
        h = holders[c]
        h.q = 0.0
        h.holdings = cpp[c].holdings
        h.basis = x
        h.hedge = cls.hedge_ratio
        if cls.signal == ALLOCATION:
            h.phi0 = 0.0
            h.z0 = -np.inf
            h.mu = 0.0
        else:
            # Potential holders' thresholds centre threshold_distance beyond the snapshot
            # signal; the snapshot sits mid-way in the hysteresis band, so the current holders
            # are those whose threshold lies above m0 + reentry_gap / 2 (docs/model.md 7.3).
            m0 = _signal(cls, x, x, rates, vol0)
            h.mu = m0 + cls.threshold_distance
            # The configuration keeps threshold_distance >= reentry_gap / 2, so phi0 <= 1/2.
            h.z0 = (m0 + 0.5 * cls.reentry_gap - h.mu) / cls.threshold_width
            h.phi0 = norm_cdf(h.z0)
        oc = o_cls[c]
        oc.unwind_by_investor = 0.0
        oc.repatriation_by_investor = 0.0
        oc.hedge_by_investor = 0.0
        oc.holdings_end = cpp[c].holdings
        oc.holdings_low = cpp[c].holdings
    cum_unwind = 0.0
    cum_repat = 0.0
    cum_hedge = 0.0
    peak_weekly = 0.0
    first_large = -1
    xmax = x
    largest_app = 0.0
    largest_week = 0.0
    abs_total = 0.0
    abs_exo = 0.0
    stress_steps = 0
    nonconv = 0
    crashes = 0
    interventions = 0
    _record(o_time[0], rates, (jpi, jpa, usi, usa), (x, var, stress), (0.0, 0.0))

    for t in range(n_steps):
        step = model.steps[t]
        dt = step.dt
        shocks = draw_step(rng, z)
        if step.ev_stress:
            stress = True  # a scripted stress event takes effect in its own step
        lower = model.chol_stress if stress else model.chol_calm
        for i in range(N_FACTORS):
            acc = 0.0
            for j in range(i + 1):
                acc += lower[i, j] * z[j]
            e[i] = acc
        # The correlated factors, in the order of layout.OU_PROCESSES, then USD/JPY.
        e_jpi, e_jpa, e_usi, e_usa, e_tpj, e_tpu, e_fx = e[0], e[1], e[2], e[3], e[4], e[5], e[6]

        # Macro drivers.
        jpi = (_ou(jpi, g.mean_jp_inflation, step.a_jp_inflation, step.s_jp_inflation, e_jpi)
               + step.ev_jp_inflation)
        jpa = (_ou(jpa, g.mean_jp_activity, step.a_jp_activity, step.s_jp_activity, e_jpa)
               + step.ev_jp_activity)
        usi = (_ou(usi, g.mean_us_inflation, step.a_us_inflation, step.s_us_inflation, e_usi)
               + step.ev_us_inflation)
        usa = (_ou(usa, g.mean_us_activity, step.a_us_activity, step.s_us_activity, e_usa)
               + step.ev_us_activity)

        # Policy rates on the meeting calendar; a bank sees the time since its last move on the
        # day of its meeting, which may fall before the step's end (MEETING.after).
        since_boj += dt
        since_fed += dt
        meeting = model.boj_meetings[t]
        if meeting.meets:
            boj, moved = _decide(model.boj[0], meeting, g.policy_rules,
                                 Seen(boj, rs_boj, jpi, jpa, x, since_boj - meeting.after, stress,
                                      shocks.boj_decision))
            if moved:
                since_boj = meeting.after
        meeting = model.fed_meetings[t]
        if meeting.meets:
            fed, moved = _decide(model.fed[0], meeting, g.policy_rules,
                                 Seen(fed, rs_fed, usi, usa, x, since_fed - meeting.after, stress,
                                      shocks.fed_decision))
            if moved:
                since_fed = meeting.after

        # Term premia and 10y yields.
        tpj = (_ou(tpj, mean_tpj, step.a_jgb_term_premium,
                   step.s_jgb_term_premium, e_tpj)
               + step.ev_jgb_term_premium + pending_tpj)
        if shocks.fiscal < step.p_fiscal:
            tpj += g.fiscal_jump_size
        tpu = (_ou(tpu, mean_tpu, step.a_ust_term_premium,
                   step.s_ust_term_premium, e_tpu)
               + step.ev_ust_term_premium + pending_tpu)
        jgb = rs_boj + (boj - rs_boj) * expf + tpj
        ust = rs_fed + (fed - rs_fed) * expf + tpu
        new_spread = ust - jgb
        d_spread = new_spread - spread
        spread = new_spread

        # USD/JPY before this step's flows: the spread, a diffusion with the path's persistent
        # volatility (times the stress multiplier), and compensated crash jumps, so that the
        # expected log change without news is zero.
        vol = math.exp(logvol) * (g.stress_vol_multiplier if stress else 1.0)
        # The continuous part of the move (spread, diffusion) is spread evenly over the step's
        # sub-steps; the step's official flows and scripted shocks come in its first sub-step;
        # a crash, and the jumps' compensator, follow the carry stock sub-step by sub-step
        # (crash_hazard, in the loop below).
        n_sub = step.subs
        smooth = (g.eta * d_spread + vol * step.sqrt_dt * e_fx) / n_sub
        scripted = math.log1p(step.ev_fx_shock / 100.0)
        crash = False
        crash_sub = -1
        hazard = 0.0
        logvol = _ou(logvol, g.long_run_logvol, step.a_logvol, step.s_logvol, shocks.vol_shock)
        external = step.ev_intervention
        since_interv += dt
        if (g.intervention_on and x > g.intervention_loglevel
                and since_interv >= g.intervention_spacing
                and shocks.intervention < step.p_intervention):
            external += g.intervention_size
            interventions += 1
            since_interv = 0.0
        # Official flows move the yen by their size (and announcement); private flows by their
        # rate per week, not at all in the flows-off counterfactual; both more in stress, and
        # from the business day after a crash within its step, as on a daily grid.
        limit = g.impact_limit
        k = impact * (g.impact_stress_multiplier if stress else 1.0)
        k_stress = impact * g.impact_stress_multiplier
        official = official_impact(external, k, limit, g.announcement)
        prev = rates
        rates = Rates(boj, fed, jgb, ust)
        boj_from = meeting_sub(model.boj_meetings[t])
        fed_from = meeting_sub(model.fed_meetings[t])

        # Within each sub-step, feedback (flows move the yen, the yen moves signals, signals
        # move flows): solve for the level at which flows and the yen agree, then commit the
        # flows there.  The step's move is kept as its exogenous part and the flows' part (with
        # zero impact the latter is exactly zero and the move exactly the exogenous one).
        x_sub = x
        dx_exo = 0.0
        dx_flows = 0.0
        converged = True
        step_unwind = 0.0
        step_repat = 0.0
        bonds_sold = 0.0
        bonds_home = 0.0
        for j in range(n_sub):
            s = step.first_sub + j
            sub = model.substeps[s]
            d_exo = smooth
            if not crash:
                comp, hazard, crash = crash_hazard(g, model.classes, holders, dt / n_sub,
                                                   hazard, shocks.crash)
                d_exo += comp
                if crash:
                    crash_sub = j
            off = 0.0
            if j == 0:
                d_exo += scripted
                off = official
            k_private = (k_stress if crash and j > crash_sub else k) if g.private_flows else 0.0
            if j == crash_sub:
                d_exo -= g.crash_mean_size * -math.log(shocks.crash_size)
            dx_exo += d_exo
            decayed = transient * sub.decay
            x_pre = x_sub + d_exo + (decayed - transient)
            market = Market(x_pre - off, k_private, limit, x_check, var_check, sub.since_check,
                            sub.weeks, sub.ewma, logfx0,
                            rates_within(prev, rates, j, n_sub, boj_from, fed_from), x_sub)
            speeds = model.class_steps[s]
            inv = Investors(model.classes, speeds, cpp, holders)
            _, ok, buying, var, _ = solve_step(market, inv, g.max_iter, g.tol)
            converged = converged and ok
            # Permanent and transient parts of the impact.
            total_impact = off + private_impact(buying, k_private, limit, sub.weeks)
            dx_flows += (decayed - transient) - total_impact
            x_sub = x + (dx_exo + dx_flows)
            transient = decayed - (1.0 - perm) * total_impact
            flows = _commit(inv, o_cls, x_sub)
            step_unwind += flows[0]
            step_repat += flows[1]
            cum_hedge += flows[2]
            bonds_sold += flows[3]
            bonds_home += flows[4]
        if not converged:
            nonconv += 1
        move = dx_exo + dx_flows
        pending_tpu = g.ust_tp_per_tn_sold * bonds_sold / 1000.0
        pending_tpj = -g.jgb_tp_per_tn_repatriated * bonds_home / 1000.0
        cum_unwind += step_unwind
        cum_repat += step_repat
        weekly = step_unwind / step.weeks
        if weekly > peak_weekly:
            peak_weekly = weekly
        if first_large < 0 and weekly > g.large_weekly:
            first_large = t + 1

        # Trackers and the volatility regime for the next step.
        abs_total += abs(move)
        abs_exo += abs(dx_exo)
        x = x_sub
        if x > xmax:
            xmax = x
        app = 100.0 * (1.0 - math.exp(x - xmax))
        if app > largest_app:
            largest_app = app
        if stress:
            stress_steps += 1
        if crash:
            crashes += 1
        # A crash or a scripted stress event starts (or prolongs) stress; a large yen rally over
        # the week to a weekly check point starts it from calm; otherwise the regime switches
        # with its Markov probabilities.
        trigger = False
        lag = step.check_lag
        if lag > 0:
            x_check, var_check = x, var
            rally = math.log(o_time[t + 1 - lag].usdjpy) - x
            trigger = rally > step.trigger_level
            week_app = 100.0 * (1.0 - math.exp(-rally))
            if week_app > largest_week:
                largest_week = week_app
        if crash or step.ev_stress:
            stress = True
        elif stress:
            stress = not (shocks.regime < step.p_stress_to_calm)
        else:
            stress = trigger or shocks.regime < step.p_calm_to_stress
        _record(o_time[t + 1], rates, (jpi, jpa, usi, usa), (x, var, stress),
                (cum_unwind, cum_repat))
        # Numerical guard: stop the path at the first non-finite state and report the step.
        state = x + var + jgb + ust + boj + fed + cum_unwind + cum_repat + cum_hedge + jpi + jpa + usi + usa
        if not math.isfinite(state):
            o_path.fail_step = t + 1
            return

    for c in range(n_cls):
        o_cls[c].holdings_end = holders[c].holdings
    o_path.cum_unwind = cum_unwind
    o_path.cum_repatriation = cum_repat
    o_path.hedge_yen_buying = cum_hedge
    o_path.peak_weekly_unwind = peak_weekly
    o_path.first_large_step = first_large
    o_path.largest_yen_appreciation = largest_app
    o_path.largest_weekly_rally = largest_week
    o_path.amplification_ratio = abs_total / abs_exo if abs_exo > 0.0 else 1.0
    o_path.stress_share = stress_steps / n_steps
    o_path.nonconverged_steps = nonconv
    o_path.crashes = crashes
    o_path.interventions = interventions
    o_path.fail_step = 0
    o_path.boj_rate_end = boj
    o_path.fed_rate_end = fed
    o_path.jgb10_end = jgb
    o_path.ust10_end = ust
    o_path.spread_end = spread
    o_path.usdjpy_end = math.exp(x)


@kernel(parallel=True)
def simulate_chunk(seeds, block_size, model, per_path, outs):
    """Simulate the paths of one chunk: ``prange`` over its blocks of ``block_size`` paths.

    seeds    : uint64[n_blocks, 4], the xoshiro state of each block (by global block index)
    model    : layout.Model, the path-independent inputs
    per_path : (PATH_PARAM[paths], CLASS_PARAM[paths, classes]), rows by the chunk's path number
    outs     : (PATH_OUT[paths], CLASS_OUT[paths, classes], TIME_OUT[paths, dates]), written
               row by row
    """
    n_paths = outs[0].shape[0]
    n_cls = model.classes.shape[0]
    for b in prange(seeds.shape[0]):
        rng = seeds[b].copy()
        scratch = (np.empty(N_FACTORS), np.empty(N_FACTORS), np.empty(n_cls, dtype=HOLDER_TYPE))
        stop = min((b + 1) * block_size, n_paths)
        for p in range(b * block_size, stop):
            simulate_path(rng, model, per_path, outs, p, scratch)
