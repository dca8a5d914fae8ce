//! VsVip completion: static addresses, IPAM auto-allocation (see [`super::ipam`]) and the rule that
//! DNS records lie under the cloud's DNS profile domains.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use super::refs::{canonical, uuid_of_ref};
use super::types::set_default;
use super::{ApiError, DnsPolicy, Obj, Store, ipam};
use ako_core::hosts;

/// The 400 message for an FQDN outside the DNS profile's domains. A real controller's text is unknown
/// (avi-api.md §8); this is the emulator's.
pub fn dns_domain_error(fqdn: &str, profile: &str, domains: &[String]) -> String {
    format!(
        "FQDN {fqdn} is not in any DNS service domain of DNS profile {profile}; configured domains: [{}]",
        domains.join(", ")
    )
}

/// Whether `fqdn` lies in one of the DNS profile's `domains`. Profile entries may carry a leading
/// dot (`.com`, as in the captured domain list); the matching is the operator's [`hosts::within`].
pub fn fqdn_in_domains(fqdn: &str, domains: &[String]) -> bool {
    let domains: Vec<String> = domains
        .iter()
        .map(|d| hosts::normalize(d.trim_start_matches('.')))
        .filter(|d| !d.is_empty())
        .collect();
    hosts::delegated_domain(&hosts::normalize(fqdn), &domains).is_some()
}

pub(super) fn network_of(body: &Map<String, Value>, ip: Ipv4Addr) -> Option<String> {
    let ip = ip.to_string();
    body.get("vip")?.as_array()?.iter().find_map(|v| {
        (v.get("ip_address")?.get("addr")?.as_str()? == ip)
            .then(|| uuid_of_ref(v.get("ipam_network_subnet")?.get("network_ref")))
            .flatten()
    })
}

