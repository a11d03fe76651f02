#!/usr/bin/python3
"""What the `logit` family's histories allow: the captured share of price rules that know more
than any engine can (docs/backtest.md, "The `logit` ceiling").  A reference check, like
experiments/bench/torch_agents.py: numpy only, never part of the product or its tests.

    build/tools/bt_truth_dump logit SEED 300 120 DIR
    python3 experiments/backtest/ceiling/ceiling.py DIR [products.csv.gz] [--family ce]

DIR holds truth.csv and periods.csv (bt_truth_dump).  The optional products.csv.gz is the
nightly's per-product table of the same run (`rlprice backtest --family logit --seed SEED
--seeds 1 --out OUT`: OUT/nightly/latest/products.csv.gz); its DQN and DDPG prices are then valued
here too, which checks that this valuation is the backtest's.

Every rule sees the history the backtest imports (prices in whole cents, 120 days) and prices the
next day inside the backtest's guard (incumbent +-15%, 0.5-2x the list price, not below cost, whole
cents); captured is the backtest's: the mean over products whose attainable uplift is >= 1% of the
incumbent's revenue per visitor of achieved / attainable uplift under the truth.  Rules, all on
the true form (`logit`: conversion logistic in price / list price; `ce`, with --family ce:
conversion exp(a + b log(price / list price)) capped at 0.95, fitted as Poisson; both with the
competitors' log price):
  flat, weak N(-1, 1), normal EB, NPMLE: a prior on the price coefficient b only (intercept and
      competitor coefficient profiled per grid value); the last two learnt from the products
      themselves (normal: moments; nonparametric: EM on the grid); the price maximises the
      posterior mean revenue per visitor.  The engine's own model is close to "normal EB".
  true range: b uniform on the range the simulator draws it from (knowledge an engine lacks).
  bayes (revenue), bayes (captured): the simulator's own population prior on every parameter
      (`logit`: the mis-set factor, the conversion at the optimum; `ce`: the elasticity, the
      conversion at the list price; both: the competitor coefficient and the competitors' mean
      price) - the price maximising the posterior mean revenue per visitor, or
      the posterior mean of the captured share itself (the best any rule can do on this metric in
      expectation, given these histories).
"""
import csv
import gzip
import sys

import numpy as np

DAYS = 120
GUARD = 0.15
sig = lambda z: 1.0 / (1.0 + np.exp(-z))
FAMILY = 'logit'  # or 'ce' (--family ce)


def conv(z):
    """Conversion per visitor from the linear predictor (env_sim_purchase_prob_at)."""
    return sig(z) if FAMILY == 'logit' else np.minimum(np.exp(np.minimum(z, 0.0)), 0.95)


def price_term(x):
    return x - 1 if FAMILY == 'logit' else np.log(x)


def loglik(U, V, z):
    """Binomial log-likelihood of units U of V visitors at linear predictor z (rows last)."""
    if FAMILY == 'logit':
        return (U * z - V * np.logaddexp(0, z)).sum(-1)
    q = np.clip(conv(z), 1e-12, 1 - 1e-12)
    return (U * np.log(q) + (V - U) * np.log1p(-q)).sum(-1)


def load(d):
    tr = np.genfromtxt(f'{d}/truth.csv', delimiter=',', names=True)
    pe = np.genfromtxt(f'{d}/periods.csv', delimiter=',', names=True)
    return tr, pe


