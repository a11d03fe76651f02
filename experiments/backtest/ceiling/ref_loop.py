#!/usr/bin/python3
"""What a `ref` market allows over the closed loop's nights (docs/backtest.md, "Closed loop: what
the `ref` yardstick rewards (session 20)").  A reference check beside ceiling.py and
ref_standing.py: numpy only, never part of the product or its tests.

    build/tools/bt_truth_dump ref SEED 300 90 DIR
    python3 experiments/backtest/ceiling/ref_loop.py DIR [--full 1] [--lookahead 1,3,10,30] [--products N]
                                                         [--draws K] [--seed S]

The valuation is the loop's (experiments/backtest/exp_backtest_loop.c), simplified: each product's
expected revenue over the 30 nights after its history, the competitors at their mean price, the
traffic held at the history's mean; prices on the loop's DP levels (the list price times steps of
log(1.15) / 12.5, from the min bound or the cost up to 2x the list price), each night within 15%
of the last.  Captured = the sum over products of (lane - manual) / the sum of (oracle - manual).

Lanes that know every product's true parameters:
  oracle            the goal's yardstick on `ref`: the DP held to the change limit over exactly the
                    30 nights (no value after them), as the loop's oracle
  held              the loop's `held` reference: toward the standing optimum, 15% a night
  going concern     the truth's own DP re-planned every night over the next 30 nights, its first
                    step taken: a plan for a shop that keeps trading after night 30 (--lookahead:
                    the same over the next H nights, for each H listed)
  90-night plan     the first 30 nights of the DP over 90 nights
Rules that see only the 90 days (prices in whole cents), the conversion logistic in price / list
price with the competitors' log price and the reference term gain log(R / p) (R above the price)
or loss log(R / p) (below), R the smoothed past price of memory lam:
  learnt: a prior learnt from the 300 products (a normal prior on the slope by moments, weights on
    a grid of (memory, gain, loss / gain) by EM - the grid spans the simulator's ranges below, the intercept and competitor coefficient flat;
    Laplace per grid cell), the posterior mean planned with the 30-night DP ("learnt, 30-night
    plan", which knows the loop ends) or re-planned every night ("learnt, going concern");
  --full 1 adds: the simulator's own prior on the reference effect (memory U(0.5, 0.9), gain
    U(0, 1.5), loss = gain x U(1, 2.5)) and the slope's range: its posterior mean planned ("prior
    known, plug-in"), the best of DRAWS posterior draws' DP plans by the posterior mean revenue of
    fresh draws ("prior known, Bayes plan": an open-loop plan that knows the simulator's prior and
    the loop's end), and the same search given the true reference parameters or the true demand
    parameters ("reference known", "demand known").
"""
import math
import sys

import numpy as np

from ceiling import load, sig

STEPS, MC, NR = 12, 0.15, 81
LAM = np.linspace(0.5, 0.9, 9)
GAIN = np.linspace(0.0, 1.5, 11)
RATIO = np.linspace(1.0, 2.5, 7)
B_LO, B_HI = -1.35 / (1 - 0.08), -0.70 / (1 - 0.02)  # the logit family's slope range


ndtr = np.vectorize(lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2))))


def cents(x):
    return np.round(np.asarray(x) * 100) / 100


def levels(p0, lo):
    """dpc_levels of exp_backtest_loop.c."""
    hi, s = np.round(p0 * 200) / 100, np.log1p(MC) / (STEPS + 0.5)
    lv = [lo]
    j = int(np.floor(np.log(lo / p0) / s))
    while True:
        x = float(cents(p0 * np.exp(s * j)))
        if x >= hi:
            break
        if x > lv[-1] + 1e-9:
            lv.append(x)
        j += 1
    if hi > lv[-1] + 1e-9:
        lv.append(hi)
    return np.array(lv)


def rpv(th, price, ref):
    """Revenue per visitor under parameters th = (a, b, gc, lam, gain, loss, p0), competitors at the
    mean (their term 0).  Broadcasts."""
    a, b, _, _, g, l, p0 = th
    lr = np.log(ref / price)
    z = a + b * (price / p0 - 1) + np.where(lr > 0, g * lr, l * lr)
    return sig(z) * price


