//! The emulator's object store: validation, defaults, reference resolution, uniqueness, referential
//! integrity on delete, IPAM and the DNS-domain rule. Pure in-memory logic; persistence is in `journal`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use super::ipam;
use crate::avi::refs::{RefTarget, parse_ref};

/// An error answer: HTTP status and the `error` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

/// What the emulator does with a VsVip `dns_info[].fqdn` outside the cloud's DNS profile domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DnsPolicy {
    /// 400 with [`dns_domain_error`]'s message.
    #[default]
    Reject,
    /// Store the record (a real controller then does not serve it).
    Accept,
}

/// The 400 message for an FQDN outside the DNS profile's domains. A real controller's text is unknown
/// (avi-api.md §8); this is the emulator's.
pub fn dns_domain_error(fqdn: &str, profile: &str, domains: &[String]) -> String {
    format!(
        "FQDN {fqdn} is not in any DNS service domain of DNS profile {profile}; configured domains: [{}]",
        domains.join(", ")
    )
}

/// Static facts about an object type.
#[derive(Debug)]
pub struct TypeInfo {
    pub obj_type: &'static str,
    pub model: &'static str,
    /// Django-style verbose name used in 409 messages.
    pub verbose: &'static str,
    /// Uniqueness includes the cloud.
    pub cloud_scoped: bool,
}

const TYPES: &[TypeInfo] = &[
    TypeInfo { obj_type: "virtualservice", model: "VirtualService", verbose: "Virtual service", cloud_scoped: true },
    TypeInfo { obj_type: "vsvip", model: "VsVip", verbose: "Vs vip", cloud_scoped: true },
    TypeInfo { obj_type: "pool", model: "Pool", verbose: "Pool", cloud_scoped: true },
    TypeInfo { obj_type: "poolgroup", model: "PoolGroup", verbose: "Pool group", cloud_scoped: true },
    TypeInfo { obj_type: "httppolicyset", model: "HTTPPolicySet", verbose: "Http policy set", cloud_scoped: false },
    TypeInfo {
        obj_type: "sslkeyandcertificate",
        model: "SSLKeyAndCertificate",
        verbose: "Ssl key and certificate",
        cloud_scoped: false,
    },
    TypeInfo { obj_type: "cloud", model: "Cloud", verbose: "Cloud", cloud_scoped: false },
    TypeInfo {
        obj_type: "serviceenginegroup",
        model: "ServiceEngineGroup",
        verbose: "Service engine group",
        cloud_scoped: true,
    },
    TypeInfo { obj_type: "network", model: "Network", verbose: "Network", cloud_scoped: true },
    TypeInfo {
        obj_type: "ipamdnsproviderprofile",
        model: "IpamDnsProviderProfile",
        verbose: "Ipam dns provider profile",
        cloud_scoped: false,
    },
    TypeInfo { obj_type: "tenant", model: "Tenant", verbose: "Tenant", cloud_scoped: false },
    TypeInfo { obj_type: "vrfcontext", model: "VrfContext", verbose: "Vrf context", cloud_scoped: true },
    TypeInfo {
        obj_type: "applicationprofile",
        model: "ApplicationProfile",
        verbose: "Application profile",
        cloud_scoped: false,
    },
    TypeInfo { obj_type: "networkprofile", model: "NetworkProfile", verbose: "Network profile", cloud_scoped: false },
    TypeInfo {
        obj_type: "analyticsprofile",
        model: "AnalyticsProfile",
        verbose: "Analytics profile",
        cloud_scoped: false,
    },
    TypeInfo { obj_type: "sslprofile", model: "SSLProfile", verbose: "Ssl profile", cloud_scoped: false },
    TypeInfo { obj_type: "healthmonitor", model: "HealthMonitor", verbose: "Health monitor", cloud_scoped: false },
    TypeInfo { obj_type: "vsdatascriptset", model: "VSDataScriptSet", verbose: "V s data script set", cloud_scoped: false },
    TypeInfo { obj_type: "l4policyset", model: "L4PolicySet", verbose: "L4 policy set", cloud_scoped: false },
    TypeInfo { obj_type: "stringgroup", model: "StringGroup", verbose: "String group", cloud_scoped: false },
    TypeInfo { obj_type: "pkiprofile", model: "PKIProfile", verbose: "P k i profile", cloud_scoped: false },
    TypeInfo {
        obj_type: "applicationpersistenceprofile",
        model: "ApplicationPersistenceProfile",
        verbose: "Application persistence profile",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "systemconfiguration",
        model: "SystemConfiguration",
        verbose: "System configuration",
        cloud_scoped: false,
    },
];

