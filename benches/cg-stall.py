#!/usr/bin/env python3
"""Chooses CG-SENSE's stall fraction from the trace of `realistic --cg-trace` (issue 18).

Usage:
  cargo run --release -p basin-benches --bin realistic -- --cg-trace > trace.csv
  python3 benches/cg-stall.py trace.csv

For each fraction eps, the rule basin ships (solvers::EarlyStop::stall): stop at the first
iteration k >= 2 whose ||Ax - y||^2 lies less than eps * ||Ax - y||^2 below iteration k - 1's
(the trace's residual_over_noise squared; sigma cancels). Prints the mean PSNR at that stop and
the mean per-slice best (oracle) over the first 20 iterations, for the tuning slices (TUNE ...,
where the fraction is chosen) and the test slices, prewhitening on and off, 4x and 8x.
Standard library only.
"""
import csv
import statistics
import sys
from collections import defaultdict

FRACTIONS = [0.005, 0.0075, 0.01, 0.015, 0.02, 0.03]


def main(path):
    traces = defaultdict(list)  # (accel, slice, prewhiten) -> [(iterations, psnr, residual)]
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            key = (row["accel"], row["slice"], row["prewhiten"])
            traces[key].append(
                (int(row["iterations"]), float(row["psnr"]), float(row["residual_over_noise"]))
            )
    for v in traces.values():
        v.sort()

    def stop(v, eps):
        for i in range(1, len(v)):
            before, now = v[i - 1][2] ** 2, v[i][2] ** 2
            if before - now < eps * now:
                return i  # index of the iterate just computed
        return len(v) - 1

    print("| slices | eps | " + " | ".join(
        f"{a}x {'on' if on == 'true' else 'off'} dB (iterations)"
        for a in ("4", "8") for on in ("true", "false")) + " |")
    print("|---|---|---|---|---|---|")
    for tune in (True, False):
        label = "tuning" if tune else "test"
        for eps in FRACTIONS + [None]:
            cells = []
            for a in ("4", "8"):
                for on in ("true", "false"):
                    vs = [v for (acc, name, o), v in traces.items()
                          if acc == a and o == on and name.startswith("TUNE") == tune]
                    if eps is None:
                        cells.append(f"{statistics.mean(max(p for _, p, _ in v) for v in vs):.2f}")
                    else:
                        ks = [stop(v, eps) for v in vs]
                        psnr = statistics.mean(v[k][1] for v, k in zip(vs, ks))
                        its = statistics.mean(v[k][0] for v, k in zip(vs, ks))
                        cells.append(f"{psnr:.2f} ({its:.1f})")
            name = "oracle" if eps is None else f"{eps}"
            print(f"| {label} | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
