"""Checks `gradless compare`'s statistics against the rliable package.

Run by hand, not by CI:

    python3 -m venv .venv && .venv/bin/pip install rliable "pandas<3"
    gradless compare ppo=runs/ppo dqn=runs/dqn --out /tmp/comparison
    .venv/bin/python benchmarks/rliable/check_compare.py /tmp/comparison/comparison.json

It rebuilds each group's score matrix from comparison.json (runs x envs; every env of a
group needs the same number of runs, as rliable's matrices do), computes rliable's IQM,
mean, median and optimality gap (gamma: 1 for normalised scores, else the env's target)
and the probability of improvement, with `get_interval_estimates` (percentile intervals,
the file's `reps`), and prints both side by side. Point estimates must agree to 1e-9;
intervals come from other random draws, so they agree only to bootstrap noise (reported
as the largest difference relative to the interval's width). Exits non-zero when a point
estimate differs.
"""

import json
import sys

import numpy as np
from rliable import library as rly
from rliable import metrics


def matrix(group, normalized):
    by_env = {}
    for run in group["runs"]:
        value = run["normalized_score"] if normalized else run["score"]
        by_env.setdefault(run["env"], []).append(value)
    envs = sorted(by_env)
    counts = {len(by_env[e]) for e in envs}
    if len(counts) != 1:
        raise SystemExit(f"{group['group']}: envs have different numbers of runs ({by_env})")
    return envs, np.array([by_env[e] for e in envs]).T


def main():
    report = json.load(open(sys.argv[1]))
    normalized = report["normalized"]
    reps = report["reps"]
    targets = {e["env"]: e["target"] for e in report["envs"]}
    scores, gammas = {}, {}
    for group in report["groups"]:
        envs, m = matrix(group, normalized)
        scores[group["group"]] = m
        gamma = {1.0} if normalized else {targets[e] for e in envs}
        if len(gamma) != 1:
            raise SystemExit("unnormalised scores of several envs: rliable takes one gamma")
        gammas[group["group"]] = gamma.pop()

    failed = False
    worst_interval = 0.0
    for group in report["groups"]:
        name = group["group"]
        gamma = gammas[name]
        funcs = {
            "iqm": metrics.aggregate_iqm,
            "mean": metrics.aggregate_mean,
            "median": metrics.aggregate_median,
            "optimality_gap": lambda x, g=gamma: metrics.aggregate_optimality_gap(x, g),
        }
        for key, func in funcs.items():
            point, ci = rly.get_interval_estimates(
                {name: scores[name]}, lambda x, f=func: np.array([f(x)]), reps=reps
            )
            theirs, their_ci = float(point[name][0]), ci[name][:, 0]
            ours, our_ci = group[key], group[key + "_ci95"]
            width = max(their_ci[1] - their_ci[0], 1e-12)
            relative = max(abs(our_ci[0] - their_ci[0]), abs(our_ci[1] - their_ci[1])) / width
            worst_interval = max(worst_interval, relative)
            agree = abs(ours - theirs) <= 1e-9 * max(1.0, abs(theirs))
            failed |= not agree
            print(f"{name:>10} {key:<15} gradless {ours:12.6f} [{our_ci[0]:.4f}, {our_ci[1]:.4f}]"
                  f"   rliable {theirs:12.6f} [{their_ci[0]:.4f}, {their_ci[1]:.4f}]"
                  f"{'' if agree else '   DIFFERS'}")
    for pair in report["pairs"]:
        x, y = pair["x"], pair["y"]
        point, ci = rly.get_interval_estimates(
            {f"{x},{y}": (scores[x], scores[y])}, metrics.probability_of_improvement, reps=reps
        )
        theirs, their_ci = float(np.ravel(point[f"{x},{y}"])[0]), np.ravel(ci[f"{x},{y}"])
        ours, our_ci = pair["probability_of_improvement"], pair["probability_of_improvement_ci95"]
        agree = abs(ours - theirs) <= 1e-9
        failed |= not agree
        width = max(their_ci[1] - their_ci[0], 1e-12)
        worst_interval = max(worst_interval, max(abs(our_ci[0] - their_ci[0]), abs(our_ci[1] - their_ci[1])) / width)
        print(f"P({x} > {y}) gradless {ours:.6f} [{our_ci[0]:.4f}, {our_ci[1]:.4f}]"
              f"   rliable {theirs:.6f} [{float(their_ci[0]):.4f}, {float(their_ci[1]):.4f}]"
              f"{'' if agree else '   DIFFERS'}")
    print(json.dumps({"point_estimates_agree": not failed,
                      "largest_interval_end_difference_over_width": worst_interval}))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
