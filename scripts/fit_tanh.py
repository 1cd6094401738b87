"""Fits the coefficients of crates/kernels/src/tanh.rs: tanh(x) ~ x P(x^2) / Q(x^2) with
P and Q of degree 4 in x^2, P(0) = Q(0) = 1, on [0, 9] (beyond 9 tanh rounds to 1 in f32).

Iteratively reweighted linear least squares on the relative error, reweighted towards the
worst points each round (Lawson), in float64 against mpmath's tanh. Prints the coefficients
as f32 and the worst error of the f32 evaluation in ULP.

Run by hand (needs numpy and mpmath):
    ~/.venvs/sb3/bin/python scripts/fit_tanh.py
"""

import mpmath
import numpy as np

SATURATION = 9.0
DEGREE = 4


def fit(x, exact, rounds=200):
    s = x * x
    weights = np.ones_like(x)
    previous_q = np.ones_like(x)
    best = None
    for _ in range(rounds):
        # x + x sum p_k s^k - exact (1 + sum q_k s^k) = 0, scaled to a relative residual.
        columns = [x * s**k for k in range(1, DEGREE + 1)]
        columns += [-exact * s**k for k in range(1, DEGREE + 1)]
        scale = np.sqrt(weights) / (exact * previous_q)
        design = np.stack(columns, axis=1) * scale[:, None]
        solution, *_ = np.linalg.lstsq(design, (exact - x) * scale, rcond=None)
        p = np.concatenate([[1.0], solution[:DEGREE]])
        q = np.concatenate([[1.0], solution[DEGREE:]])
        previous_q = np.polyval(q[::-1], s)
        error = np.abs(x * np.polyval(p[::-1], s) / previous_q / exact - 1)
        if best is None or error.max() < best[2]:
            best = (p, q, error.max())
        weights = weights * error / error.max() + 1e-300
        weights /= weights.sum()
    return best


def evaluate_f32(p, q, x):
    x = np.clip(x.astype(np.float32), -SATURATION, SATURATION)
    s = x * x
    numerator = np.float32(0)
    denominator = np.float32(0)
    for a, b in zip(p.astype(np.float32)[::-1], q.astype(np.float32)[::-1]):
        numerator = numerator * s + a
        denominator = denominator * s + b
    return np.clip(x * numerator / denominator, np.float32(-1), np.float32(1))


def main():
    mpmath.mp.dps = 30
    x = np.concatenate([np.linspace(1e-5, 1, 4000), np.linspace(1, SATURATION, 8000)])
    exact = np.array([float(mpmath.tanh(v)) for v in x])
    p, q, relative = fit(x, exact)
    print(f"fit: worst relative error {relative:.3g}")
    print("numerator  ", [float(np.float32(c)) for c in p])
    print("denominator", [float(np.float32(c)) for c in q])

    rng = np.random.default_rng(0)
    test = np.concatenate(
        [rng.uniform(-12, 12, 300_000), rng.uniform(-1e-3, 1e-3, 20_000)]
    ).astype(np.float32)
    reference = np.tanh(test.astype(np.float64))
    approx = evaluate_f32(p, q, test).astype(np.float64)
    spacing = np.spacing(np.abs(reference).astype(np.float32)).astype(np.float64)
    print(f"f32: worst {np.max(np.abs(approx - reference) / spacing):.2f} ULP, "
          f"{np.max(np.abs(approx - reference)):.3g} absolute")


if __name__ == "__main__":
    main()
