//! VIP allocation from a Network's `configured_subnets[].static_ip_ranges` (IPv4, and IPv6 for dual-stack VIPs), pure logic.

use std::net::Ipv4Addr;

use serde_json::Value;

/// One allocatable range of a network subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipRange {
    pub prefix: Ipv4Addr,
    pub mask: u8,
    pub begin: Ipv4Addr,
    pub end: Ipv4Addr,
}

impl VipRange {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) >= u32::from(self.begin) && u32::from(ip) <= u32::from(self.end)
    }
}

/// An address of family `A` (`{addr, type}`); `None` for the other family.
fn addr<A: std::str::FromStr>(v: &Value) -> Option<A> {
    v.get("addr")?.as_str()?.parse().ok()
}

/// The VIP ranges of family `A` of a Network body, as (subnet prefix, mask, first, last): `static_ip_ranges` of
/// type `STATIC_IPS_FOR_VIP` or `STATIC_IPS_FOR_VIP_AND_SE` (the default), and the pre-20.1.3 `static_ranges`.
fn ranges_of<A: std::str::FromStr + Copy>(
    network: &serde_json::Map<String, Value>,
) -> Vec<(A, u8, A, A)> {
    let mut out = Vec::new();
    for subnet in network
        .get("configured_subnets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let prefix = subnet.get("prefix");
        let (Some(p), Some(mask)) = (
            prefix.and_then(|x| x.get("ip_addr")).and_then(addr::<A>),
            prefix
                .and_then(|x| x.get("mask"))
                .and_then(Value::as_u64)
                .and_then(|m| u8::try_from(m).ok()),
        ) else {
            continue;
        };
        let list = |key: &str| {
            subnet
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        for r in list("static_ip_ranges") {
            let kind = r
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("STATIC_IPS_FOR_VIP_AND_SE");
            if kind != "STATIC_IPS_FOR_VIP" && kind != "STATIC_IPS_FOR_VIP_AND_SE" {
                continue;
            }
            let range = r.get("range");
            if let (Some(b), Some(e)) = (
                range.and_then(|x| x.get("begin")).and_then(addr::<A>),
                range.and_then(|x| x.get("end")).and_then(addr::<A>),
            ) {
                out.push((p, mask, b, e));
            }
        }
        for r in list("static_ranges") {
            if let (Some(b), Some(e)) = (
                r.get("begin").and_then(addr::<A>),
                r.get("end").and_then(addr::<A>),
            ) {
                out.push((p, mask, b, e));
            }
        }
    }
    out
}

/// The IPv4 VIP ranges of a Network body ([`ranges_of`]).
pub fn vip_ranges(network: &serde_json::Map<String, Value>) -> Vec<VipRange> {
    ranges_of::<Ipv4Addr>(network)
        .into_iter()
        .map(|(prefix, mask, begin, end)| VipRange {
            prefix,
            mask,
            begin,
            end,
        })
        .collect()
}

/// One allocatable IPv6 range of a network subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipRange6 {
    pub prefix: std::net::Ipv6Addr,
    pub mask: u8,
    pub begin: std::net::Ipv6Addr,
    pub end: std::net::Ipv6Addr,
}

/// The IPv6 VIP ranges of a Network body ([`ranges_of`]).
pub fn vip_ranges6(network: &serde_json::Map<String, Value>) -> Vec<VipRange6> {
    ranges_of::<std::net::Ipv6Addr>(network)
        .into_iter()
        .map(|(prefix, mask, begin, end)| VipRange6 {
            prefix,
            mask,
            begin,
            end,
        })
        .collect()
}

/// The first IPv6 address of `ranges` (optionally only subnet `want`) not in `used` (at most 65,536 looked at
/// per range: the emulator's IPv6 pools are small).
pub fn first_free6(
    ranges: &[VipRange6],
    want: Option<(std::net::Ipv6Addr, u8)>,
    used: impl Fn(std::net::Ipv6Addr) -> bool,
) -> Option<(std::net::Ipv6Addr, VipRange6)> {
    ranges
        .iter()
        .filter(|r| want.is_none_or(|(p, m)| r.prefix == p && r.mask == m))
        .find_map(|r| {
            (u128::from(r.begin)..=u128::from(r.end))
                .take(65_536)
                .map(std::net::Ipv6Addr::from)
                .find(|ip| !used(*ip))
                .map(|ip| (ip, r.clone()))
        })
}