def product_view(tr, pe, i):
    """The history the engine sees, the guard's cents and the truth's values there."""
    r = pe[pe['product'] == i]
    hist, nxt = r[r['day'] < DAYS], r[r['day'] == DAYS][0]
    p0, cost, cm = tr['p0'][i], tr['cost'][i], tr['comp_mean'][i]
    a, b, gc = tr['a'][i], tr['b'][i], tr['gc'][i]
    price = np.round(hist['price'] * 100) / 100  # imported in whole cents
    inc = price[-1]
    lo = max(np.ceil(inc * (1 - GUARD) * 100 - 1e-9) / 100, 0.5 * p0, cost)
    hi = min(np.floor(inc * (1 + GUARD) * 100 + 1e-9) / 100, 2 * p0)
    cents = np.arange(np.ceil(lo * 100 - 1e-9), np.floor(hi * 100 + 1e-9) + 1) / 100
    lcn_true = np.log(nxt['comp_mean_price'] / cm)
    rpv = lambda p: conv(a + b * price_term(p / p0) + gc * lcn_true) * p
    lc_hist = np.log(hist['comp_mean_price'])
    return dict(p0=p0, cm=cm, x=price / p0, inc=inc, V=hist['traffic'], U=hist['units'], cents=cents,
                tv=rpv(cents), vinc=rpv(inc), lc_true=np.log(hist['comp_mean_price'] / cm), lcn_true=lcn_true,
                lc=lc_hist - lc_hist.mean(), lcn=np.log(nxt['comp_mean_price']) - lc_hist.mean())


def captured(views, prices):
    c = [(v['tv'][np.argmin(np.abs(v['cents'] - p))] - v['vinc']) / (v['tv'].max() - v['vinc'])
         for v, p in zip(views, prices) if v['tv'].max() - v['vinc'] >= 0.01 * v['vinc']]
    return 100 * np.mean(c), len(c)


BG = np.linspace(-3.0, 0.0, 61)  # grid of the price coefficient b (ce: -3.5 .. 0.5, set in main)


def profile(v):
    """Profile log-likelihood over BG (intercept and competitor coefficient by Newton per b; the
    logit's own likelihood, or for `ce` the Poisson approximation of its log link)."""
    X = np.column_stack([np.ones_like(v['x']), v['lc']])
    U, V = v['U'], v['V']
    w = np.array([np.log((U.sum() + .5) / (V.sum() - U.sum() + .5)), 0.0])
    ll, par = np.zeros(len(BG)), np.zeros((len(BG), 2))
    for k, b in enumerate(BG):
        off = b * price_term(v['x'])
        for _ in range(30):
            z = X @ w + off
            if FAMILY == 'logit':
                q = sig(z)
                wt, g = V * q * (1 - q), X.T @ (U - V * q)
            else:
                m = V * np.exp(z)
                wt, g = m, X.T @ (U - m)
            step = np.linalg.solve((X * wt[:, None]).T @ X + 1e-9 * np.eye(2), g)
            w = w + step
            if np.abs(step).max() < 1e-9:
                break
        ll[k], par[k] = loglik(U, V, X @ w + off), w
    rpv = conv(par[:, :1] + BG[:, None] * price_term(v['cents'] / v['p0'])[None, :] + par[:, 1:] * v['lcn']) * v['cents'][None, :]
    return ll, rpv


def slope_prior_rule(views, prof, logprior):
    out = []
    for v, (ll, rpv) in zip(views, prof):
        lp = ll + logprior
        w = np.exp(lp - lp.max())
        out.append(v['cents'][np.argmax((w / w.sum()) @ rpv)])
    return out


