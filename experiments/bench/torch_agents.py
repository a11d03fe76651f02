#!/usr/bin/env python3
"""experiments/bench/torch_agents.py - the `rlprice bench agents` workloads in PyTorch and numpy,
run beside rlprice in one invocation, with the ratio per workload.

A peer for the benchmark, never a run-time dependency of rlprice.  Needs Debian's python3-torch
and python3-numpy (apt-get install python3-torch).  Usage, from the repository root after `make`:

    python3 experiments/bench/torch_agents.py [--seconds 2] [--threads N] [--rlprice ./rlprice]

The workloads follow experiments/exp_bench_agents.c and the agents' defaults:
  DQN     32->256->256->21 ReLU, Double DQN, Huber (delta 1), Adam 1e-3, gradient-norm clip 10,
          gamma 0.99, hard target sync every 100 steps, replay of 100,000 random transitions,
          uniform minibatch with replacement; batch 64 and 256.
  DDPG    actor 32->256->256->1 tanh, critic 33->256->256->1 (action as the last input column),
          Adam 1e-4 / 1e-3, clip 10, gamma 0.99, TD3+BC actor loss (alpha 2.5, rlprice's default),
          Polyak tau 0.005 of both targets after every update; batch 64 and 256.
  LinUCB  disjoint, d = 32, 21 arms, alpha 1, Sherman-Morrison update of the chosen arm's
          inverse; one decision plus one update per round (numpy).
PyTorch runs at 1 thread and at --threads and keeps its better figure per workload; rlprice runs
with --threads (default: all cores).  Timing as in rlprice: about --seconds per figure after a warm-up step, split into 8 windows; the
figure is the best window, the mean over all windows follows in brackets.
"""
import argparse
import os
import re
import subprocess
import sys
import time

WINDOWS = 8


def timed(step, seconds, chunk):
    """Best-window and mean rate of step() over about `seconds`."""
    best, total, t_all = 0.0, 0, 0.0
    for _ in range(WINDOWS):
        n, t0 = 0, time.perf_counter()
        t = t0
        while t - t0 < seconds / WINDOWS:
            for _ in range(chunk):
                step()
            n += chunk
            t = time.perf_counter()
        best = max(best, n / (t - t0))
        total += n
        t_all += t - t0
    return best, total / t_all


def mlp(torch, sizes, out_act=None):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    if out_act is not None:
        layers.append(out_act)
    return torch.nn.Sequential(*layers)


