//! IPv4 addresses and CIDR blocks.

use std::fmt;
use std::str::FromStr;

/// An IPv4 address as a host-order `u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ipv4(pub u32);

impl fmt::Display for Ipv4 {
    /// Dotted quad, written in one piece (`endpoints.csv` has a million
    /// of them at 65,000 nodes; `write!` of four numbers took about 1,300
    /// instructions each).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 15];
        let mut n = 0;
        for (i, octet) in self.0.to_be_bytes().into_iter().enumerate() {
            if i > 0 {
                buf[n] = b'.';
                n += 1;
            }
            if octet >= 100 {
                buf[n] = b'0' + octet / 100;
                n += 1;
            }
            if octet >= 10 {
                buf[n] = b'0' + octet / 10 % 10;
                n += 1;
            }
            buf[n] = b'0' + octet % 10;
            n += 1;
        }
        f.write_str(std::str::from_utf8(&buf[..n]).expect("ASCII digits and dots"))
    }
}

impl FromStr for Ipv4 {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.trim().split('.').collect();
        if parts.len() != 4 {
            return Err(format!("`{s}` is not an IPv4 address"));
        }
        let mut v = 0u32;
        for p in parts {
            let o: u8 = p.parse().map_err(|_| format!("`{s}` is not an IPv4 address"))?;
            v = (v << 8) | o as u32;
        }
        Ok(Ipv4(v))
    }
}

/// A CIDR block: a base address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// The network address (host bits zero).
    pub base: Ipv4,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

impl Cidr {
    /// Number of addresses in the block.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix as u32)
    }

    /// Whether `ip` lies in the block.
    pub fn contains(&self, ip: Ipv4) -> bool {
        (ip.0 as u64) >= self.base.0 as u64 && (ip.0 as u64) < self.base.0 as u64 + self.size()
    }

    /// The `i`-th address of the block (0 is the network address).
    pub fn nth(&self, i: u64) -> Ipv4 {
        assert!(i < self.size(), "address {i} outside {self}");
        Ipv4(self.base.0 + i as u32)
    }

    /// Offset of `ip` inside the block.
    pub fn offset(&self, ip: Ipv4) -> u64 {
        (ip.0 - self.base.0) as u64
    }

    /// The `i`-th sub-block of prefix `sub` (`sub >= self.prefix`).
    pub fn subnet(&self, sub: u8, i: u64) -> Cidr {
        let size = 1u64 << (32 - sub as u32);
        Cidr { base: Ipv4((self.base.0 as u64 + i * size) as u32), prefix: sub }
    }

    /// How many blocks of prefix `sub` fit in this one.
    pub fn subnets(&self, sub: u8) -> u64 {
        if sub < self.prefix {
            0
        } else {
            1u64 << (sub - self.prefix)
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (ip, len) = s.split_once('/').ok_or_else(|| format!("`{s}` is not a CIDR block (expected a.b.c.d/len)"))?;
        let base: Ipv4 = ip.parse()?;
        let prefix: u8 = len.parse().map_err(|_| format!("`{s}`: bad prefix length"))?;
        if prefix > 32 {
            return Err(format!("`{s}`: prefix length above 32"));
        }
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
        if base.0 & !mask != 0 {
            return Err(format!("`{s}`: host bits set (did you mean {}/{prefix}?)", Ipv4(base.0 & mask)));
        }
        Ok(Cidr { base, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_every_octet_as_a_decimal() {
        for v in [0u32, 0xffff_ffff, 0x0a00_0964, 0x7f00_0001, 0xc612_0001, 0x0a0a_0a0a, 0x6463_0900] {
            let [a, b, c, d] = v.to_be_bytes();
            assert_eq!(Ipv4(v).to_string(), format!("{a}.{b}.{c}.{d}"));
        }
        // Every octet value in every position, through a round trip.
        for o in 0..=255u32 {
            let v = o << 24 | (255 - o) << 16 | (o * 7 % 256) << 8 | (o * 13 % 256);
            let ip = Ipv4(v);
            assert_eq!(ip.to_string().parse::<Ipv4>().unwrap(), ip);
            let [a, b, c, d] = v.to_be_bytes();
            assert_eq!(ip.to_string(), format!("{a}.{b}.{c}.{d}"));
        }
    }

    #[test]
    fn parse_print_and_carve() {
        let c: Cidr = "10.244.0.0/16".parse().unwrap();
        assert_eq!(c.size(), 65_536);
        assert_eq!(c.subnets(24), 256);
        assert_eq!(c.subnet(24, 3).to_string(), "10.244.3.0/24");
        assert!(c.contains("10.244.255.255".parse().unwrap()));
        assert!(!c.contains("10.245.0.0".parse().unwrap()));
        assert_eq!(c.nth(10).to_string(), "10.244.0.10");
        assert!("10.244.0.1/16".parse::<Cidr>().unwrap_err().contains("host bits"));
        assert!("10.244.0.300".parse::<Ipv4>().is_err());
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
    }
}