def bayes_true(views):
    """The simulator's population prior (env_sim_family_apply, env_sim_draw_params) on a grid."""
    G = np.linspace(0.30, 1.20, 10)[None, None, :]
    if FAMILY == 'logit':
        M = np.linspace(0.70, 1.35, 53)[:, None, None]
        Q = np.linspace(0.02, 0.08, 31)[None, :, None]
        B = -M / (1 - Q)
        A = np.log(Q / (1 - Q)) - B * (1 / M - 1)
    else:  # ce: elasticity -U(0.3, 2.5), conversion at the list price U(1%, 8%)
        B = -np.linspace(0.30, 2.50, 56)[:, None, None]
        A = np.log(np.linspace(0.01, 0.08, 31))[None, :, None]
    B, A, G = (np.broadcast_arrays(B, A, G)[k].ravel() for k in range(3))
    rev, cap = [], []
    for v in views:
        Z = A[:, None] + B[:, None] * price_term(v['x'])[None, :] + G[:, None] * v['lc_true'][None, :]
        ll = loglik(v['U'][None, :], v['V'][None, :], Z)
        w = np.exp(ll - ll.max())
        w /= w.sum()
        rv = conv(A[:, None] + B[:, None] * price_term(v['cents'] / v['p0'])[None, :] + G[:, None] * v['lcn_true']) * v['cents'][None, :]
        rev.append(v['cents'][np.argmax(w @ rv)])
        vi = conv(A + B * price_term(v['inc'] / v['p0']) + G * v['lcn_true']) * v['inc']
        att = rv.max(1) - vi
        keep = att >= 0.01 * vi  # the product counts only where its attainable uplift does
        wk = w * keep
        ratio = (rv - vi[:, None]) / np.where(keep, att, 1.0)[:, None]
        cap.append(v['cents'][np.argmax(wk @ ratio)] if wk.sum() > 0 else rev[-1])
    return rev, cap


def main():
    global FAMILY, BG
    args = sys.argv[1:]
    if '--family' in args:
        k = args.index('--family')
        FAMILY = args[k + 1]
        del args[k:k + 2]
    if not args or FAMILY not in ('logit', 'ce'):
        sys.exit(__doc__)
    if FAMILY == 'ce':
        BG = np.linspace(-3.5, 0.5, 81)
    sys.argv[1:] = args
    tr, pe = load(sys.argv[1])
    views = [product_view(tr, pe, i) for i in range(len(tr))]
    n_valued = captured(views, [v['inc'] for v in views])[1]
    print(f'{sys.argv[1]}: {len(views)} products, {n_valued} with an attainable uplift >= 1%; captured:')
    if len(sys.argv) > 2:
        eng = {int(r['product_id'][3:]) - 1: r for r in csv.DictReader(gzip.open(sys.argv[2], 'rt'))}
        for agent in ('dqn', 'ddpg'):
            ps = [float(eng[i][f'{agent}_price']) for i in range(len(views))]
            print(f'  engine {agent:22s} {captured(views, ps)[0]:5.1f}%')
    prof = [profile(v) for v in views]
    lik = np.array([ll for ll, _ in prof])
    lw = np.exp(lik - lik.max(1, keepdims=True))
    pm = (lw * BG).sum(1) / lw.sum(1)
    pv = (lw * BG ** 2).sum(1) / lw.sum(1) - pm ** 2
    mu, tau2 = pm.mean(), max(pm.var() - pv.mean(), 1e-4)
    pi = np.full(len(BG), 1.0 / len(BG))
    for _ in range(500):  # NPMLE by EM
        post = lw * pi
        pi = (post / post.sum(1, keepdims=True)).mean(0)
    rules = [('flat', np.zeros(len(BG))), ('weak N(-1, 1)', -0.5 * (BG + 1) ** 2),
             (f'normal EB N({mu:.2f}, {np.sqrt(tau2):.2f}^2)', -0.5 * (BG - mu) ** 2 / tau2),
             ('NPMLE', np.log(pi + 1e-300)),
             ('true range (uniform)', np.where((BG >= -1.35 / 0.92) & (BG <= -0.70 / 0.98) if FAMILY == 'logit'
                                              else (BG >= -2.5) & (BG <= -0.3), 0.0, -1e9))]
    for name, lp in rules:
        print(f'  {name:29s} {captured(views, slope_prior_rule(views, prof, lp))[0]:5.1f}%')
    rev, cap = bayes_true(views)
    print(f'  {"bayes, true prior (revenue)":29s} {captured(views, rev)[0]:5.1f}%')
    print(f'  {"bayes, true prior (captured)":29s} {captured(views, cap)[0]:5.1f}%')


if __name__ == '__main__':
    main()
