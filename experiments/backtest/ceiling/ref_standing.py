#!/usr/bin/python3
"""How well a `ref` history pins a product's standing optimum (docs/backtest.md, "Long horizon:
both agents held near the history's prices").  A reference check beside ceiling.py: numpy only,
never part of the product or its tests.

    build/tools/bt_truth_dump ref SEED 300 90 DIR
    python3 experiments/backtest/ceiling/ref_standing.py DIR

Each product's 90 days are fitted by the engine's demand-model form (features/feat_demand.h,
the identity price form): conversion per visitor logistic in 1, price / mean price, log of the
competitors' mean price / mean price and the lag column log(smoothed past price / mean price),
where the smoothed past price is the exact exponential smoothing of the prices charged (memory
lam; lam 0 the previous price).  The standing optimum is the price that maximises revenue per
visitor when the smoothed past price equals the price, at the competitors' mean; the truth's is
the simulator's (its reference terms vanish when the reference has settled at the price).  Rows:
the product's own fit at a fixed memory or at the memory its likelihood picks, without the lag
column, and with pooled (DerSimonian-Laird) normal priors on the lag coefficient and on the
price coefficient.  Printed: the median of estimate / truth and the root mean square log error.
"""
import sys

import numpy as np

from ceiling import load, sig  # the sibling check's reader of bt_truth_dump's files, and its logistic

LAMS = (0.0, 0.5, 0.7, 0.85)


def ema(pr, lam):
    """Smoothed past price before each day (lam 0: the previous price)."""
    out, s = np.empty(len(pr)), pr[0]
    for d in range(len(pr)):
        out[d] = s if lam > 0 else (pr[d - 1] if d else pr[0])
        s = lam * s + (1 - lam) * pr[d]
    return out


def irls(X, u, v, pm, pp):
    """MAP logistic regression of u successes in v trials, prior N(pm, 1/pp) per coefficient."""
    b = np.zeros(X.shape[1])
    b[0] = np.log(max(u.sum(), 1) / max(v.sum() - u.sum(), 1))
    for _ in range(50):
        q = sig(X @ b)
        H = X.T @ ((v * q * (1 - q))[:, None] * X) + np.diag(pp)
        d = np.linalg.solve(H, X.T @ (u - v * q) - pp * (b - pm))
        b += d
        if np.abs(d).max() < 1e-9:
            break
    q = sig(X @ b)
    return b, np.linalg.inv(H), np.sum(u * np.log(q + 1e-300) + (v - u) * np.log(1 - q + 1e-300))


def products(d):
    tr, pe = load(d)
    T = int(pe['day'].max())  # days 0 .. T-1 are the history
    out = []
    for i in range(len(tr)):
        r = pe[pe['product'] == i][:T]
        p0, pr = tr['p0'][i], r['price']
        grid = p0 * np.exp(np.linspace(np.log(0.4), np.log(2.5), 801))
        opt = grid[np.argmax(grid * sig(tr['a'][i] + tr['b'][i] * (grid / p0 - 1)))]
        out.append(dict(pr=pr, u=r['units'][1:], v=r['traffic'][1:], ref=pr.mean(), grid=grid, opt=opt,
                        lc=np.log(r['comp_mean_price'] / pr.mean()), c0=np.log(tr['comp_mean'][i] / pr.mean())))
    return out


def design(p, lam):
    cols = [np.ones(len(p['pr'])), p['pr'] / p['ref'], p['lc']]
    if lam is not None:
        cols.append(np.log(ema(p['pr'], lam) / p['ref']))
    return np.column_stack(cols)[1:]


def standing(p, b):
    g = p['grid']
    z = b[0] + b[1] * g / p['ref'] + b[2] * p['c0'] + (b[3] * np.log(g / p['ref']) if len(b) > 3 else 0)
    return g[np.argmax(g * sig(z))] / p['opt']


def pool(e, se):
    """DerSimonian-Laird mean and tau^2."""
    w = 1 / se ** 2
    m = np.sum(w * e) / w.sum()
    tau2 = max(0.0, (np.sum(w * (e - m) ** 2) - (len(e) - 1)) / (w.sum() - np.sum(w ** 2) / w.sum()))
    ws = 1 / (se ** 2 + tau2)
    return np.sum(ws * e) / ws.sum(), tau2


def fits(ps, lam, pm=None, pp=None):
    k = 3 if lam is None else 4
    pm = np.zeros(k) if pm is None else pm
    pp = np.full(k, 1e-6) if pp is None else pp
    return [irls(design(p, lam), p['u'], p['v'], pm, pp) for p in ps]


def report(name, ratios):
    r = np.array(ratios)
    print(f'  {name:<44} median {np.median(r):.3f}  rms log error {np.sqrt(np.mean(np.log(r) ** 2)):.3f}')


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: ref_standing.py DIR (bt_truth_dump ref SEED PRODUCTS DAYS DIR)')
    ps = products(sys.argv[1])
    print(f'{len(ps)} products: the standing optimum estimated / the truth\'s')
    by_lam = {lam: fits(ps, lam) for lam in LAMS}
    for lam in LAMS[1:]:
        report(f'own fit, memory {lam}', [standing(p, f[0]) for p, f in zip(ps, by_lam[lam])])
    best = [max((by_lam[lam][i] for lam in LAMS), key=lambda f: f[2]) for i in range(len(ps))]
    report('own fit, memory chosen by the likelihood', [standing(p, f[0]) for p, f in zip(ps, best)])
    report('own fit without the lag column', [standing(p, f[0]) for p, f in zip(ps, fits(ps, None))])
    for lam in LAMS[1:]:
        own = by_lam[lam]
        ml, tl = pool(np.array([f[0][3] for f in own]), np.array([np.sqrt(f[1][3, 3]) for f in own]))
        pm, pp = np.array([0, 0, 0, ml]), np.array([1e-6, 1e-6, 1e-6, 1 / max(tl, 1e-4)])
        lagp = fits(ps, lam, pm, pp)
        report(f'memory {lam}, pooled lag (mean {ml:.2f}, sd {np.sqrt(tl):.2f})',
               [standing(p, f[0]) for p, f in zip(ps, lagp)])
        mp, tp = pool(np.array([f[0][1] for f in lagp]), np.array([np.sqrt(f[1][1, 1]) for f in lagp]))
        pm2, pp2 = np.array([0, mp, 0, ml]), np.array([1e-6, 1 / max(tp, 1e-4), 1e-6, 1 / max(tl, 1e-4)])
        report(f'memory {lam}, pooled lag and price', [standing(p, f[0]) for p, f in zip(ps, fits(ps, lam, pm2, pp2))])


if __name__ == '__main__':
    main()
