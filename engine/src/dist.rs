//! Distributions of durations, sampled into integer nanoseconds.
//!
//! Written as text with units so a scenario reads like a lab note:
//! `const(50us)`, `uniform(10us, 20us)`, `exp(100us)` (mean),
//! `normal(100us, 10us)` (mean, standard deviation; truncated at zero),
//! `lognormal(100us, 50us)` (mean, standard deviation of the distribution
//! itself, not of its logarithm). A bare duration such as `50us` means
//! `const(50us)`. Units: `ns`, `us` (or `µs`), `ms`, `s`.

use std::fmt;

use crate::rng::Stream;
use crate::{SimDuration, MAX_DURATION_NS, MAX_SAMPLE_NS};

/// A distribution of non-negative durations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dist {
    /// Always the same value [ns].
    Constant(u64),
    /// Uniform on `[lo, hi]` [ns].
    Uniform {
        /// Lower bound [ns].
        lo: u64,
        /// Upper bound [ns].
        hi: u64,
    },
    /// Exponential with the given mean [ns].
    Exponential {
        /// Mean [ns].
        mean: f64,
    },
    /// Normal, truncated at zero (negative draws become zero).
    Normal {
        /// Mean [ns].
        mean: f64,
        /// Standard deviation [ns].
        sd: f64,
    },
    /// Lognormal with the given mean and standard deviation of the value.
    LogNormal {
        /// Mean of the value [ns].
        mean: f64,
        /// Standard deviation of the value [ns].
        sd: f64,
        /// Derived: mean of the underlying normal.
        mu: f64,
        /// Derived: standard deviation of the underlying normal.
        sigma: f64,
    },
}

/// Why a distribution or duration text could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistError(pub String);

impl fmt::Display for DistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DistError {}

/// Parses a duration with a unit: `250ns`, `1.5us`, `3ms`, `2s`.
pub fn parse_duration(text: &str) -> Result<SimDuration, DistError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .ok_or_else(|| DistError(format!("`{t}` has no unit (expected ns, us, ms or s)")))?;
    let (num, unit) = t.split_at(split);
    let value: f64 =
        num.replace('_', "").parse().map_err(|_| DistError(format!("`{t}` is not a number followed by a unit")))?;
    let scale = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        u => return Err(DistError(format!("unknown time unit `{u}` in `{t}` (expected ns, us, ms or s)"))),
    };
    let ns = value * scale;
    if !ns.is_finite() || ns < 0.0 {
        return Err(DistError(format!("duration `{t}` is out of range")));
    }
    if ns > MAX_DURATION_NS as f64 {
        return Err(DistError(format!(
            "duration `{t}` is above the longest emu accepts, {}s (11.6 days)",
            MAX_DURATION_NS / 1_000_000_000
        )));
    }
    Ok(SimDuration(ns.round() as u64))
}

/// Formats nanoseconds with the largest unit that shows it exactly in at
/// most three decimals: `10600` is `10.6us`, `56000000` is `56ms`.
pub fn format_duration(ns: u64) -> String {
    for (scale, unit) in [(1_000_000_000u64, "s"), (1_000_000, "ms"), (1_000, "us")] {
        if ns >= scale && (ns * 1000).is_multiple_of(scale) {
            let whole = ns / scale;
            let frac = ns % scale;
            if frac == 0 {
                return format!("{whole}{unit}");
            }
            let digits = format!("{:0width$}", frac, width = scale.ilog10() as usize);
            return format!("{whole}.{}{unit}", digits.trim_end_matches('0'));
        }
    }
    format!("{ns}ns")
}

impl Dist {
    /// A constant duration.
    pub fn constant(d: SimDuration) -> Dist {
        Dist::Constant(d.0)
    }

    /// A lognormal with the given mean and standard deviation [ns].
    pub fn lognormal(mean: f64, sd: f64) -> Dist {
        let sigma2 = libm::log(1.0 + (sd * sd) / (mean * mean));
        Dist::LogNormal { mean, sd, mu: libm::log(mean) - sigma2 / 2.0, sigma: sigma2.sqrt() }
    }

