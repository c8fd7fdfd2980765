//! Values with units, written as text in scenarios: durations (`10.6us`),
//! distributions (`exp(100us)`), bandwidths (`10Gbps`), port ranges.

use std::fmt;

use emu_engine::{Dist, SimDuration};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration written with a unit: `250ns`, `10.6us`, `3ms`, `2s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub u64);

impl Duration {
    /// Nanoseconds.
    pub fn ns(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&emu_engine::format_duration(self.0))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration with a unit, such as \"10us\", \"1.5ms\" or \"2s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                emu_engine::parse_duration(v).map(|d: SimDuration| Duration(d.0)).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                Err(E::custom(format!("{v} has no unit: write it as a string such as \"{v}us\"")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
                Err(E::custom(format!("{v} has no unit: write it as a string such as \"{v}us\"")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A distribution of durations: `const(50us)`, `exp(100us)`, ...
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DistText(pub Dist);

impl Serialize for DistText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for DistText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dist::parse(&s).map(DistText).map_err(de::Error::custom)
    }
}

/// A bandwidth: `10Gbps`, `25Gbit/s`, `100Mbps`, `1.5Tbps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bandwidth(pub u64);

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b.is_multiple_of(1_000_000_000) {
            write!(f, "{}Gbps", b / 1_000_000_000)
        } else if b.is_multiple_of(1_000_000) {
            write!(f, "{}Mbps", b / 1_000_000)
        } else {
            write!(f, "{b}bps")
        }
    }
}

/// Parses a bandwidth (`10Gbps`) into bit/s.
pub fn parse_bandwidth(t: &str) -> Result<u64, String> {
    let t = t.trim();
    let split = t
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| format!("`{t}` has no unit (expected bps, Kbps, Mbps, Gbps or Tbps)"))?;
    let (num, unit) = t.split_at(split);
    let v: f64 = num.trim().parse().map_err(|_| format!("`{t}` is not a number followed by a unit"))?;
    let scale = match unit.trim_end_matches("/s").to_ascii_lowercase().as_str() {
        "bps" | "bit" => 1.0,
        "kbps" | "kbit" => 1e3,
        "mbps" | "mbit" => 1e6,
        "gbps" | "gbit" => 1e9,
        "tbps" | "tbit" => 1e12,
        _ => return Err(format!("unknown bandwidth unit `{unit}` in `{t}` (expected bps, Kbps, Mbps, Gbps or Tbps)")),
    };
    let bps = v * scale;
    if !(1.0..1e15).contains(&bps) {
        return Err(format!("bandwidth `{t}` is out of range"));
    }
    Ok(bps.round() as u64)
}

impl Serialize for Bandwidth {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Bandwidth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_bandwidth(&s).map(Bandwidth).map_err(de::Error::custom)
    }
}

/// An inclusive port range `lo-hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange(pub u32, pub u32);

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}-{}", self.0, self.1))
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bad = || de::Error::custom(format!("`{s}` is not a port range such as \"30000-32767\""));
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let a: u32 = a.trim().parse().map_err(|_| bad())?;
        let b: u32 = b.trim().parse().map_err(|_| bad())?;
        if a == 0 || b > 65535 || a > b {
            return Err(de::Error::custom(format!("`{s}`: ports must satisfy 1 <= low <= high <= 65535")));
        }
        Ok(PortRange(a, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidths() {
        assert_eq!(parse_bandwidth("10Gbps").unwrap(), 10_000_000_000);
        assert_eq!(parse_bandwidth("25Gbit/s").unwrap(), 25_000_000_000);
        assert_eq!(parse_bandwidth("100 Mbps").unwrap(), 100_000_000);
        assert!(parse_bandwidth("10").is_err());
        assert!(parse_bandwidth("10furlongs").is_err());
        assert_eq!(Bandwidth(10_000_000_000).to_string(), "10Gbps");
    }
}
