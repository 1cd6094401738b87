//! Sine and cosine for small angles as branch-free polynomials, so that a loop over many
//! CartPole envs compiles to SIMD code (a call to libm's `sincos` cannot be vectorised).
//!
//! The polynomials are the classic minimax kernels for `|x| <= pi/4` (Sun's fdlibm, also in
//! FreeBSD's msun), accurate to under one unit in the last place. They round differently
//! from glibc's `sin`/`cos` for about 4% of CartPole's angles, by one ulp: a float64 state
//! can differ from the single env's in its last bit, far below what the float32
//! observations show (the vector env's tests compare the two over a million steps).

/// The largest angle the kernels are accurate for.
pub(crate) const SMALL_ANGLE_LIMIT: f64 = std::f64::consts::FRAC_PI_4;

const S1: f64 = -1.666_666_666_666_663_2e-1;
const S2: f64 = 8.333_333_333_322_49e-3;
const S3: f64 = -1.984_126_982_985_795e-4;
const S4: f64 = 2.755_731_370_707_006_8e-6;
const S5: f64 = -2.505_076_025_340_686_3e-8;
const S6: f64 = 1.589_690_995_211_55e-10;

const C1: f64 = 4.166_666_666_666_66e-2;
const C2: f64 = -1.388_888_888_887_411e-3;
const C3: f64 = 2.480_158_728_947_673e-5;
const C4: f64 = -2.755_731_435_139_066_3e-7;
const C5: f64 = 2.087_572_321_298_175e-9;
const C6: f64 = -1.135_964_755_778_819_5e-11;

/// `(sin x, cos x)` for `|x| <= SMALL_ANGLE_LIMIT`.
#[inline(always)]
pub(crate) fn small_angle_sin_cos(x: f64) -> (f64, f64) {
    let z = x * x;
    let w = z * z;
    let sin_tail = S2 + z * (S3 + z * S4) + z * w * (S5 + z * S6);
    let sin = x + z * x * (S1 + z * sin_tail);
    let cos_tail = z * (C1 + z * (C2 + z * C3)) + w * w * (C4 + z * (C5 + z * C6));
    let half_z = 0.5 * z;
    let one_minus = 1.0 - half_z;
    let cos = one_minus + (((1.0 - one_minus) - half_z) + z * cos_tail);
    (sin, cos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::EnvRng;

    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    /// Over CartPole's range of pole angles, the kernels are within one ulp of libm, and
    /// equal to it for the great majority of angles.
    #[test]
    fn within_one_ulp_of_libm() {
        let mut rng = EnvRng::from_seed(11);
        let samples = 200_000;
        let mut differing = 0;
        for k in 0..samples {
            let limit = if k % 2 == 0 { 0.3 } else { SMALL_ANGLE_LIMIT };
            let x = rng.uniform(-limit, limit);
            let (sin, cos) = small_angle_sin_cos(x);
            assert!(ulps(sin, x.sin()) <= 1, "sin({x}): {sin} vs {}", x.sin());
            assert!(ulps(cos, x.cos()) <= 1, "cos({x}): {cos} vs {}", x.cos());
            differing += usize::from(sin != x.sin() || cos != x.cos());
        }
        let fraction = differing as f64 / samples as f64;
        assert!(fraction < 0.05, "{differing} of {samples} differ from libm");
    }

    #[test]
    fn exact_at_zero_and_signed() {
        assert_eq!(small_angle_sin_cos(0.0), (0.0, 1.0));
        let (s, c) = small_angle_sin_cos(-0.2);
        assert_eq!(
            (s, c),
            (-small_angle_sin_cos(0.2).0, small_angle_sin_cos(0.2).1)
        );
    }
}