def dp_plans(ths, lv, prev, refs, nights, gamma=1.0):
    """The change-limited DP of each parameter vector in ths (K of them), started at the price prev
    and reference refs[k]; returns the plans [K, nights] (prices on the levels)."""
    K, L = len(ths), len(lv)
    reach = np.abs(np.log(lv[None, :] / lv[:, None])) <= np.log1p(MC) + 1e-9  # [from, to]
    rg = np.exp(np.linspace(np.log(lv[0]), np.log(lv[-1]), NR))
    fr_, to_ = np.nonzero(reach)
    D = int(np.abs(to_ - fr_).max())
    SRC = np.arange(L)[:, None] + np.arange(-D, D + 1)[None, :]
    SRC = np.where((SRC >= 0) & (SRC < L), SRC, L)
    SRC = np.where(reach[np.arange(L)[:, None], np.minimum(SRC, L - 1)] & (SRC < L), SRC, L)  # [from, 2D+1]; L: none
    T = np.array(ths)  # [K, 7]
    lam = T[:, 3][:, None, None]
    rew = rpv(tuple(T[:, j][:, None, None] for j in range(7)), lv[None, :, None], rg[None, None, :])  # [K, L(to), R]
    nref = lam * rg[None, None, :] + (1 - lam) * lv[None, :, None]  # [K, L, R]
    pos = np.clip((np.log(nref) - np.log(rg[0])) / (np.log(rg[-1]) - np.log(rg[0])) * (NR - 1), 0, NR - 1 - 1e-9)
    i0 = np.floor(pos).astype(int)
    fr = pos - i0
    V = np.zeros((K, L, NR))  # value from here on, given the price in force (level) and the reference
    Qs = []
    for t in range(nights - 1, -1, -1):
        Q = rew + gamma * (np.take_along_axis(V, i0, 2) * (1 - fr) + np.take_along_axis(V, i0 + 1, 2) * fr)  # [K, to, R]
        Qs.append(Q)
        Qp = np.concatenate([Q, np.full((K, 1, NR), -np.inf)], 1)
        V = Qp[:, SRC, :].max(2)  # [K, from, R]: the best level within the change limit
    Qs = Qs[::-1]
    plans = np.zeros((K, nights))
    k0 = np.argmin(np.abs(lv - prev))
    for k in range(K):
        cur, ref = k0, refs[k]
        for t in range(nights):
            p = np.clip((np.log(ref) - np.log(rg[0])) / (np.log(rg[-1]) - np.log(rg[0])) * (NR - 1), 0, NR - 1 - 1e-9)
            j = int(p)
            q = Qs[t][k, :, j] * (1 - (p - j)) + Qs[t][k, :, j + 1] * (p - j)
            q = np.where(reach[cur], q, -np.inf)
            cur = int(np.argmax(q))
            plans[k, t] = lv[cur]
            ref = T[k, 3] * ref + (1 - T[k, 3]) * lv[cur]
    return plans


def values(ths, refs, plan):
    """Revenue per visitor summed over the plan's nights under each of ths [M, 7] from refs [M]."""
    T = np.array(ths)
    ref, v = np.array(refs, float), 0.0
    cols = tuple(T[:, j] for j in range(7))
    for p in plan:
        v = v + rpv(cols, p, ref)
        ref = T[:, 3] * ref + (1 - T[:, 3]) * p
    return v


def value(th, plan, ref):
    """Revenue per visitor summed over the plan's nights under th from reference ref."""
    return float(values([th], [ref], plan)[0])


def ref_path(pr, lam, p0):
    """The reference before each day of prices pr and after the last (the simulator's: starts at
    the list price)."""
    r = np.empty(len(pr) + 1)
    r[0] = p0
    for t, p in enumerate(pr):
        r[t + 1] = lam * r[t] + (1 - lam) * p
    return r


