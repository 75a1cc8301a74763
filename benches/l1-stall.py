#!/usr/bin/env python3
"""Chooses L1-wavelet's stopping rule and Tikhonov weight from the trace of
`realistic --l1-trace` (issue 18).

Usage:
  cargo run --release -p basin-benches --bin realistic -- --l1-trace 0,0.02,0.05,0.1,0.2 > l1trace.csv
  python3 benches/l1-stall.py l1trace.csv

For each fraction eps, the rule basin's FISTA applies (cs::L1Params::stall): stop after the first
step n >= 2 whose ||Az - y||^2 lies less than eps * ||Az - y||^2 below step n - 1's. Prints the
mean PSNR at that stop (and the mean step count), at the fixed step counts of the shipped
protocol, and the mean per-slice best (oracle) over the traced steps, for the tuning slices
(TUNE ..., where the fraction is chosen) and the test slices, prewhitening on and off, 4x and 8x,
with the paired on - off difference (mean +- standard error); one table per Tikhonov weight mu.
Standard library only.
"""
import csv
import statistics
import sys
from collections import defaultdict

FRACTIONS = [0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05]
FIXED = [20, 30, 50, 100, 200]
TAUS = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0]


def main(path):
    traces = defaultdict(list)  # (mu, accel, slice, prewhiten) -> [(step, psnr, residual)]
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            key = (row["tikhonov"], row["accel"], row["slice"], row["prewhiten"])
            traces[key].append(
                (int(row["iterations"]), float(row["psnr"]), float(row["residual_rel"]),
                 float(row.get("residual_over_noise") or "nan"))
            )
    for v in traces.values():
        v.sort()

    def stop(v, eps):
        for i in range(1, len(v)):
            before, now = v[i - 1][2], v[i][2]
            if before - now < eps * now:
                return i
        return len(v) - 1

    def fixed(v, n):
        return min(n, len(v)) - 1

    def discrepancy(v, tau):
        # The first step whose ||Az - y||^2 is within tau times the expected noise energy.
        for i, t in enumerate(v):
            if t[3] <= tau:
                return i
        return len(v) - 1

    rules = [(f"stall {e}", lambda v, e=e: stop(v, e)) for e in FRACTIONS]
    if all(t[3] == t[3] for v in traces.values() for t in v):
        rules += [(f"discrepancy {t}", lambda v, t=t: discrepancy(v, t)) for t in TAUS]
    rules += [(f"{n} steps", lambda v, n=n: fixed(v, n)) for n in FIXED]
    rules += [("oracle", None)]

    def slices(a, on, tune):
        return sorted(
            (name, v) for (m, acc, name, o), v in traces.items()
            if m == mu and acc == a and o == on and name.startswith("TUNE") == tune
        )

    for mu in sorted({k[0] for k in traces}, key=float):
        print(f"\n### Tikhonov weight {mu}\n")
        table(rules, slices)


def table(rules, slices):
    print("| slices | rule | " + " | ".join(
        f"{a}x {'on' if on == 'true' else 'off'} dB (steps)"
        for a in ("4", "8") for on in ("true", "false")) + " | 4x on - off | 8x on - off |")
    print("|---|---|---|---|---|---|---|---|")
    for tune in (True, False):
        label = "tuning" if tune else "test"
        for name, rule in rules:
            cells, diffs = [], []
            for a in ("4", "8"):
                per = {}
                for on in ("true", "false"):
                    vs = slices(a, on, tune)
                    if rule is None:
                        ps = [max(t[1] for t in v) for _, v in vs]
                        its = [max(v, key=lambda t: t[1])[0] for _, v in vs]
                    else:
                        ks = [rule(v) for _, v in vs]
                        ps = [v[k][1] for (_, v), k in zip(vs, ks)]
                        its = [v[k][0] for (_, v), k in zip(vs, ks)]
                    per[on] = ps
                    cells.append(f"{statistics.mean(ps):.2f} ({statistics.mean(its):.1f})")
                d = [x - y for x, y in zip(per["true"], per["false"])]
                se = statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan")
                diffs.append(f"{statistics.mean(d):+.2f} +- {se:.2f}")
            print(f"| {label} | {name} | " + " | ".join(cells + diffs) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