    /// Parses the text form described in the module docs.
    pub fn parse(text: &str) -> Result<Dist, DistError> {
        let t = text.trim();
        let Some(open) = t.find('(') else {
            return parse_duration(t).map(Dist::constant).map_err(|e| {
                DistError(format!(
                    "{e}; a distribution is a duration or one of const(d), uniform(lo, hi), \
                     exp(mean), normal(mean, sd), lognormal(mean, sd)"
                ))
            });
        };
        if !t.ends_with(')') {
            return Err(DistError(format!("`{t}`: missing closing parenthesis")));
        }
        let name = t[..open].trim();
        let args: Vec<&str> = t[open + 1..t.len() - 1].split(',').map(str::trim).collect();
        let want = |n: usize| -> Result<Vec<f64>, DistError> {
            if args.len() != n {
                return Err(DistError(format!("`{t}`: {name} takes {n} argument(s), got {}", args.len())));
            }
            args.iter().map(|a| parse_duration(a).map(|d| d.0 as f64)).collect()
        };
        match name {
            "const" | "constant" => Ok(Dist::Constant(want(1)?[0] as u64)),
            "uniform" => {
                let v = want(2)?;
                if v[0] > v[1] {
                    return Err(DistError(format!("`{t}`: lower bound above upper bound")));
                }
                Ok(Dist::Uniform { lo: v[0] as u64, hi: v[1] as u64 })
            }
            "exp" | "exponential" => Ok(Dist::Exponential { mean: want(1)?[0] }),
            "normal" => {
                let v = want(2)?;
                Ok(Dist::Normal { mean: v[0], sd: v[1] })
            }
            "lognormal" => {
                let v = want(2)?;
                if v[0] <= 0.0 {
                    return Err(DistError(format!("`{t}`: lognormal mean must be above zero")));
                }
                Ok(Dist::lognormal(v[0], v[1]))
            }
            other => Err(DistError(format!(
                "unknown distribution `{other}` (expected const, uniform, exp, normal or lognormal)"
            ))),
        }
    }

    /// The mean of the distribution [ns].
    pub fn mean_ns(&self) -> f64 {
        match *self {
            Dist::Constant(c) => c as f64,
            Dist::Uniform { lo, hi } => (lo as f64 + hi as f64) / 2.0,
            Dist::Exponential { mean } | Dist::Normal { mean, .. } | Dist::LogNormal { mean, .. } => mean,
        }
    }

    /// Draws one value [ns] from `rng`, at most [`MAX_SAMPLE_NS`]. A
    /// constant draws no random number.
    #[inline]
    pub fn sample(&self, rng: &mut Stream) -> u64 {
        let v = match *self {
            Dist::Constant(c) => c,
            Dist::Uniform { lo, hi } => lo + rng.below(hi - lo + 1),
            Dist::Exponential { mean } => (-mean * libm::log(rng.next_f64_nonzero())).round() as u64,
            Dist::Normal { mean, sd } => (mean + sd * std_normal(rng)).max(0.0).round() as u64,
            Dist::LogNormal { mu, sigma, .. } => libm::exp(mu + sigma * std_normal(rng)).round() as u64,
        };
        v.min(MAX_SAMPLE_NS)
    }
}