def posterior(v, ref=None, dem=None, flat=False):
    """The posterior over the grid of (lam, gain, ratio) - or the one point ref = (lam, gain, loss) -
    with (a, b, gc) by Laplace at each (fixed at dem = (a, b, gc) when given); b's prior uniform on
    the family's range (its mass inside by the normal approximation).  Returns the grid's
    (lam, gain, loss) [G, 3], the fits [G, 3], their covariances [G, 3, 3] and the weights [G]."""
    pr, U, V, p0 = v['pr'], v['U'], v['V'], v['p0']
    X = np.column_stack([np.ones(len(pr)), pr / p0 - 1, v['lc']])
    if ref is None:
        grid = np.array([(lam, g, g * rt) for lam in LAM for g in GAIN for rt in RATIO])
    else:
        grid = np.array([ref])
    G = len(grid)
    lr = np.array([np.log(ref_path(pr, lam, p0)[:-1] / pr) for lam in LAM]) if ref is None else \
        np.log(ref_path(pr, ref[0], p0)[:-1] / pr)[None, :]
    li = np.repeat(np.arange(len(LAM)), len(GAIN) * len(RATIO)) if ref is None else np.zeros(1, int)
    L = lr[li]
    off = np.where(L > 0, grid[:, 1:2] * L, grid[:, 2:3] * L)  # [G, D]
    if dem is not None:
        w = np.tile(np.asarray(dem, float), (G, 1))
        z = off + w @ X.T
        ll = np.sum(U * z - V * np.logaddexp(0, z), 1)
        return grid, w, np.zeros((G, 3, 3)), np.exp(ll - ll.max()) / np.exp(ll - ll.max()).sum()
    w = np.tile([np.log((U.sum() + .5) / (V.sum() - U.sum() + .5)), -1.0, 0.5], (G, 1))
    for _ in range(40):
        q = sig(off + w @ X.T)
        H = np.einsum('gd,di,dj->gij', V * q * (1 - q), X, X) + 1e-6 * np.eye(3)
        d = np.linalg.solve(H, ((U - V * q) @ X)[:, :, None])[:, :, 0]
        w = w + d
        if np.abs(d).max() < 1e-9:
            break
    z = off + w @ X.T
    ll = np.sum(U * z - V * np.logaddexp(0, z), 1)
    C = np.linalg.inv(H)
    sb = np.sqrt(C[:, 1, 1])
    mass = ndtr((B_HI - w[:, 1]) / sb) - ndtr((B_LO - w[:, 1]) / sb)
    lml = ll - 0.5 * np.linalg.slogdet(H)[1]  # the Laplace marginal under a flat prior
    if flat:
        return grid, w, C, lml
    lp = lml + np.log(np.maximum(mass, 1e-300))
    wt = np.exp(lp - lp.max())
    return grid, w, C, wt / wt.sum()


def learnt(lap, mu, tau2, logpi):
    """The posterior under a learnt prior: the grid's weights exp(logpi) and N(mu, tau2) on b, from
    laplace() = posterior(v, flat=True).  Same return as posterior()."""
    grid, w, C, lml = lap
    s2 = C[:, 1, 1]
    lp = lml + logpi - 0.5 * (w[:, 1] - mu) ** 2 / (s2 + tau2) - 0.5 * np.log(s2 + tau2)
    k = (mu - w[:, 1]) / (s2 + tau2)
    W = w + C[:, :, 1] * k[:, None]
    C2 = C - C[:, :, 1][:, :, None] * C[:, 1, :][:, None, :] / (s2 + tau2)[:, None, None]
    wt = np.exp(lp - lp.max())
    return grid, W, C2, wt / wt.sum()


def eb_fit(laps, iters=300):
    """The learnt prior from every product's flat-prior Laplace grid: N(mu, tau2) on b by moments
    of the products' posterior means (the grid's cells uniform), then the cells' weights by EM
    (the nonparametric maximum likelihood on the grid).  Returns (mu, tau2, logpi)."""
    pm, pv = [], []
    for grid, w, C, lml in laps:
        q = np.exp(lml - lml.max()); q /= q.sum()
        m = q @ w[:, 1]
        pm.append(m); pv.append(q @ (C[:, 1, 1] + w[:, 1] ** 2) - m * m)
    mu, tau2 = float(np.mean(pm)), max(float(np.var(pm) - np.mean(pv)), 1e-4)
    Lm = []
    for grid, w, C, lml in laps:
        s2 = C[:, 1, 1]
        l = lml - 0.5 * (w[:, 1] - mu) ** 2 / (s2 + tau2) - 0.5 * np.log(s2 + tau2)
        Lm.append(np.exp(l - l.max()))
    Lm = np.array(Lm)  # [products, cells]
    pi = np.full(Lm.shape[1], 1.0 / Lm.shape[1])
    for _ in range(iters):
        post = Lm * pi
        pi = (post / post.sum(1, keepdims=True)).mean(0)
    return mu, tau2, np.log(pi + 1e-300)