impl Store {
    /// DNS profile domains of a cloud: `(profile name, domains, ttl)`.
    pub fn dns_domains(&self, cloud: &str) -> Option<(String, Vec<String>, Option<u64>)> {
        let cloud = self.objects.get(cloud)?;
        let profile = self
            .objects
            .get(&uuid_of_ref(cloud.body.get("dns_provider_ref"))?)?;
        let internal = profile.body.get("internal_profile");
        let domains = internal
            .and_then(|i| i.get("dns_service_domain"))
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(|d| d.get("domain_name")?.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let ttl = internal.and_then(|i| i.get("ttl")).and_then(Value::as_u64);
        Some((profile.name.clone(), domains, ttl))
    }

    /// IPAM networks of a cloud, in `usable_networks` order.
    fn ipam_networks(&self, cloud: &str) -> Vec<String> {
        let Some(cloud) = self.objects.get(cloud) else {
            return Vec::new();
        };
        let Some(profile) =
            uuid_of_ref(cloud.body.get("ipam_provider_ref")).and_then(|u| self.objects.get(&u))
        else {
            return Vec::new();
        };
        let internal = profile.body.get("internal_profile");
        let mut out: Vec<String> = internal
            .and_then(|i| i.get("usable_networks"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|n| uuid_of_ref(n.get("nw_ref")))
            .collect();
        out.extend(
            internal
                .and_then(|i| i.get("usable_network_refs"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|n| uuid_of_ref(Some(n))),
        );
        out
    }

    pub(super) fn complete_vsvip(
        &self,
        body: &mut Map<String, Value>,
        uuid: &str,
        cloud: Option<&str>,
        tenant: &str,
        existing: Option<&Obj>,
    ) -> Result<Vec<(String, Ipv4Addr)>, ApiError> {
        let _ = tenant;
        // DNS: records only make sense under the cloud's DNS profile domains.
        let dns = cloud.and_then(|c| self.dns_domains(c));
        if let Some(infos) = body.get_mut("dns_info").and_then(Value::as_array_mut) {
            for info in infos.iter_mut().filter_map(Value::as_object_mut) {
                if let Some((_, _, Some(ttl))) = &dns {
                    set_default(info, "ttl", json!(ttl));
                }
                set_default(info, "ttl", json!(30));
                let Some(fqdn) = info.get("fqdn").and_then(Value::as_str) else {
                    continue;
                };
                if let Some((profile, domains, _)) = &dns
                    && self.dns_policy == DnsPolicy::Reject
                    && !fqdn_in_domains(fqdn, domains)
                {
                    return Err(ApiError::new(400, dns_domain_error(fqdn, profile, domains)));
                }
            }
        }
        let vrf = uuid_of_ref(body.get("vrf_context_ref")).unwrap_or_default();
        let previous: HashMap<String, Ipv4Addr> = existing
            .and_then(|e| e.body.get("vip"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let id = v.get("vip_id")?.as_str()?.to_string();
                let ip = v.get("ip_address")?.get("addr")?.as_str()?.parse().ok()?;
                Some((id, ip))
            })
            .collect();
        let mut taken: Vec<(String, Ipv4Addr)> = Vec::new();
        let is_free = |ip: Ipv4Addr, taken: &[(String, Ipv4Addr)]| {
            !taken.iter().any(|(_, t)| *t == ip)
                && self
                    .used_ips
                    .get(&(vrf.clone(), ip))
                    .is_none_or(|owner| owner == uuid)
        };
        let Some(vips) = body.get_mut("vip").and_then(Value::as_array_mut) else {
            return Ok(taken);
        };
        for vip in vips.iter_mut().filter_map(Value::as_object_mut) {
            let vip_id = vip
                .get("vip_id")
                .and_then(Value::as_str)
                .unwrap_or("0")
                .to_string();
            // An IPv6-only VIP gets no IPv4 address (its IPv6 one is allocated below).
            let auto = vip.get("auto_allocate_ip") == Some(&Value::Bool(true))
                && vip.get("auto_allocate_ip_type").and_then(Value::as_str) != Some("V6_ONLY");
            let given: Option<Ipv4Addr> = vip
                .get("ip_address")
                .and_then(|a| a.get("addr"))
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok());
            if let Some(ip) = given {
                if auto
                    && let Some(prev) = previous.get(&vip_id)
                    && *prev != ip
                {
                    return Err(ApiError::new(
                        400,
                        "If a new preferred IP is needed, please recreate the VIP",
                    ));
                }
                if !is_free(ip, &taken) {
                    return Err(ApiError::new(
                        409,
                        format!("IP address {ip} is already in use in this VRF"),
                    ));
                }
                taken.push((vrf.clone(), ip));
                continue;
            }
            if !auto {
                continue;
            }
            if let Some(prev) = previous.get(&vip_id).copied() {
                vip.insert(
                    "ip_address".into(),
                    json!({"addr": prev.to_string(), "type": "V4"}),
                );
                taken.push((vrf.clone(), prev));
                continue;
            }
            let subnet_req = vip
                .get("ipam_network_subnet")
                .cloned()
                .unwrap_or(Value::Null);
            let networks: Vec<String> = match uuid_of_ref(subnet_req.get("network_ref")) {
                Some(n) => vec![n],
                None => cloud.map(|c| self.ipam_networks(c)).unwrap_or_default(),
            };
            if networks.is_empty() {
                return Err(ApiError::new(
                    400,
                    "No available free IPs: no IPAM network configured for this VIP",
                ));
            }
            let want_subnet = subnet_req.get("subnet").and_then(|s| {
                let addr: Ipv4Addr = s.get("ip_addr")?.get("addr")?.as_str()?.parse().ok()?;
                let mask = u8::try_from(s.get("mask")?.as_u64()?).ok()?;
                Some((addr, mask))
            });
            let mut allocated = None;
            for net in &networks {
                let Some(network) = self.objects.get(net) else {
                    continue;
                };
                let ranges = ipam::vip_ranges(&network.body);
                let used = |ip: Ipv4Addr| {
                    taken.iter().any(|(_, t)| *t == ip)
                        || self
                            .used_ips
                            .get(&(vrf.clone(), ip))
                            .is_some_and(|owner| owner.as_str() != uuid)
                };
                if let Some((ip, range)) =
                    ipam::first_free(&ranges, want_subnet, used, self.ip_hint.get(net).copied())
                {
                    allocated = Some((net.clone(), ip, range));
                    break;
                }
            }
            let Some((net, ip, range)) = allocated else {
                return Err(ApiError::new(400, "No available free IPs"));
            };
            let subnet = json!({"ip_addr": {"addr": range.prefix.to_string(), "type": "V4"}, "mask": range.mask});
            let net_ref = canonical("network", &net);
            vip.insert(
                "ip_address".into(),
                json!({"addr": ip.to_string(), "type": "V4"}),
            );
            vip.insert(
                "ipam_network_subnet".into(),
                json!({"network_ref": net_ref, "subnet": subnet}),
            );
            vip.insert(
                "discovered_networks".into(),
                json!([{"network_ref": net_ref, "subnet": [subnet]}]),
            );
            taken.push((vrf.clone(), ip));
        }
        self.complete_vsvip6(vips, uuid, &vrf, cloud, existing)?;
        Ok(taken)
    }

    /// IPv6 addresses of VIPs asking for them (`auto_allocate_ip_type` V4_V6 or V6_ONLY): kept from the previous
    /// version of the object, else the first free one of the network's IPv6 ranges (unique in the VRF).
    fn complete_vsvip6(
        &self,
        vips: &mut [Value],
        uuid: &str,
        vrf: &str,
        cloud: Option<&str>,
        existing: Option<&Obj>,
    ) -> Result<(), ApiError> {
        let asks = |v: &Map<String, Value>| {
            v.get("auto_allocate_ip") == Some(&Value::Bool(true))
                && matches!(
                    v.get("auto_allocate_ip_type").and_then(Value::as_str),
                    Some("V4_V6" | "V6_ONLY")
                )
        };
        // Most writes ask for no IPv6 address: they cost no scan of the VRF's VsVips.
        if !vips.iter().filter_map(Value::as_object).any(asks) {
            return Ok(());
        }
        let v6_of = |v: &Value| -> Option<std::net::Ipv6Addr> {
            v.get("ip6_address")?.get("addr")?.as_str()?.parse().ok()
        };
        let previous: HashMap<String, std::net::Ipv6Addr> = existing
            .and_then(|e| e.body.get("vip"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| Some((v.get("vip_id")?.as_str()?.to_string(), v6_of(v)?)))
            .collect();
        let mut used: std::collections::HashSet<std::net::Ipv6Addr> = self
            .iter_type("vsvip")
            .filter(|o| o.uuid != uuid)
            .filter(|o| uuid_of_ref(o.body.get("vrf_context_ref")).as_deref() == Some(vrf))
            .flat_map(|o| {
                o.body
                    .get("vip")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(v6_of)
                    .collect::<Vec<_>>()
            })
            .collect();
        for vip in vips.iter_mut().filter_map(Value::as_object_mut) {
            if !asks(vip) {
                continue;
            }
            if let Some(given) = vip
                .get("ip6_address")
                .and_then(|a| a.get("addr"))
                .and_then(Value::as_str)
            {
                let ip: std::net::Ipv6Addr = given
                    .parse()
                    .map_err(|_| ApiError::new(400, format!("Invalid IPv6 address {given}")))?;
                if !used.insert(ip) {
                    return Err(ApiError::new(
                        409,
                        format!("IP address {ip} is already in use in this VRF"),
                    ));
                }
                continue;
            }
            let vip_id = vip
                .get("vip_id")
                .and_then(Value::as_str)
                .unwrap_or("0")
                .to_string();
            if let Some(prev) = previous.get(&vip_id).copied() {
                vip.insert(
                    "ip6_address".into(),
                    json!({"addr": prev.to_string(), "type": "V6"}),
                );
                used.insert(prev);
                continue;
            }
            let req = vip
                .get("ipam_network_subnet")
                .cloned()
                .unwrap_or(Value::Null);
            let networks: Vec<String> = match uuid_of_ref(req.get("network_ref")) {
                Some(n) => vec![n],
                None => cloud.map(|c| self.ipam_networks(c)).unwrap_or_default(),
            };
            let want = req.get("subnet6").and_then(|s| {
                let addr: std::net::Ipv6Addr =
                    s.get("ip_addr")?.get("addr")?.as_str()?.parse().ok()?;
                Some((addr, u8::try_from(s.get("mask")?.as_u64()?).ok()?))
            });
            let found = networks.iter().find_map(|net| {
                let network = self.objects.get(net)?;
                ipam::first_free6(&ipam::vip_ranges6(&network.body), want, |ip| {
                    used.contains(&ip)
                })
            });
            let Some((ip, range)) = found else {
                return Err(ApiError::new(400, "No available free IPv6 addresses"));
            };
            used.insert(ip);
            vip.insert(
                "ip6_address".into(),
                json!({"addr": ip.to_string(), "type": "V6"}),
            );
            if let Some(m) = vip
                .get_mut("ipam_network_subnet")
                .and_then(Value::as_object_mut)
            {
                m.insert(
                    "subnet6".into(),
                    json!({"ip_addr": {"addr": range.prefix.to_string(), "type": "V6"}, "mask": range.mask}),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdn_domain_matching_handles_suffix_entries() {
        let domains = vec!["avi.jarvis.lab".to_string(), ".com".to_string()];
        let cases = [
            ("a.avi.jarvis.lab", true),
            ("avi.jarvis.lab.", true),
            ("A.Avi.Jarvis.Lab", true),
            ("x.example.com", true),
            ("bavi.jarvis.lab", false),
            ("a.org", false),
        ];
        for (fqdn, want) in cases {
            assert_eq!(fqdn_in_domains(fqdn, &domains), want, "{fqdn}");
        }
    }
}