/// The first address of `ranges` (optionally only those of subnet `want_subnet`) not in `used`, scanning
/// from `hint` (the last allocation) so sequential allocations stay O(1).
pub fn first_free(
    ranges: &[VipRange],
    want_subnet: Option<(Ipv4Addr, u8)>,
    used: impl Fn(Ipv4Addr) -> bool,
    hint: Option<Ipv4Addr>,
) -> Option<(Ipv4Addr, VipRange)> {
    let candidates: Vec<&VipRange> = ranges
        .iter()
        .filter(|r| want_subnet.is_none_or(|(p, m)| r.prefix == p && r.mask == m))
        .collect();
    // Start after the hint inside its range, then wrap over every range.
    let start = hint.and_then(|h| {
        candidates
            .iter()
            .position(|r| r.contains(h))
            .map(|i| (i, h))
    });
    let order: Vec<(usize, Option<u32>)> = match start {
        Some((i, h)) => {
            let mut v = vec![(i, Some(u32::from(h).saturating_add(1)))];
            v.extend((i + 1..candidates.len()).chain(0..=i).map(|j| (j, None)));
            v
        }
        None => (0..candidates.len()).map(|j| (j, None)).collect(),
    };
    for (i, from) in order {
        let r = candidates[i];
        let (b, e) = (u32::from(r.begin), u32::from(r.end));
        let mut ip = from.unwrap_or(b).max(b);
        while ip <= e {
            let candidate = Ipv4Addr::from(ip);
            if !used(candidate) {
                return Some((candidate, r.clone()));
            }
            ip = match ip.checked_add(1) {
                Some(n) => n,
                None => break,
            };
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashSet;

    fn network() -> serde_json::Map<String, Value> {
        let v = json!({"name": "n", "configured_subnets": [
            {"prefix": {"ip_addr": {"addr": "10.10.18.0", "type": "V4"}, "mask": 26},
             "static_ip_ranges": [
                {"type": "STATIC_IPS_FOR_SE", "range": {"begin": {"addr": "10.10.18.2"}, "end": {"addr": "10.10.18.9"}}},
                {"type": "STATIC_IPS_FOR_VIP", "range": {"begin": {"addr": "10.10.18.10"}, "end": {"addr": "10.10.18.12"}}},
                {"range": {"begin": {"addr": "10.10.18.20"}, "end": {"addr": "10.10.18.20"}}}]},
            {"prefix": {"ip_addr": {"addr": "100.64.196.0", "type": "V4"}, "mask": 24},
             "static_ranges": [{"begin": {"addr": "100.64.196.120"}, "end": {"addr": "100.64.196.121"}}]}]});
        v.as_object().cloned().expect("object")
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("ip")
    }

    #[test]
    fn vip_ranges_skip_se_only_ranges_and_read_legacy_ones() {
        let ranges = vip_ranges(&network());
        let got: Vec<(Ipv4Addr, Ipv4Addr)> = ranges.iter().map(|r| (r.begin, r.end)).collect();
        assert_eq!(
            got,
            vec![
                (ip("10.10.18.10"), ip("10.10.18.12")),
                (ip("10.10.18.20"), ip("10.10.18.20")),
                (ip("100.64.196.120"), ip("100.64.196.121"))
            ]
        );
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn first_free_allocates_in_order_skipping_used_and_honouring_subnet_and_hint() {
        let ranges = vip_ranges(&network());
        let used = |v: &[&str]| v.iter().map(|s| ip(s)).collect::<HashSet<_>>();
        let cases: Vec<(
            HashSet<Ipv4Addr>,
            Option<(Ipv4Addr, u8)>,
            Option<&str>,
            Option<&str>,
        )> = vec![
            (used(&[]), None, None, Some("10.10.18.10")),
            (used(&["10.10.18.10"]), None, None, Some("10.10.18.11")),
            (
                used(&["10.10.18.10", "10.10.18.11", "10.10.18.12"]),
                None,
                None,
                Some("10.10.18.20"),
            ),
            (
                used(&[]),
                Some((ip("100.64.196.0"), 24)),
                None,
                Some("100.64.196.120"),
            ),
            (used(&[]), None, Some("10.10.18.11"), Some("10.10.18.12")),
            // The hint wraps around to the free addresses before it.
            (
                used(&["10.10.18.20", "100.64.196.120", "100.64.196.121"]),
                None,
                Some("10.10.18.20"),
                Some("10.10.18.10"),
            ),
            (
                used(&[
                    "10.10.18.10",
                    "10.10.18.11",
                    "10.10.18.12",
                    "10.10.18.20",
                    "100.64.196.120",
                    "100.64.196.121",
                ]),
                None,
                None,
                None,
            ),
            (used(&[]), Some((ip("192.168.0.0"), 24)), None, None),
        ];
        for (used, subnet, hint, want) in cases {
            let got =
                first_free(&ranges, subnet, |a| used.contains(&a), hint.map(ip)).map(|(a, _)| a);
            assert_eq!(
                got,
                want.map(ip),
                "used={used:?} subnet={subnet:?} hint={hint:?}"
            );
        }
    }

    #[test]
    fn ipv6_ranges_are_read_and_allocated_in_order_skipping_used_and_other_subnets() {
        let net = json!({"configured_subnets": [
            {"prefix": {"ip_addr": {"addr": "10.0.0.0", "type": "V4"}, "mask": 24},
             "static_ip_ranges": [{"range": {"begin": {"addr": "10.0.0.10", "type": "V4"}, "end": {"addr": "10.0.0.20", "type": "V4"}}}]},
            {"prefix": {"ip_addr": {"addr": "fd10::", "type": "V6"}, "mask": 64},
             "static_ip_ranges": [{"type": "STATIC_IPS_FOR_VIP", "range": {"begin": {"addr": "fd10::10", "type": "V6"}, "end": {"addr": "fd10::12", "type": "V6"}}}]}
        ]});
        let ranges = vip_ranges6(net.as_object().expect("object"));
        assert_eq!(ranges.len(), 1, "the IPv4 subnet is not an IPv6 range");
        assert_eq!(vip_ranges(net.as_object().expect("object")).len(), 1);
        let v6 = |s: &str| -> std::net::Ipv6Addr { s.parse().expect("v6") };
        let used = [v6("fd10::10")];
        let got = first_free6(&ranges, None, |ip| used.contains(&ip)).map(|(ip, _)| ip);
        assert_eq!(got, Some(v6("fd10::11")));
        assert_eq!(
            first_free6(&ranges, Some((v6("fd20::"), 64)), |_| false),
            None
        );
        assert_eq!(first_free6(&ranges, None, |_| true), None, "exhausted");
    }
}