def draws(post, K, rng, p0):
    """K parameter vectors (a, b, gc, lam, gain, loss, p0) from the posterior."""
    grid, W, C, wt = post
    ths = []
    for c in rng.choice(len(wt), size=K, p=wt):
        s = W[c].copy()
        for _ in range(50):
            s = rng.multivariate_normal(W[c], C[c]) if C[c].any() else W[c].copy()
            if B_LO <= s[1] <= B_HI:
                break
        s[1] = np.clip(s[1], B_LO, B_HI)
        ths.append([s[0], s[1], s[2], grid[c][0], grid[c][1], grid[c][2], p0])
    return ths


def product(tr, pe, i):
    r = pe[pe['product'] == i]
    pr = cents(r['price'])
    p0 = tr['p0'][i]
    cost = tr['cost'][i]
    lo = max(np.round(cents(p0) * 50) / 100, np.ceil(cents(cost) * 100 - 1e-6) / 100)
    lcm = np.log(r['comp_mean_price'])
    return dict(pr=pr, U=r['units'], V=r['traffic'], p0=p0, lv=levels(cents(p0), lo), lc=lcm - lcm.mean(),
                traffic=r['traffic'].mean(),
                truth=(tr['a'][i], tr['b'][i], tr['gc'][i], tr['ref_lambda'][i], tr['ref_gain'][i], tr['ref_loss'][i], p0))


def receding(th, lv, prev, ref, nights, H, gamma):
    """Re-plan every night from the model's own state (H nights, discount gamma); the first step."""
    out = []
    for _ in range(nights):
        p = dp_plans([th], lv, prev, [ref], H, gamma)[0][0]
        out.append(p)
        ref = th[3] * ref + (1 - th[3]) * p
        prev = p
    return np.array(out)


def held_plan(th, lv, prev, ref, nights):
    """Walk toward the standing optimum of th (reference at the price), 15% a night, on the levels."""
    st = lv[np.argmax(rpv(th, lv, lv))]
    plan, cur = [], prev
    for _ in range(nights):
        cur = float(np.clip(st, cur / (1 + MC), cur * (1 + MC)))
        cur = lv[np.argmin(np.abs(lv - cur))]
        plan.append(cur)
    return np.array(plan)