/// The type facts of a collection, `None` for an unknown endpoint.
pub fn type_info(obj_type: &str) -> Option<&'static TypeInfo> {
    TYPES.iter().find(|t| t.obj_type == obj_type)
}

/// A stored object. `body` holds refs in canonical form `/api/<type>/<uuid>`.
#[derive(Debug, Clone)]
pub struct Obj {
    pub obj_type: String,
    pub uuid: String,
    pub name: String,
    pub tenant: String,
    pub cloud: Option<String>,
    pub body: Map<String, Value>,
    pub seq: u64,
    refs: Vec<String>,
    ips: Vec<(String, Ipv4Addr)>,
}

/// Which tenants a request sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantSel {
    One(String),
    All,
}

impl TenantSel {
    fn sees(&self, obj: &Obj) -> bool {
        match self {
            Self::All => true,
            Self::One(t) => obj.tenant == *t || obj.tenant == "admin",
        }
    }
    fn write_tenant(&self) -> &str {
        match self {
            Self::All => "admin",
            Self::One(t) => t,
        }
    }
}

/// The in-memory state.
#[derive(Debug, Default)]
pub struct Store {
    objects: HashMap<String, Obj>,
    by_type: HashMap<String, BTreeMap<u64, String>>,
    names: HashMap<(String, String), Vec<String>>,
    referrers: HashMap<String, BTreeSet<String>>,
    used_ips: HashMap<(String, Ipv4Addr), String>,
    ip_hint: HashMap<String, Ipv4Addr>,
    seq: u64,
    last_modified: u64,
    pub dns_policy: DnsPolicy,
}

fn is_ref_key(key: &str) -> bool {
    key.ends_with("_ref") || key.ends_with("_refs")
}

fn canonical(obj_type: &str, uuid: &str) -> String {
    format!("/api/{obj_type}/{uuid}")
}

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if !map.contains_key(key) || map.get(key) == Some(&Value::Null) {
        map.insert(key.to_string(), value);
    }
}

fn now_micros() -> u64 {
    let now = chrono::Utc::now();
    u64::try_from(now.timestamp_micros()).unwrap_or_default()
}

/// Collects canonical ref uuids from a body.
fn collect_refs(value: &Value, key: Option<&str>, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                collect_refs(v, Some(k), out);
            }
        }
        Value::Array(items) => {
            for v in items {
                collect_refs(v, key, out);
            }
        }
        Value::String(s) if key.is_some_and(is_ref_key) => {
            if let Some(p) = parse_ref(s)
                && let RefTarget::Uuid(u) = p.target
            {
                out.push(u);
            }
        }
        _ => {}
    }
}

fn uuid_of_ref(v: Option<&Value>) -> Option<String> {
    let p = parse_ref(v?.as_str()?)?;
    match p.target {
        RefTarget::Uuid(u) => Some(u),
        RefTarget::Name(_) => None,
    }
}

impl Store {
    pub fn new(dns_policy: DnsPolicy) -> Self {
        Self { dns_policy, ..Default::default() }
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub fn get_any(&self, uuid: &str) -> Option<&Obj> {
        self.objects.get(uuid)
    }

    /// An object of a type visible to the tenant selection.
    pub fn get(&self, obj_type: &str, uuid: &str, sel: &TenantSel) -> Result<&Obj, ApiError> {
        match self.objects.get(uuid) {
            Some(o) if o.obj_type == obj_type && sel.sees(o) => Ok(o),
            _ => Err(not_found(obj_type)),
        }
    }

    /// Objects of a type in creation order.
    pub fn iter_type<'a>(&'a self, obj_type: &str) -> impl Iterator<Item = &'a Obj> + 'a {
        self.by_type.get(obj_type).into_iter().flat_map(|m| m.values()).filter_map(|u| self.objects.get(u))
    }

