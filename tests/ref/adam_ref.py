#!/usr/bin/env python3
"""tests/ref/adam_ref.py - independent reference for test_engine_model.c (test_adam_reference).

A single dense layer 2 -> 2 (identity activation), MSE averaged over all elements, trained
with Adam (bias correction) for 3 steps, in double precision with plain Python.  Prints the
6 parameters (W row-major then b) after each step, for clip_norm = 0 (off) and 0.1, plus the
gradient norm before clipping at each step.  The printed values are pasted into the test.
"""
import math

X = [[1.0, 2.0], [-1.0, 0.5], [0.3, -0.7]]
T = [[0.5, 1.0], [-0.5, 0.0], [1.0, -1.0]]
W0 = [0.5, -0.3, 0.2, 0.4]  # W[out][in]
B0 = [0.1, -0.2]
LR, B1, B2, EPS = 0.05, 0.9, 0.999, 1e-8


def grads(w, b):
    gw = [0.0] * 4
    gb = [0.0] * 2
    n = len(X) * 2
    for x, t in zip(X, T):
        for j in range(2):
            y = b[j] + w[j * 2] * x[0] + w[j * 2 + 1] * x[1]
            d = 2.0 * (y - t[j]) / n
            gb[j] += d
            gw[j * 2] += d * x[0]
            gw[j * 2 + 1] += d * x[1]
    return gw + gb


def run(clip):
    p = W0 + B0
    m = [0.0] * 6
    v = [0.0] * 6
    for t in range(1, 4):
        g = grads(p[:4], p[4:])
        norm = math.sqrt(sum(x * x for x in g))
        if clip > 0 and norm > clip:
            g = [x * clip / norm for x in g]
        bc1 = 1 - B1 ** t
        bc2 = 1 - B2 ** t
        for k in range(6):
            m[k] = B1 * m[k] + (1 - B1) * g[k]
            v[k] = B2 * v[k] + (1 - B2) * g[k] * g[k]
            p[k] -= LR * (m[k] / bc1) / (math.sqrt(v[k] / bc2) + EPS)
        print("clip %g step %d norm %.9g params %s" % (clip, t, norm, " ".join("%.9g" % x for x in p)))


run(0.0)
run(0.1)