def main():
    args = sys.argv[1:]
    opt = dict(nights=30, draws=24, seed=1, products=0, full=0, lookahead='')
    for k in list(opt):
        if f'--{k}' in args:
            j = args.index(f'--{k}')
            opt[k] = args[j + 1] if k == 'lookahead' else int(args[j + 1])
            del args[j:j + 2]
    looks = [int(x) for x in opt['lookahead'].split(',') if x]
    if len(args) != 1:
        sys.exit(__doc__)
    tr, pe = load(args[0])
    N, K = opt['nights'], opt['draws']
    rng = np.random.default_rng(opt['seed'])
    P = len(tr) if opt['products'] <= 0 else min(opt['products'], len(tr))
    lanes = ('manual', 'oracle', 'held', 'going concern', '90-night plan', 'learnt, 30-night plan',
             'learnt, going concern', 'prior known, plug-in', 'prior known, Bayes plan', 'learnt, Bayes plan',
             'reference known', 'demand known')
    lanes = lanes[:4] + tuple(f'going concern, {H} nights' for H in looks) + lanes[4:]
    tot = {k: 0.0 for k in lanes}
    last10 = 0.0
    err = []
    views = [product(tr, pe, i) for i in range(P)]
    laps = [posterior(v, flat=True) for v in views]
    mu, tau2, logpi = eb_fit(laps)
    for i, v in enumerate(views):
        th, lv, prev = v['truth'], v['lv'], v['pr'][-1]
        ref_t = ref_path(v['pr'], th[3], th[6])[-1]
        val = lambda plan: v['traffic'] * value(th, plan, ref_t)
        tot['manual'] += val(np.full(N, cents(th[6])))
        orc = dp_plans([th], lv, prev, [ref_t], N)[0]
        tot['oracle'] += val(orc)
        last10 += val(orc) - v['traffic'] * value(th, orc[:N - 10], ref_t) - val(np.full(N, cents(th[6])))
        last10 += v['traffic'] * value(th, np.full(N - 10, cents(th[6])), ref_t)
        tot['held'] += val(held_plan(th, lv, prev, ref_t, N))
        tot['going concern'] += val(receding(th, lv, prev, ref_t, N, N, 1.0))
        for H in looks:
            tot[f'going concern, {H} nights'] += val(receding(th, lv, prev, ref_t, N, H, 1.0))
        tot['90-night plan'] += val(dp_plans([th], lv, prev, [ref_t], 3 * N)[0][:N])
        ref_of = lambda t: ref_path(v['pr'], t[3], t[6])[-1]
        mean_of = lambda pst: list(pst[3] @ pst[1]) + list(pst[3] @ pst[0]) + [th[6]]
        lpost = learnt(laps[i], mu, tau2, logpi)
        lmean = mean_of(lpost)
        tot['learnt, 30-night plan'] += val(dp_plans([lmean], lv, prev, [ref_of(lmean)], N)[0])
        tot['learnt, going concern'] += val(receding(lmean, lv, prev, ref_of(lmean), N, N, 1.0))
        post = posterior(v)
        mean = mean_of(post)
        err.append((mean[3] - th[3], mean[4] - th[4], mean[5] - th[5], mean[1] - th[1]))
        if not opt['full']:
            continue
        tot['prior known, plug-in'] += val(dp_plans([mean], lv, prev, [ref_of(mean)], N)[0])
        for lane, pst in (('prior known, Bayes plan', post), ('learnt, Bayes plan', lpost),
                          ('reference known', posterior(v, ref=th[3:6])), ('demand known', posterior(v, dem=th[:3]))):
            ths = draws(pst, K, rng, th[6])
            mn = mean_of(pst)
            refs = [ref_of(t) for t in ths]
            plans = list(dp_plans(ths, lv, prev, refs, N))
            plans.append(dp_plans([mn], lv, prev, [ref_of(mn)], N)[0])
            plans.append(held_plan(mn, lv, prev, ref_of(mn), N))
            plans.append(np.full(N, cents(th[6])))
            ev = draws(pst, 4 * K, rng, th[6])  # fresh draws score the plans (the plans' own would flatter them)
            er = [ref_of(t) for t in ev]
            score = [values(ev, er, pl).mean() for pl in plans]
            tot[lane] += val(plans[int(np.argmax(score))])
        if (i + 1) % 50 == 0:
            print(f'  ... {i + 1} products', file=sys.stderr)
    g = tot['oracle'] - tot['manual']
    print(f'{args[0]}: {P} products, {N} nights; oracle vs manual {100 * g / tot["manual"]:+.2f}%, '
          f'{100 * last10 / g:.1f}% of it in the last 10 nights; captured:')
    nf = 7 + len(looks)
    for k in lanes[2:nf] + (lanes[nf:] if opt['full'] else ()):
        print(f'  {k:24s} {100 * (tot[k] - tot["manual"]) / g:6.1f}%  (vs manual {100 * (tot[k] / tot["manual"] - 1):+.2f}%)')
    e = np.array(err)
    print(f'  posterior mean - truth, rms: memory {np.sqrt((e[:, 0] ** 2).mean()):.3f}, gain {np.sqrt((e[:, 1] ** 2).mean()):.3f}, '
          f'loss {np.sqrt((e[:, 2] ** 2).mean()):.3f}, slope {np.sqrt((e[:, 3] ** 2).mean()):.3f}')
    pi = np.exp(logpi)
    grid = laps[0][0]
    print(f'  learnt prior: slope N({mu:.2f}, {np.sqrt(tau2):.2f}^2); memory, gain, loss means '
          f'{pi @ grid[:, 0]:.2f}, {pi @ grid[:, 1]:.2f}, {pi @ grid[:, 2]:.2f} (the simulator: 0.70, 0.75, 1.31)')


if __name__ == '__main__':
    main()