    /// Every object, in creation order (for compaction).
    pub fn all_in_order(&self) -> Vec<&Obj> {
        let mut v: Vec<&Obj> = self.objects.values().collect();
        v.sort_by_key(|o| o.seq);
        v
    }

    /// Finds by name: the tenant's object first, then the admin tenant's; prefers `cloud` when several.
    pub fn find_by_name(&self, obj_type: &str, name: &str, tenant: &str, cloud: Option<&str>) -> Option<&Obj> {
        let cands = self.names.get(&(obj_type.to_string(), name.to_string()))?;
        let pick = |t: &str| {
            let in_tenant: Vec<&Obj> =
                cands.iter().filter_map(|u| self.objects.get(u)).filter(|o| o.tenant == t).collect();
            in_tenant
                .iter()
                .find(|o| cloud.is_some() && o.cloud.as_deref() == cloud)
                .or_else(|| in_tenant.first())
                .copied()
        };
        pick(tenant).or_else(|| pick("admin"))
    }

    /// Resolves a tenant name (`X-Avi-Tenant`) or uuid (`X-Avi-Tenant-UUID`).
    pub fn tenant_by_name(&self, name: &str) -> Option<&Obj> {
        self.find_by_name("tenant", name, "admin", None)
    }

    pub fn referrers_of(&self, uuid: &str) -> impl Iterator<Item = &Obj> {
        self.referrers.get(uuid).into_iter().flatten().filter_map(|u| self.objects.get(u))
    }

    pub fn refers_to(&self, obj: &Obj, target: &str) -> bool {
        obj.refs.iter().any(|r| r == target)
    }

    fn next_last_modified(&mut self) -> String {
        let now = now_micros().max(self.last_modified + 1);
        self.last_modified = now;
        now.to_string()
    }

    /// Resolves one ref to `(type, uuid)`.
    fn resolve_ref(&self, raw: &str, field: &str, tenant: &str, cloud: Option<&str>) -> Result<(String, String), ApiError> {
        let parsed = parse_ref(raw).ok_or_else(|| ApiError::new(400, format!("Invalid reference {field}: {raw}")))?;
        match parsed.target {
            RefTarget::Uuid(uuid) => match self.objects.get(&uuid) {
                Some(o) if parsed.obj_type.as_deref().is_none_or(|t| t == o.obj_type) => {
                    Ok((o.obj_type.clone(), o.uuid.clone()))
                }
                _ => {
                    let model = parsed.obj_type.as_deref().and_then(type_info).map_or("Object", |t| t.model);
                    Err(ApiError::new(400, format!("{model} object not found! ({field}: {raw})")))
                }
            },
            RefTarget::Name(name) => {
                let obj_type = parsed.obj_type.unwrap_or_default();
                let model = type_info(&obj_type).map_or("Object", |t| t.model);
                let cloud_filter = if type_info(&obj_type).is_some_and(|t| t.cloud_scoped) { cloud } else { None };
                match self.find_by_name(&obj_type, &name, tenant, cloud_filter) {
                    Some(o) => Ok((o.obj_type.clone(), o.uuid.clone())),
                    None => Err(ApiError::new(400, format!("{model} object not found! ({field}: {raw})"))),
                }
            }
        }
    }