def bench_dqn(torch, batch, seconds):
    g = torch.Generator().manual_seed(1)
    n, d, k = 100_000, 32, 21
    s = torch.randn(n, d, generator=g)
    s2 = torch.randn(n, d, generator=g)
    a = torch.randint(0, k, (n,), generator=g)
    r = torch.randn(n, generator=g)
    done = (torch.randint(0, 60, (n,), generator=g) == 0).float()
    q = mlp(torch, [d, 256, 256, k])
    tgt = mlp(torch, [d, 256, 256, k])
    tgt.load_state_dict(q.state_dict())
    opt = torch.optim.Adam(q.parameters(), lr=1e-3)
    huber = torch.nn.SmoothL1Loss(beta=1.0)
    state = {"steps": 0}

    def step():
        idx = torch.randint(0, n, (batch,))
        sb, s2b, ab, rb, db = s[idx], s2[idx], a[idx], r[idx], done[idx]
        with torch.no_grad():
            a_star = q(s2b).argmax(dim=1, keepdim=True)  # Double DQN: online net picks
            y = rb + 0.99 * (1.0 - db) * tgt(s2b).gather(1, a_star).squeeze(1)
        pred = q(sb).gather(1, ab.unsqueeze(1)).squeeze(1)
        loss = huber(pred, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(q.parameters(), 10.0)
        opt.step()
        state["steps"] += 1
        if state["steps"] % 100 == 0:
            tgt.load_state_dict(q.state_dict())

    step()
    return timed(step, seconds, 10)


def bench_ddpg(torch, batch, seconds):
    g = torch.Generator().manual_seed(2)
    n, d = 100_000, 32
    s = torch.randn(n, d, generator=g)
    s2 = torch.randn(n, d, generator=g)
    a = torch.rand(n, 1, generator=g) * 2.0 - 1.0
    r = torch.randn(n, 1, generator=g)
    done = (torch.randint(0, 60, (n, 1), generator=g) == 0).float()
    actor = mlp(torch, [d, 256, 256, 1], torch.nn.Tanh())
    critic = mlp(torch, [d + 1, 256, 256, 1])
    actor_t = mlp(torch, [d, 256, 256, 1], torch.nn.Tanh())
    critic_t = mlp(torch, [d + 1, 256, 256, 1])
    actor_t.load_state_dict(actor.state_dict())
    critic_t.load_state_dict(critic.state_dict())
    opt_a = torch.optim.Adam(actor.parameters(), lr=1e-4)
    opt_c = torch.optim.Adam(critic.parameters(), lr=1e-3)
    pairs = [(list(actor_t.parameters()), list(actor.parameters())),
             (list(critic_t.parameters()), list(critic.parameters()))]
    tau = 0.005

    def step():
        idx = torch.randint(0, n, (batch,))
        sb, s2b, ab, rb, db = s[idx], s2[idx], a[idx], r[idx], done[idx]
        with torch.no_grad():
            y = rb + 0.99 * (1.0 - db) * critic_t(torch.cat([s2b, actor_t(s2b)], dim=1))
        qc = critic(torch.cat([sb, ab], dim=1))
        c_loss = torch.nn.functional.mse_loss(qc, y)
        opt_c.zero_grad(set_to_none=True)
        c_loss.backward()
        torch.nn.utils.clip_grad_norm_(critic.parameters(), 10.0)
        opt_c.step()
        mu = actor(sb)
        qa = critic(torch.cat([sb, mu], dim=1))
        lam = 2.5 / qa.abs().mean().detach().clamp_min(1e-6)  # TD3+BC
        a_loss = -lam * qa.mean() + ((mu - ab) ** 2).mean()
        opt_a.zero_grad(set_to_none=True)
        a_loss.backward()
        torch.nn.utils.clip_grad_norm_(actor.parameters(), 10.0)
        opt_a.step()
        with torch.no_grad():
            for tgt, src in pairs:
                torch._foreach_mul_(tgt, 1.0 - tau)
                torch._foreach_add_(tgt, src, alpha=tau)

    step()
    return timed(step, seconds, 5)


def bench_linucb(np, seconds):
    rng = np.random.default_rng(3)
    d, k, nx, alpha = 32, 21, 1024, 1.0
    xs = (rng.standard_normal((nx, d)) / 5.6).astype(np.float32)
    rs = rng.uniform(size=nx).astype(np.float32)
    a_inv = np.repeat(np.eye(d, dtype=np.float32)[None], k, axis=0)  # [K][d][d]
    b = np.zeros((k, d), dtype=np.float32)
    state = {"n": 0}

    def step():
        i = state["n"] % nx
        x = xs[i]
        ax = a_inv @ x                               # [K][d]
        theta = np.einsum("kij,kj->ki", a_inv, b)    # [K][d]
        ucb = theta @ x + alpha * np.sqrt(np.maximum(ax @ x, 0.0))
        arm = int(np.argmax(ucb))
        v = ax[arm]
        a_inv[arm] -= np.outer(v, v) / (1.0 + x @ v)  # Sherman-Morrison
        b[arm] += rs[i] * x
        state["n"] += 1

    step()
    return timed(step, seconds, 500)


RLPRICE_LINES = [
    ("DQN batch 64", r"DQN train step, batch 64\s+([\d.]+) \(([\d.]+)\)"),
    ("DQN batch 256", r"DQN train step, batch 256\s+([\d.]+) \(([\d.]+)\)"),
    ("DDPG batch 64", r"DDPG update \(critic \+ actor\), batch 64\s+([\d.]+) \(([\d.]+)\)"),
    ("DDPG batch 256", r"DDPG update \(critic \+ actor\), batch 256\s+([\d.]+) \(([\d.]+)\)"),
    ("LinUCB rounds", r"LinUCB disjoint d=32 K=21: decide \+ update\s+([\d.]+) \(([\d.]+)\)"),
]


def run_rlprice(binary, seconds, threads):
    cmd = [binary, "bench", "agents", "--device", "cpu", "--seconds", str(seconds), "--threads", str(threads)]
    print("running: " + " ".join(cmd), flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    sys.stdout.write(out)
    found = {}
    for name, pat in RLPRICE_LINES:
        m = re.search(pat, out)
        if m:
            found[name] = (float(m.group(1)), float(m.group(2)))
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="seconds per figure (default 2)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="threads for both sides (default: all cores)")
    ap.add_argument("--rlprice", default="./rlprice", help="the rlprice binary (default ./rlprice)")
    ap.add_argument("--no-rlprice", action="store_true", help="run the PyTorch side only")
    args = ap.parse_args()
    if args.seconds <= 0 or args.threads < 1:
        ap.error("--seconds must be positive and --threads at least 1")
    try:
        import numpy as np
        import torch
    except ImportError as e:
        sys.exit(f"torch_agents.py: {e}; install Debian's python3-torch and python3-numpy")

    ours = {}
    if not args.no_rlprice:
        if not os.access(args.rlprice, os.X_OK):
            sys.exit(f"torch_agents.py: {args.rlprice} is not an executable; run `make` first")
        ours = run_rlprice(args.rlprice, args.seconds, args.threads)

    # PyTorch's intra-op threads can lose on a small machine (OpenMP hand-offs on 2 cores made
    # its DQN batch-64 step 2.6x slower than one thread here), so the peer runs at 1 thread and at
    # --threads, and each workload keeps its better figure: the comparison is against the best
    # the peer does, not its default.
    theirs, used = {}, {}
    for nt in sorted({1, args.threads}):
        torch.manual_seed(0)
        torch.set_num_threads(nt)
        print(f"PyTorch {torch.__version__} ({nt} thread{'s' if nt > 1 else ''}), numpy {np.__version__}: "
              f"~{args.seconds:g} s per figure, best of {WINDOWS} windows", flush=True)
        got = {}
        for b in (64, 256):
            got[f"DQN batch {b}"] = bench_dqn(torch, b, args.seconds)
            print(f"  DQN batch {b}: {got[f'DQN batch {b}'][0]:.0f} steps/s", flush=True)
        for b in (64, 256):
            got[f"DDPG batch {b}"] = bench_ddpg(torch, b, args.seconds)
            print(f"  DDPG batch {b}: {got[f'DDPG batch {b}'][0]:.0f} updates/s", flush=True)
        if nt == 1:  # numpy's LinUCB is single-threaded work (32x32 products)
            got["LinUCB rounds"] = bench_linucb(np, args.seconds)
            print(f"  LinUCB: {got['LinUCB rounds'][0]:.0f} rounds/s", flush=True)
        for name, v in got.items():
            if name not in theirs or v[0] > theirs[name][0]:
                theirs[name], used[name] = v, nt

    print()
    print(f"{'workload (per second)':<22} {'rlprice':>22} {'PyTorch/numpy':>22} {'threads':>8} {'ratio':>8}")
    for name, _ in RLPRICE_LINES:
        tb, tm = theirs[name]
        if name in ours:
            ob, om = ours[name]
            print(f"{name:<22} {ob:>12.0f} ({om:>7.0f}) {tb:>12.0f} ({tm:>7.0f}) {used[name]:>8} {ob / tb:>7.2f}x")
        else:
            print(f"{name:<22} {'-':>22} {tb:>12.0f} ({tm:>7.0f}) {used[name]:>8} {'-':>8}")
    if not args.no_rlprice and len(ours) != len(RLPRICE_LINES):
        sys.exit("torch_agents.py: could not read every figure from `rlprice bench agents` (format changed?)")


if __name__ == "__main__":
    main()