/// A standard normal draw (Box-Muller; uses two uniforms, keeps none).
#[inline]
fn std_normal(rng: &mut Stream) -> f64 {
    let u1 = rng.next_f64_nonzero();
    let u2 = rng.next_f64();
    (-2.0 * libm::log(u1)).sqrt() * libm::cos(std::f64::consts::TAU * u2)
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |x: f64| format_duration(x.round() as u64);
        match *self {
            Dist::Constant(c) => write!(f, "const({})", format_duration(c)),
            Dist::Uniform { lo, hi } => write!(f, "uniform({}, {})", format_duration(lo), format_duration(hi)),
            Dist::Exponential { mean } => write!(f, "exp({})", d(mean)),
            Dist::Normal { mean, sd } => write!(f, "normal({}, {})", d(mean), d(sd)),
            Dist::LogNormal { mean, sd, .. } => write!(f, "lognormal({}, {})", d(mean), d(sd)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Domain;

    /// Draws pinned across machines: sampling goes through the `libm`
    /// crate, not the platform's `ln`/`exp`/`cos` (which differ between C
    /// libraries and CPUs in the last bit), so a shard of a sweep run on
    /// another machine gives the same bytes. A change here changes every
    /// result of every stochastic scenario.
    #[test]
    fn draws_are_the_same_on_every_machine() {
        let mut rng = Stream::new(42, Domain(7), 3);
        let draw = |d: Dist, rng: &mut Stream| (0..4).map(|_| d.sample(rng)).collect::<Vec<u64>>();
        let exp = draw(Dist::Exponential { mean: 1e6 }, &mut rng);
        let normal = draw(Dist::Normal { mean: 1e6, sd: 2e5 }, &mut rng);
        let lognormal = draw(Dist::lognormal(1e6, 5e5), &mut rng);
        let uniform = draw(Dist::Uniform { lo: 10, hi: 1_000 }, &mut rng);
        assert_eq!(exp, GOLDEN_EXP);
        assert_eq!(normal, GOLDEN_NORMAL);
        assert_eq!(lognormal, GOLDEN_LOGNORMAL);
        assert_eq!(uniform, GOLDEN_UNIFORM);
        // The special functions behind the balance test's p-value too.
        // Q(2.5, 3) = 0.30622 (chi-square with 5 degrees of freedom at 6).
        assert_eq!(crate::stats::gamma_q(2.5, 3.0).to_bits(), GOLDEN_GAMMA_Q);
    }

    #[test]
    fn parses_durations_with_units() {
        assert_eq!(parse_duration("250ns").unwrap().0, 250);
        assert_eq!(parse_duration("1.5us").unwrap().0, 1_500);
        assert_eq!(parse_duration("3ms").unwrap().0, 3_000_000);
        assert_eq!(parse_duration("2s").unwrap().0, 2_000_000_000);
        assert!(parse_duration("12").unwrap_err().0.contains("no unit"));
        assert!(parse_duration("12min").unwrap_err().0.contains("unknown time unit"));
    }

    #[test]
    fn formats_durations_exactly() {
        assert_eq!(format_duration(0), "0ns");
        assert_eq!(format_duration(10_600), "10.6us");
        assert_eq!(format_duration(56_000), "56us");
        assert_eq!(format_duration(1_500_000_000), "1.5s");
        assert_eq!(format_duration(1_234), "1.234us");
        assert_eq!(format_duration(1_234_567), "1234.567us");
        assert_eq!(format_duration(999), "999ns");
        for ns in [1u64, 999, 1_001, 10_600, 1_234_567, 7_000_000_001] {
            assert_eq!(parse_duration(&format_duration(ns)).unwrap().0, ns);
        }
    }

    #[test]
    fn parses_and_prints_distributions() {
        for text in ["const(50us)", "uniform(10us, 20us)", "exp(100us)", "normal(1ms, 100us)", "lognormal(100us, 50us)"]
        {
            let d = Dist::parse(text).unwrap();
            assert_eq!(d.to_string(), text);
        }
        assert_eq!(Dist::parse("7us").unwrap(), Dist::Constant(7_000));
        assert!(Dist::parse("poisson(3us)").is_err());
        assert!(Dist::parse("uniform(3us)").is_err());
        assert!(Dist::parse("uniform(5us, 3us)").is_err());
    }

    fn sample_mean_sd(d: Dist, n: usize) -> (f64, f64) {
        let mut rng = Stream::new(9, Domain(0), 0);
        let xs: Vec<f64> = (0..n).map(|_| d.sample(&mut rng) as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var.sqrt())
    }

    #[test]
    fn sample_moments_match_parameters() {
        let n = 200_000;
        let (m, _) = sample_mean_sd(Dist::parse("exp(100us)").unwrap(), n);
        assert!((m / 100_000.0 - 1.0).abs() < 0.01, "exp mean {m}");
        let (m, sd) = sample_mean_sd(Dist::parse("lognormal(100us, 50us)").unwrap(), n);
        assert!((m / 100_000.0 - 1.0).abs() < 0.01, "lognormal mean {m}");
        assert!((sd / 50_000.0 - 1.0).abs() < 0.03, "lognormal sd {sd}");
        let (m, sd) = sample_mean_sd(Dist::parse("normal(1ms, 100us)").unwrap(), n);
        assert!((m / 1e6 - 1.0).abs() < 0.005 && (sd / 1e5 - 1.0).abs() < 0.02);
        let (m, _) = sample_mean_sd(Dist::parse("uniform(10us, 20us)").unwrap(), n);
        assert!((m / 15_000.0 - 1.0).abs() < 0.005);
    }

    const GOLDEN_EXP: [u64; 4] = [349_683, 268_126, 625_096, 2_455_311];
    const GOLDEN_NORMAL: [u64; 4] = [766_481, 1_483_583, 1_249_266, 874_522];
    const GOLDEN_LOGNORMAL: [u64; 4] = [514_383, 2_113_555, 906_464, 557_971];
    const GOLDEN_UNIFORM: [u64; 4] = [890, 224, 211, 361];
    const GOLDEN_GAMMA_Q: u64 = 0x3fd3_9917_3c00_1914;
}