    /// Rewrites every ref in `value` to canonical form.
    fn resolve_all(&self, value: &mut Value, key: Option<&str>, tenant: &str, cloud: Option<&str>) -> Result<(), ApiError> {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    self.resolve_all(v, Some(k), tenant, cloud)?;
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.resolve_all(v, key, tenant, cloud)?;
                }
            }
            Value::String(s) => {
                if let Some(field) = key.filter(|k| is_ref_key(k))
                    && !s.is_empty()
                {
                    let (t, u) = self.resolve_ref(s, field, tenant, cloud)?;
                    *s = canonical(&t, &u);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Validates and completes a body for create or update. Does not modify the store.
    pub fn prepare(
        &self,
        obj_type: &str,
        mut body: Map<String, Value>,
        uuid: &str,
        sel: &TenantSel,
        existing: Option<&Obj>,
    ) -> Result<Obj, ApiError> {
        let info = type_info(obj_type).ok_or_else(|| ApiError::new(404, "Unknown object type"))?;
        body.remove("url");
        let name = match body.get("name") {
            Some(Value::String(n)) if !n.is_empty() => n.clone(),
            _ => return Err(ApiError::new(400, r#"{"name": "This field is required."}"#)),
        };
        if let Some(v) = body.remove("vh_parent_vs_uuid") {
            body.entry("vh_parent_vs_ref").or_insert(v);
        }
        apply_defaults(obj_type, &mut body);
        // Tenant.
        let tenant = match body.get("tenant_ref").and_then(Value::as_str) {
            Some(r) if obj_type != "tenant" => self.resolve_ref(r, "tenant_ref", sel.write_tenant(), None)?.1,
            _ => existing.map_or_else(|| sel.write_tenant().to_string(), |e| e.tenant.clone()),
        };
        let tenant = if obj_type == "tenant" || obj_type == "systemconfiguration" { "admin".to_string() } else { tenant };
        if obj_type != "tenant" && obj_type != "systemconfiguration" {
            body.insert("tenant_ref".into(), Value::String(canonical("tenant", &tenant)));
        }
        // Cloud first: other by-name refs prefer objects of the same cloud.
        let cloud = match body.get("cloud_ref").and_then(Value::as_str) {
            Some(r) => Some(self.resolve_ref(r, "cloud_ref", &tenant, None)?.1),
            None => None,
        };
        let mut value = Value::Object(body);
        self.resolve_all(&mut value, None, &tenant, cloud.as_deref())?;
        let Value::Object(mut body) = value else {
            return Err(ApiError::new(500, "internal: body is not an object"));
        };
        body.insert("uuid".into(), Value::String(uuid.to_string()));
        let mut ips = Vec::new();
        match obj_type {
            "virtualservice" => self.complete_vs(&mut body, cloud.as_deref()),
            "vsvip" => ips = self.complete_vsvip(&mut body, uuid, cloud.as_deref(), &tenant, existing)?,
            "pool" => {
                if let Some(servers) = body.get_mut("servers").and_then(Value::as_array_mut) {
                    for s in servers.iter_mut().filter_map(Value::as_object_mut) {
                        if let Some(addr) = s.get("ip").and_then(|ip| ip.get("addr")).cloned() {
                            set_default(s, "hostname", addr);
                        }
                    }
                }
            }
            "tenant" => {
                if let Some(Value::String(s)) = body.get("local") {
                    let b = s.eq_ignore_ascii_case("true");
                    body.insert("local".into(), Value::Bool(b));
                }
            }
            _ => {}
        }
        // Uniqueness: (name, tenant) or (name, tenant, cloud).
        if let Some(cands) = self.names.get(&(obj_type.to_string(), name.clone())) {
            let dup = cands.iter().filter_map(|u| self.objects.get(u)).any(|o| {
                o.uuid != uuid && o.tenant == tenant && (!info.cloud_scoped || o.cloud == cloud)
            });
            if dup {
                let msg = if info.cloud_scoped {
                    format!("{} with this Name, Tenant ref and Cloud ref already exists.", info.verbose)
                } else {
                    format!("{} with this Name and Tenant ref already exists.", info.verbose)
                };
                return Err(ApiError::new(409, msg));
            }
        }
        let mut refs = Vec::new();
        collect_refs(&Value::Object(body.clone()), None, &mut refs);
        refs.retain(|r| r != uuid);
        refs.sort();
        refs.dedup();
        let last_modified = match existing {
            Some(e) => e.body.get("_last_modified").cloned(),
            None => None,
        };
        if let Some(lm) = last_modified {
            body.insert("_last_modified".into(), lm);
        }
        Ok(Obj {
            obj_type: obj_type.to_string(),
            uuid: uuid.to_string(),
            name,
            tenant,
            cloud,
            body,
            seq: existing.map_or(0, |e| e.seq),
            refs,
            ips,
        })
    }

    fn complete_vs(&self, body: &mut Map<String, Value>, cloud: Option<&str>) {
        if let Some(vtype) = cloud.and_then(|c| self.objects.get(c)).and_then(|c| c.body.get("vtype")).cloned() {
            body.insert("cloud_type".into(), vtype);
        }
        let any_ssl = body
            .get("services")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|x| x.get("enable_ssl") == Some(&Value::Bool(true))));
        if any_ssl
            && !body.contains_key("ssl_profile_ref")
            && let Some(p) = self.find_by_name("sslprofile", "System-Standard-PFS", "admin", None)
        {
            body.insert("ssl_profile_ref".into(), Value::String(canonical("sslprofile", &p.uuid)));
        }
    }

    /// DNS profile domains of a cloud: `(profile name, domains, ttl)`.
    pub fn dns_domains(&self, cloud: &str) -> Option<(String, Vec<String>, Option<u64>)> {
        let cloud = self.objects.get(cloud)?;
        let profile = self.objects.get(&uuid_of_ref(cloud.body.get("dns_provider_ref"))?)?;
        let internal = profile.body.get("internal_profile");
        let domains = internal
            .and_then(|i| i.get("dns_service_domain"))
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(|d| d.get("domain_name")?.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let ttl = internal.and_then(|i| i.get("ttl")).and_then(Value::as_u64);
        Some((profile.name.clone(), domains, ttl))
    }

    /// IPAM networks of a cloud, in `usable_networks` order.
    fn ipam_networks(&self, cloud: &str) -> Vec<String> {
        let Some(cloud) = self.objects.get(cloud) else { return Vec::new() };
        let Some(profile) = uuid_of_ref(cloud.body.get("ipam_provider_ref")).and_then(|u| self.objects.get(&u)) else {
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

    fn complete_vsvip(
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
                let Some(fqdn) = info.get("fqdn").and_then(Value::as_str) else { continue };
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
                && self.used_ips.get(&(vrf.clone(), ip)).is_none_or(|owner| owner == uuid)
        };
        let Some(vips) = body.get_mut("vip").and_then(Value::as_array_mut) else { return Ok(taken) };
        for vip in vips.iter_mut().filter_map(Value::as_object_mut) {
            let vip_id = vip.get("vip_id").and_then(Value::as_str).unwrap_or("0").to_string();
            let auto = vip.get("auto_allocate_ip") == Some(&Value::Bool(true));
            let given: Option<Ipv4Addr> =
                vip.get("ip_address").and_then(|a| a.get("addr")).and_then(Value::as_str).and_then(|s| s.parse().ok());
            if let Some(ip) = given {
                if auto && let Some(prev) = previous.get(&vip_id)
                    && *prev != ip
                {
                    return Err(ApiError::new(400, "If a new preferred IP is needed, please recreate the VIP"));
                }
                if !is_free(ip, &taken) {
                    return Err(ApiError::new(409, format!("IP address {ip} is already in use in this VRF")));
                }
                taken.push((vrf.clone(), ip));
                continue;
            }
            if !auto {
                continue;
            }
            if let Some(prev) = previous.get(&vip_id).copied() {
                vip.insert("ip_address".into(), json!({"addr": prev.to_string(), "type": "V4"}));
                taken.push((vrf.clone(), prev));
                continue;
            }
            let subnet_req = vip.get("ipam_network_subnet").cloned().unwrap_or(Value::Null);
            let networks: Vec<String> = match uuid_of_ref(subnet_req.get("network_ref")) {
                Some(n) => vec![n],
                None => cloud.map(|c| self.ipam_networks(c)).unwrap_or_default(),
            };
            if networks.is_empty() {
                return Err(ApiError::new(400, "No available free IPs: no IPAM network configured for this VIP"));
            }
            let want_subnet = subnet_req.get("subnet").and_then(|s| {
                let addr: Ipv4Addr = s.get("ip_addr")?.get("addr")?.as_str()?.parse().ok()?;
                let mask = u8::try_from(s.get("mask")?.as_u64()?).ok()?;
                Some((addr, mask))
            });
            let mut allocated = None;
            for net in &networks {
                let Some(network) = self.objects.get(net) else { continue };
                let ranges = ipam::vip_ranges(&network.body);
                let mut used: HashSet<Ipv4Addr> = self
                    .used_ips
                    .iter()
                    .filter(|((v, _), owner)| *v == vrf && owner.as_str() != uuid)
                    .map(|((_, ip), _)| *ip)
                    .filter(|ip| ranges.iter().any(|r| r.contains(*ip)))
                    .collect();
                used.extend(taken.iter().map(|(_, ip)| *ip));
                if let Some((ip, range)) = ipam::first_free(&ranges, want_subnet, &used, self.ip_hint.get(net).copied()) {
                    allocated = Some((net.clone(), ip, range));
                    break;
                }
            }
            let Some((net, ip, range)) = allocated else {
                return Err(ApiError::new(400, "No available free IPs"));
            };
            let subnet = json!({"ip_addr": {"addr": range.prefix.to_string(), "type": "V4"}, "mask": range.mask});
            let net_ref = canonical("network", &net);
            vip.insert("ip_address".into(), json!({"addr": ip.to_string(), "type": "V4"}));
            vip.insert(
                "ipam_network_subnet".into(),
                json!({"network_ref": net_ref, "subnet": subnet}),
            );
            vip.insert("discovered_networks".into(), json!([{"network_ref": net_ref, "subnet": [subnet]}]));
            taken.push((vrf.clone(), ip));
        }
        Ok(taken)
    }

    /// Stores a prepared object (create or replace) and returns it.
    pub fn commit(&mut self, mut obj: Obj) -> &Obj {
        let lm = self.next_last_modified();
        obj.body.insert("_last_modified".into(), Value::String(lm));
        self.insert_indexed(obj)
    }

    fn insert_indexed(&mut self, mut obj: Obj) -> &Obj {
        if let Some(old) = self.objects.remove(&obj.uuid) {
            obj.seq = old.seq;
            self.unindex(&old);
        } else {
            self.seq += 1;
            obj.seq = self.seq;
        }
        self.by_type.entry(obj.obj_type.clone()).or_default().insert(obj.seq, obj.uuid.clone());
        self.names.entry((obj.obj_type.clone(), obj.name.clone())).or_default().push(obj.uuid.clone());
        for r in &obj.refs {
            self.referrers.entry(r.clone()).or_default().insert(obj.uuid.clone());
        }
        for (vrf, ip) in &obj.ips {
            self.used_ips.insert((vrf.clone(), *ip), obj.uuid.clone());
            if let Some(net) = network_of(&obj.body, *ip) {
                self.ip_hint.insert(net, *ip);
            }
        }
        if let Some(lm) = obj.body.get("_last_modified").and_then(Value::as_str).and_then(|s| s.parse::<u64>().ok()) {
            self.last_modified = self.last_modified.max(lm);
        }
        let uuid = obj.uuid.clone();
        self.objects.entry(uuid).or_insert(obj)
    }

    fn unindex(&mut self, old: &Obj) {
        if let Some(m) = self.by_type.get_mut(&old.obj_type) {
            m.remove(&old.seq);
        }
        let key = (old.obj_type.clone(), old.name.clone());
        if let Some(v) = self.names.get_mut(&key) {
            v.retain(|u| *u != old.uuid);
            if v.is_empty() {
                self.names.remove(&key);
            }
        }
        for r in &old.refs {
            if let Some(s) = self.referrers.get_mut(r) {
                s.remove(&old.uuid);
                if s.is_empty() {
                    self.referrers.remove(r);
                }
            }
        }
        for (vrf, ip) in &old.ips {
            if self.used_ips.get(&(vrf.clone(), *ip)) == Some(&old.uuid) {
                self.used_ips.remove(&(vrf.clone(), *ip));
            }
        }
    }

    /// Deletes an object unless something refers to it.
    pub fn delete(&mut self, obj_type: &str, uuid: &str, sel: &TenantSel) -> Result<Obj, ApiError> {
        self.get(obj_type, uuid, sel)?;
        let referrers: Vec<String> = self
            .referrers_of(uuid)
            .map(|o| format!("{} {}", type_info(&o.obj_type).map_or(o.obj_type.as_str(), |t| t.model), o.name))
            .collect();
        if !referrers.is_empty() {
            return Err(ApiError::new(400, format!("Cannot delete, object is referred by: [{}]", referrers.join(", "))));
        }
        let obj = self.objects.remove(uuid).ok_or_else(|| not_found(obj_type))?;
        self.unindex(&obj);
        Ok(obj)
    }

    /// Rebuilds an object from its persisted body (journal replay); trusts the body.
    pub fn restore(&mut self, obj_type: &str, body: Map<String, Value>) -> Result<(), String> {
        let uuid = body.get("uuid").and_then(Value::as_str).ok_or("object without uuid")?.to_string();
        let name = body.get("name").and_then(Value::as_str).ok_or("object without name")?.to_string();
        let tenant = uuid_of_ref(body.get("tenant_ref")).unwrap_or_else(|| "admin".into());
        let cloud = uuid_of_ref(body.get("cloud_ref"));
        let mut refs = Vec::new();
        collect_refs(&Value::Object(body.clone()), None, &mut refs);
        refs.retain(|r| *r != uuid);
        refs.sort();
        refs.dedup();
        let mut ips = Vec::new();
        if obj_type == "vsvip" {
            let vrf = uuid_of_ref(body.get("vrf_context_ref")).unwrap_or_default();
            for vip in body.get("vip").and_then(Value::as_array).into_iter().flatten() {
                if let Some(ip) = vip.get("ip_address").and_then(|a| a.get("addr")).and_then(Value::as_str) {
                    let ip: Ipv4Addr = ip.parse().map_err(|_| format!("bad VIP address {ip}"))?;
                    ips.push((vrf.clone(), ip));
                }
            }
        }
        self.insert_indexed(Obj { obj_type: obj_type.to_string(), uuid, name, tenant, cloud, body, seq: 0, refs, ips });
        Ok(())
    }

    /// Removes an object during journal replay.
    pub fn restore_delete(&mut self, uuid: &str) {
        if let Some(obj) = self.objects.remove(uuid) {
            self.unindex(&obj);
        }
    }

    /// Loads seed objects: all are registered first, so refs between them resolve in any order.
    pub fn load_seed(&mut self, entries: Vec<(String, Map<String, Value>)>) -> Result<Vec<String>, ApiError> {
        let mut placed = Vec::new();
        for (obj_type, body) in &entries {
            type_info(obj_type).ok_or_else(|| ApiError::new(400, format!("seed: unknown object type {obj_type}")))?;
            let name = body.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            let uuid = match body.get("uuid").and_then(Value::as_str) {
                Some(u) => u.to_string(),
                None => format!("{obj_type}-{}", uuid::Uuid::new_v4()),
            };
            let tenant = match body.get("tenant_ref").and_then(Value::as_str).and_then(parse_ref) {
                Some(ParsedRefName(n)) => self.tenant_by_name(&n).map_or_else(|| "admin".to_string(), |t| t.uuid.clone()),
                None => "admin".into(),
            };
            let mut stub = Map::new();
            stub.insert("uuid".into(), Value::String(uuid.clone()));
            stub.insert("name".into(), Value::String(name.clone()));
            self.insert_indexed(Obj {
                obj_type: obj_type.clone(),
                uuid: uuid.clone(),
                name,
                tenant,
                cloud: None,
                body: stub,
                seq: 0,
                refs: Vec::new(),
                ips: Vec::new(),
            });
            placed.push(uuid);
        }
        // Clouds first, so cloud-scoped names (VRF `global`) resolve per cloud.
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| usize::from(entries[i].0 != "cloud"));
        for i in order {
            let (obj_type, body) = &entries[i];
            let uuid = &placed[i];
            let existing = self.objects.get(uuid).cloned();
            let sel = TenantSel::One(existing.as_ref().map_or_else(|| "admin".into(), |e| e.tenant.clone()));
            let obj = self
                .prepare(obj_type, body.clone(), uuid, &sel, existing.as_ref())
                .map_err(|e| ApiError::new(e.status, format!("seed {obj_type} {}: {}", body.get("name").unwrap_or(&Value::Null), e.message)))?;
            self.commit(obj);
        }
        Ok(placed)
    }
}

/// Pattern helper: a by-name ref.
#[allow(non_snake_case)]
fn ParsedRefName(n: String) -> crate::avi::refs::ParsedRef {
    crate::avi::refs::ParsedRef { obj_type: None, target: RefTarget::Name(n), name_hint: None }
}
