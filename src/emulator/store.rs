//! The emulator's object store: validation, defaults, reference resolution, uniqueness, referential
//! integrity on delete, IPAM and the DNS-domain rule. Pure in-memory logic; persistence is in `journal`.

use std::collections::{BTreeMap, HashMap, HashSet};
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
        Self {
            status,
            message: message.into(),
        }
    }
}

/// What the emulator does with a VsVip `dns_info[].fqdn` outside the cloud's DNS profile domains.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
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
    TypeInfo {
        obj_type: "virtualservice",
        model: "VirtualService",
        verbose: "Virtual service",
        cloud_scoped: true,
    },
    TypeInfo {
        obj_type: "vsvip",
        model: "VsVip",
        verbose: "Vs vip",
        cloud_scoped: true,
    },
    TypeInfo {
        obj_type: "pool",
        model: "Pool",
        verbose: "Pool",
        cloud_scoped: true,
    },
    TypeInfo {
        obj_type: "poolgroup",
        model: "PoolGroup",
        verbose: "Pool group",
        cloud_scoped: true,
    },
    TypeInfo {
        obj_type: "httppolicyset",
        model: "HTTPPolicySet",
        verbose: "Http policy set",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "sslkeyandcertificate",
        model: "SSLKeyAndCertificate",
        verbose: "Ssl key and certificate",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "cloud",
        model: "Cloud",
        verbose: "Cloud",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "serviceenginegroup",
        model: "ServiceEngineGroup",
        verbose: "Service engine group",
        cloud_scoped: true,
    },
    TypeInfo {
        obj_type: "network",
        model: "Network",
        verbose: "Network",
        cloud_scoped: true,
    },
    TypeInfo {
        obj_type: "ipamdnsproviderprofile",
        model: "IpamDnsProviderProfile",
        verbose: "Ipam dns provider profile",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "tenant",
        model: "Tenant",
        verbose: "Tenant",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "vrfcontext",
        model: "VrfContext",
        verbose: "Vrf context",
        cloud_scoped: true,
    },
    TypeInfo {
        obj_type: "applicationprofile",
        model: "ApplicationProfile",
        verbose: "Application profile",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "networkprofile",
        model: "NetworkProfile",
        verbose: "Network profile",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "analyticsprofile",
        model: "AnalyticsProfile",
        verbose: "Analytics profile",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "sslprofile",
        model: "SSLProfile",
        verbose: "Ssl profile",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "healthmonitor",
        model: "HealthMonitor",
        verbose: "Health monitor",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "vsdatascriptset",
        model: "VSDataScriptSet",
        verbose: "V s data script set",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "l4policyset",
        model: "L4PolicySet",
        verbose: "L4 policy set",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "stringgroup",
        model: "StringGroup",
        verbose: "String group",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "pkiprofile",
        model: "PKIProfile",
        verbose: "P k i profile",
        cloud_scoped: false,
    },
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
    /// uuid -> uuids referring to it. A hash set: inserting into an ordered set of thousands of uuid
    /// strings (every VsVip refers to the same network, cloud and tenant) was the costliest part of a
    /// write; [`Store::referrers_of`] sorts on the (rare) read instead.
    referrers: HashMap<String, HashSet<String>>,
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

/// Collects canonical ref uuids from a body (without copying it).
fn collect_refs_map(map: &Map<String, Value>, out: &mut Vec<String>) {
    for (k, v) in map {
        collect_refs(v, Some(k), out);
    }
}

/// Collects canonical ref uuids from a value.
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
        Self {
            dns_policy,
            ..Default::default()
        }
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
        self.by_type
            .get(obj_type)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|u| self.objects.get(u))
    }

    /// Every object, in creation order (for compaction).
    pub fn all_in_order(&self) -> Vec<&Obj> {
        let mut v: Vec<&Obj> = self.objects.values().collect();
        v.sort_by_key(|o| o.seq);
        v
    }

    /// Finds by name: the tenant's object first, then the admin tenant's; prefers `cloud` when several.
    pub fn find_by_name(
        &self,
        obj_type: &str,
        name: &str,
        tenant: &str,
        cloud: Option<&str>,
    ) -> Option<&Obj> {
        let cands = self.names.get(&(obj_type.to_string(), name.to_string()))?;
        let pick = |t: &str| {
            let in_tenant: Vec<&Obj> = cands
                .iter()
                .filter_map(|u| self.objects.get(u))
                .filter(|o| o.tenant == t)
                .collect();
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

    /// The objects referring to `uuid`, in uuid order.
    pub fn referrers_of(&self, uuid: &str) -> impl Iterator<Item = &Obj> {
        let mut uuids: Vec<&String> = self.referrers.get(uuid).into_iter().flatten().collect();
        uuids.sort_unstable();
        uuids.into_iter().filter_map(|u| self.objects.get(u))
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
    fn resolve_ref(
        &self,
        raw: &str,
        field: &str,
        tenant: &str,
        cloud: Option<&str>,
    ) -> Result<(String, String), ApiError> {
        let parsed = parse_ref(raw)
            .ok_or_else(|| ApiError::new(400, format!("Invalid reference {field}: {raw}")))?;
        match parsed.target {
            RefTarget::Uuid(uuid) => match self.objects.get(&uuid) {
                Some(o) if parsed.obj_type.as_deref().is_none_or(|t| t == o.obj_type) => {
                    Ok((o.obj_type.clone(), o.uuid.clone()))
                }
                _ => {
                    let model = parsed
                        .obj_type
                        .as_deref()
                        .and_then(type_info)
                        .map_or("Object", |t| t.model);
                    Err(ApiError::new(
                        400,
                        format!("{model} object not found! ({field}: {raw})"),
                    ))
                }
            },
            RefTarget::Name(name) => {
                let obj_type = parsed.obj_type.unwrap_or_default();
                let model = type_info(&obj_type).map_or("Object", |t| t.model);
                let cloud_filter = if type_info(&obj_type).is_some_and(|t| t.cloud_scoped) {
                    cloud
                } else {
                    None
                };
                match self.find_by_name(&obj_type, &name, tenant, cloud_filter) {
                    Some(o) => Ok((o.obj_type.clone(), o.uuid.clone())),
                    None => Err(ApiError::new(
                        400,
                        format!("{model} object not found! ({field}: {raw})"),
                    )),
                }
            }
        }
    }

    /// Rewrites every ref in `value` to canonical form.
    fn resolve_all(
        &self,
        value: &mut Value,
        key: Option<&str>,
        tenant: &str,
        cloud: Option<&str>,
    ) -> Result<(), ApiError> {
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
        // Read-only back references the controller computes; a client echoing them must not pin objects.
        body.remove("vs_refs");
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
            Some(r) if obj_type != "tenant" => {
                self.resolve_ref(r, "tenant_ref", sel.write_tenant(), None)?
                    .1
            }
            _ => existing.map_or_else(|| sel.write_tenant().to_string(), |e| e.tenant.clone()),
        };
        let tenant = if obj_type == "tenant" || obj_type == "systemconfiguration" {
            "admin".to_string()
        } else {
            tenant
        };
        if obj_type != "tenant" && obj_type != "systemconfiguration" {
            body.insert(
                "tenant_ref".into(),
                Value::String(canonical("tenant", &tenant)),
            );
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
            "vsvip" => {
                ips = self.complete_vsvip(&mut body, uuid, cloud.as_deref(), &tenant, existing)?
            }
            "pool" => {
                let count = body
                    .get("servers")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                body.insert("server_count".into(), json!(count));
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
                    format!(
                        "{} with this Name, Tenant ref and Cloud ref already exists.",
                        info.verbose
                    )
                } else {
                    format!(
                        "{} with this Name and Tenant ref already exists.",
                        info.verbose
                    )
                };
                return Err(ApiError::new(409, msg));
            }
        }
        let mut refs = Vec::new();
        collect_refs_map(&body, &mut refs);
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
        if let Some(vtype) = cloud
            .and_then(|c| self.objects.get(c))
            .and_then(|c| c.body.get("vtype"))
            .cloned()
        {
            body.insert("cloud_type".into(), vtype);
        }
        let any_ssl = body
            .get("services")
            .and_then(Value::as_array)
            .is_some_and(|s| {
                s.iter()
                    .any(|x| x.get("enable_ssl") == Some(&Value::Bool(true)))
            });
        if any_ssl
            && !body.contains_key("ssl_profile_ref")
            && let Some(p) = self.find_by_name("sslprofile", "System-Standard-PFS", "admin", None)
        {
            body.insert(
                "ssl_profile_ref".into(),
                Value::String(canonical("sslprofile", &p.uuid)),
            );
        }
    }

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
            let auto = vip.get("auto_allocate_ip") == Some(&Value::Bool(true));
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
        self.by_type
            .entry(obj.obj_type.clone())
            .or_default()
            .insert(obj.seq, obj.uuid.clone());
        self.names
            .entry((obj.obj_type.clone(), obj.name.clone()))
            .or_default()
            .push(obj.uuid.clone());
        for r in &obj.refs {
            self.referrers
                .entry(r.clone())
                .or_default()
                .insert(obj.uuid.clone());
        }
        for (vrf, ip) in &obj.ips {
            self.used_ips.insert((vrf.clone(), *ip), obj.uuid.clone());
            if let Some(net) = network_of(&obj.body, *ip) {
                self.ip_hint.insert(net, *ip);
            }
        }
        if let Some(lm) = obj
            .body
            .get("_last_modified")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<u64>().ok())
        {
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
        let mut referring: Vec<&Obj> = self.referrers_of(uuid).collect();
        referring.sort_by_key(|o| o.seq);
        let referrers: Vec<String> = referring
            .iter()
            .map(|o| {
                format!(
                    "{} {}",
                    type_info(&o.obj_type).map_or(o.obj_type.as_str(), |t| t.model),
                    o.name
                )
            })
            .collect();
        if !referrers.is_empty() {
            return Err(ApiError::new(
                400,
                format!(
                    "Cannot delete, object is referred by: [{}]",
                    referrers.join(", ")
                ),
            ));
        }
        let obj = self
            .objects
            .remove(uuid)
            .ok_or_else(|| not_found(obj_type))?;
        self.unindex(&obj);
        Ok(obj)
    }

    /// Rebuilds an object from its persisted body (journal replay); trusts the body.
    pub fn restore(&mut self, obj_type: &str, body: Map<String, Value>) -> Result<(), String> {
        let uuid = body
            .get("uuid")
            .and_then(Value::as_str)
            .ok_or("object without uuid")?
            .to_string();
        let name = body
            .get("name")
            .and_then(Value::as_str)
            .ok_or("object without name")?
            .to_string();
        let tenant = uuid_of_ref(body.get("tenant_ref")).unwrap_or_else(|| "admin".into());
        let cloud = uuid_of_ref(body.get("cloud_ref"));
        let mut refs = Vec::new();
        collect_refs_map(&body, &mut refs);
        refs.retain(|r| *r != uuid);
        refs.sort();
        refs.dedup();
        let mut ips = Vec::new();
        if obj_type == "vsvip" {
            let vrf = uuid_of_ref(body.get("vrf_context_ref")).unwrap_or_default();
            for vip in body
                .get("vip")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(ip) = vip
                    .get("ip_address")
                    .and_then(|a| a.get("addr"))
                    .and_then(Value::as_str)
                {
                    let ip: Ipv4Addr = ip.parse().map_err(|_| format!("bad VIP address {ip}"))?;
                    ips.push((vrf.clone(), ip));
                }
            }
        }
        self.insert_indexed(Obj {
            obj_type: obj_type.to_string(),
            uuid,
            name,
            tenant,
            cloud,
            body,
            seq: 0,
            refs,
            ips,
        });
        Ok(())
    }

    /// Removes an object during journal replay.
    pub fn restore_delete(&mut self, uuid: &str) {
        if let Some(obj) = self.objects.remove(uuid) {
            self.unindex(&obj);
        }
    }

    /// Loads seed objects: all are registered first, so refs between them resolve in any order.
    pub fn load_seed(
        &mut self,
        entries: Vec<(String, Map<String, Value>)>,
    ) -> Result<Vec<String>, ApiError> {
        let mut placed = Vec::new();
        for (obj_type, body) in &entries {
            type_info(obj_type).ok_or_else(|| {
                ApiError::new(400, format!("seed: unknown object type {obj_type}"))
            })?;
            let name = body
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let uuid = match body.get("uuid").and_then(Value::as_str) {
                Some(u) => u.to_string(),
                None => format!("{obj_type}-{}", uuid::Uuid::new_v4()),
            };
            let tenant = body
                .get("tenant_ref")
                .and_then(Value::as_str)
                .and_then(parse_ref)
                .and_then(|p| match p.target {
                    RefTarget::Name(n) => self.tenant_by_name(&n).map(|t| t.uuid.clone()),
                    RefTarget::Uuid(u) => Some(u),
                })
                .unwrap_or_else(|| "admin".into());
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
            let sel = TenantSel::One(
                existing
                    .as_ref()
                    .map_or_else(|| "admin".into(), |e| e.tenant.clone()),
            );
            let obj = self
                .prepare(obj_type, body.clone(), uuid, &sel, existing.as_ref())
                .map_err(|e| {
                    ApiError::new(
                        e.status,
                        format!(
                            "seed {obj_type} {}: {}",
                            body.get("name").unwrap_or(&Value::Null),
                            e.message
                        ),
                    )
                })?;
            self.commit(obj);
        }
        Ok(placed)
    }
}

fn not_found(obj_type: &str) -> ApiError {
    let model = type_info(obj_type).map_or("Object", |t| t.model);
    ApiError::new(404, format!("{model} object not found!"))
}

/// Whether `fqdn` is one of `domains` or under one (`.com` style entries match as suffixes).
pub fn fqdn_in_domains(fqdn: &str, domains: &[String]) -> bool {
    let fqdn = fqdn.trim_end_matches('.').to_ascii_lowercase();
    domains.iter().any(|d| {
        let d = d
            .trim_end_matches('.')
            .trim_start_matches('.')
            .to_ascii_lowercase();
        !d.is_empty() && (fqdn == d || fqdn.ends_with(&format!(".{d}")))
    })
}

fn network_of(body: &Map<String, Value>, ip: Ipv4Addr) -> Option<String> {
    let ip = ip.to_string();
    body.get("vip")?.as_array()?.iter().find_map(|v| {
        (v.get("ip_address")?.get("addr")?.as_str()? == ip)
            .then(|| uuid_of_ref(v.get("ipam_network_subnet")?.get("network_ref")))
            .flatten()
    })
}

fn by_name(obj_type: &str, name: &str) -> Value {
    Value::String(format!("/api/{obj_type}/?name={name}"))
}

/// Controller defaults filled on create/replace (avi-api.md §3 and the recorded 201 bodies).
pub fn apply_defaults(obj_type: &str, body: &mut Map<String, Value>) {
    let cloudy = matches!(
        obj_type,
        "virtualservice"
            | "vsvip"
            | "pool"
            | "poolgroup"
            | "network"
            | "serviceenginegroup"
            | "vrfcontext"
    );
    if cloudy {
        set_default(body, "cloud_ref", by_name("cloud", "Default-Cloud"));
    }
    match obj_type {
        "virtualservice" => {
            for (k, v) in [
                ("enabled", json!(true)),
                ("type", json!("VS_TYPE_NORMAL")),
                (
                    "application_profile_ref",
                    by_name("applicationprofile", "System-HTTP"),
                ),
                (
                    "network_profile_ref",
                    by_name("networkprofile", "System-TCP-Proxy"),
                ),
                (
                    "se_group_ref",
                    by_name("serviceenginegroup", "Default-Group"),
                ),
                ("vrf_context_ref", by_name("vrfcontext", "global")),
                (
                    "analytics_profile_ref",
                    by_name("analyticsprofile", "System-Analytics-Profile"),
                ),
                ("enable_autogw", json!(true)),
                ("weight", json!(1)),
                ("delay_fairness", json!(false)),
                ("max_cps_per_client", json!(0)),
                ("limit_doser", json!(false)),
                ("use_bridge_ip_as_vip", json!(false)),
                ("flow_dist", json!("LOAD_AWARE")),
                ("ign_pool_net_reach", json!(false)),
                ("ssl_sess_cache_avg_size", json!(1024)),
                ("remove_listening_port_on_vs_down", json!(false)),
                ("close_client_conn_on_config_update", json!(false)),
                ("bulk_sync_kvcache", json!(false)),
                ("advertise_down_vs", json!(false)),
                ("east_west_placement", json!(false)),
                ("scaleout_ecmp", json!(false)),
                ("active_standby_se_tag", json!("ACTIVE_STANDBY_SE_1")),
                ("flow_label_type", json!("NO_LABEL")),
                ("use_vip_as_snat", json!(false)),
                ("traffic_enabled", json!(true)),
                ("allow_invalid_client_cert", json!(false)),
            ] {
                set_default(body, k, v);
            }
            if let Some(services) = body.get_mut("services").and_then(Value::as_array_mut) {
                for s in services.iter_mut().filter_map(Value::as_object_mut) {
                    if let Some(port) = s.get("port").cloned() {
                        set_default(s, "port_range_end", port);
                    }
                    set_default(s, "enable_ssl", json!(false));
                    set_default(s, "enable_http2", json!(false));
                }
            }
        }
        "vsvip" => {
            set_default(body, "vrf_context_ref", by_name("vrfcontext", "global"));
            set_default(body, "east_west_placement", json!(false));
            if let Some(vips) = body.get_mut("vip").and_then(Value::as_array_mut) {
                for (i, vip) in vips.iter_mut().filter_map(Value::as_object_mut).enumerate() {
                    for (k, v) in [
                        ("vip_id", json!(i.to_string())),
                        ("enabled", json!(true)),
                        ("auto_allocate_ip", json!(false)),
                        ("auto_allocate_floating_ip", json!(false)),
                        ("avi_allocated_vip", json!(false)),
                        ("avi_allocated_fip", json!(false)),
                        ("auto_allocate_ip_type", json!("V4_ONLY")),
                        ("prefix_length", json!(32)),
                    ] {
                        set_default(vip, k, v);
                    }
                }
            }
            if let Some(infos) = body.get_mut("dns_info").and_then(Value::as_array_mut) {
                for info in infos.iter_mut().filter_map(Value::as_object_mut) {
                    set_default(info, "type", json!("DNS_RECORD_A"));
                    set_default(info, "num_records_in_response", json!(1));
                    set_default(
                        info,
                        "algorithm",
                        json!("DNS_RECORD_RESPONSE_CONSISTENT_HASH"),
                    );
                }
            }
        }
        "pool" => {
            for (k, v) in [
                ("enabled", json!(true)),
                ("vrf_ref", by_name("vrfcontext", "global")),
                (
                    "analytics_profile_ref",
                    by_name("analyticsprofile", "System-Analytics-Profile"),
                ),
                ("default_server_port", json!(80)),
                ("graceful_disable_timeout", json!(1)),
                ("connection_ramp_duration", json!(10)),
                ("max_concurrent_connections_per_server", json!(0)),
                ("lb_algorithm", json!("LB_ALGORITHM_LEAST_CONNECTIONS")),
                (
                    "lb_algorithm_hash",
                    json!("LB_ALGORITHM_CONSISTENT_HASH_SOURCE_IP_ADDRESS"),
                ),
                ("inline_health_monitor", json!(true)),
                ("use_service_port", json!(false)),
                ("capacity_estimation", json!(false)),
                ("capacity_estimation_ttfb_thresh", json!(0)),
                ("fewest_tasks_feedback_delay", json!(10)),
                ("request_queue_enabled", json!(false)),
                ("request_queue_depth", json!(128)),
                ("host_check_enabled", json!(false)),
                ("sni_enabled", json!(true)),
                ("rewrite_host_header_to_sni", json!(false)),
                ("rewrite_host_header_to_server_name", json!(false)),
                ("lb_algorithm_core_nonaffinity", json!(2)),
                ("lookup_server_by_name", json!(false)),
                ("server_timeout", json!(0)),
                ("delete_server_on_dns_refresh", json!(true)),
                ("enable_http2", json!(false)),
                ("ignore_server_port", json!(false)),
                ("routing_pool", json!(false)),
            ] {
                set_default(body, k, v);
            }
            if let Some(servers) = body.get_mut("servers").and_then(Value::as_array_mut) {
                for s in servers.iter_mut().filter_map(Value::as_object_mut) {
                    for (k, v) in [
                        ("enabled", json!(true)),
                        ("ratio", json!(1)),
                        ("verify_network", json!(false)),
                        ("resolve_server_by_dns", json!(false)),
                        ("static", json!(false)),
                        ("rewrite_host_header", json!(false)),
                    ] {
                        set_default(s, k, v);
                    }
                }
            }
        }
        "poolgroup" => {
            set_default(body, "implicit_priority_labels", json!(false));
            set_default(body, "min_servers", json!(0));
            if let Some(members) = body.get_mut("members").and_then(Value::as_array_mut) {
                for m in members.iter_mut().filter_map(Value::as_object_mut) {
                    set_default(m, "ratio", json!(1));
                }
            }
        }
        "httppolicyset" => {
            set_default(body, "is_internal_policy", json!(false));
        }
        "sslkeyandcertificate" => {
            for (k, v) in [
                ("type", json!("SSL_CERTIFICATE_TYPE_VIRTUALSERVICE")),
                ("status", json!("SSL_CERTIFICATE_FINISHED")),
                ("format", json!("SSL_PEM")),
                ("key_passphrase", json!("")),
                ("certificate_base64", json!(false)),
                ("key_base64", json!(false)),
                ("enable_ocsp_stapling", json!(false)),
            ] {
                set_default(body, k, v);
            }
            if let Some(cert) = body.get_mut("certificate").and_then(Value::as_object_mut) {
                set_default(cert, "expiry_status", json!("SSL_CERTIFICATE_GOOD"));
                set_default(cert, "self_signed", json!(false));
            }
        }
        "tenant" => {
            set_default(body, "local", json!(true));
            set_default(
                body,
                "config_settings",
                json!({"tenant_vrf": false, "se_in_provider_context": true, "tenant_access_to_provider_se": true}),
            );
        }
        "cloud" => {
            for (k, v) in [
                ("vtype", json!("CLOUD_NONE")),
                ("apic_mode", json!(false)),
                ("mtu", json!(1500)),
                ("prefer_static_routes", json!(false)),
                ("enable_vip_static_routes", json!(false)),
                ("license_type", json!("LIC_CORES")),
                ("ip6_autocfg_enabled", json!(false)),
                ("dns_resolution_on_se", json!(false)),
                ("enable_vip_on_all_interfaces", json!(false)),
                ("license_tier", json!("ENTERPRISE")),
                ("autoscale_polling_interval", json!(60)),
            ] {
                set_default(body, k, v);
            }
            set_default(body, "state_based_dns_registration", json!(true));
            set_default(body, "dhcp_enabled", json!(false));
        }
        "serviceenginegroup" => {
            for (k, v) in [
                ("ha_mode", json!("HA_MODE_SHARED")),
                ("max_se", json!(10)),
                ("min_se", json!(1)),
                ("max_vs_per_se", json!(10)),
                ("se_name_prefix", json!("Avi")),
            ] {
                set_default(body, k, v);
            }
        }
        "network" => {
            set_default(body, "vrf_context_ref", by_name("vrfcontext", "global"));
            set_default(body, "dhcp_enabled", json!(true));
            set_default(body, "exclude_discovered_subnets", json!(false));
            set_default(body, "ip6_autocfg_enabled", json!(false));
        }
        "vrfcontext" => {
            set_default(body, "system_default", json!(false));
        }
        "ipamdnsproviderprofile" => {
            set_default(body, "allocate_ip_in_vrf", json!(false));
        }
        _ => {}
    }
}

/// Applies a classic PATCH (`add`/`replace`/`delete`, depth 1) to a body whose refs are canonical.
/// Scalars: `add`/`replace` set, `delete` removes the field. Lists: `add` appends, `replace` replaces,
/// `delete` removes every entry that matches all the fields given in a patch entry.
pub fn apply_patch(
    body: &mut Map<String, Value>,
    op: &str,
    fields: &Map<String, Value>,
) -> Result<(), ApiError> {
    for (key, value) in fields {
        match (op, body.get_mut(key), value) {
            ("add", Some(Value::Array(existing)), Value::Array(new)) => {
                existing.extend(new.iter().cloned())
            }
            ("add" | "replace", _, v) => {
                body.insert(key.clone(), v.clone());
            }
            ("delete", Some(Value::Array(existing)), Value::Array(remove)) => {
                existing.retain(|e| !remove.iter().any(|r| subset_matches(r, e)));
            }
            ("delete", Some(_), _) => {
                body.remove(key);
            }
            ("delete", None, _) => {}
            (other, _, _) => {
                return Err(ApiError::new(
                    400,
                    format!("Unsupported PATCH operation {other}"),
                ));
            }
        }
    }
    Ok(())
}

/// `pattern` matches `value` when every field of `pattern` is present and matching in `value`.
pub fn subset_matches(pattern: &Value, value: &Value) -> bool {
    match (pattern, value) {
        (Value::Object(p), Value::Object(v)) => p
            .iter()
            .all(|(k, pv)| v.get(k).is_some_and(|vv| subset_matches(pv, vv))),
        _ => pattern == value,
    }
}

impl Store {
    /// Canonicalises the refs of a PATCH payload so list-entry matching compares like with like.
    pub fn resolve_patch_payload(
        &self,
        fields: &mut Value,
        tenant: &str,
        cloud: Option<&str>,
    ) -> Result<(), ApiError> {
        self.resolve_all(fields, None, tenant, cloud)
    }

    /// Renders an object for output: `url` first, refs absolute, `#name` when `include_name`.
    pub fn render(&self, obj: &Obj, host: &str, include_name: bool) -> Map<String, Value> {
        let mut out = Map::with_capacity(obj.body.len() + 1);
        let mut url = format!("https://{host}/api/{}/{}", obj.obj_type, obj.uuid);
        if include_name {
            url.push('#');
            url.push_str(&obj.name);
        }
        out.insert("url".into(), Value::String(url));
        out.insert("uuid".into(), Value::String(obj.uuid.clone()));
        out.insert("name".into(), Value::String(obj.name.clone()));
        for (k, v) in &obj.body {
            if k == "uuid" || k == "name" {
                continue;
            }
            let mut v = v.clone();
            self.render_refs(&mut v, Some(k), host, include_name);
            out.insert(k.clone(), v);
        }
        out
    }

    fn render_refs(&self, value: &mut Value, key: Option<&str>, host: &str, include_name: bool) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    self.render_refs(v, Some(k), host, include_name);
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.render_refs(v, key, host, include_name);
                }
            }
            Value::String(s) if key.is_some_and(is_ref_key) && s.starts_with("/api/") => {
                let mut url = format!("https://{host}{s}");
                if include_name
                    && let Some(u) = s.rsplit('/').next()
                    && let Some(target) = self.objects.get(u)
                {
                    url.push('#');
                    url.push_str(&target.name);
                }
                *s = url;
            }
            _ => {}
        }
    }

    /// Collection filtering (avi-api.md §2.2). Unknown parameters are ignored, as the controller does.
    pub fn matches(&self, obj: &Obj, filters: &[(String, Option<String>)]) -> bool {
        filters.iter().all(|(k, v)| {
            let v = v.as_deref().unwrap_or("");
            match k.as_str() {
                "name" => obj.name == v,
                "name.contains" => obj.name.contains(v),
                "name.icontains" => obj.name.to_lowercase().contains(&v.to_lowercase()),
                "name.in" => v.split(',').any(|n| n == obj.name),
                "uuid" => obj.uuid == v,
                "uuid.in" => v.split(',').any(|n| n == obj.uuid),
                "cloud_ref.name" => obj
                    .cloud
                    .as_deref()
                    .and_then(|c| self.objects.get(c))
                    .is_some_and(|c| c.name == v),
                "cloud_ref.uuid" | "cloud_uuid" => {
                    obj.cloud.as_deref() == Some(v) || obj.obj_type == "cloud" && obj.uuid == v
                }
                "refers_to" => {
                    let target = v.rsplit(':').next().unwrap_or(v);
                    obj.refs.iter().any(|r| r == target)
                }
                "referred_by" => {
                    let source = v.rsplit(':').next().unwrap_or(v);
                    self.objects
                        .get(source)
                        .is_some_and(|s| s.refs.contains(&obj.uuid))
                }
                "page" | "page_size" | "include_name" | "fields" | "skip_default"
                | "join_subresources" | "sort" | "include" | "step" | "limit" | "exclude"
                | "limit_by" | "search" | "isearch" => true,
                field => match obj.body.get(field) {
                    Some(Value::String(s)) => s == v,
                    Some(Value::Bool(b)) => b.to_string() == v,
                    Some(Value::Number(n)) => n.to_string() == v,
                    _ => true,
                },
            }
        })
    }

    /// Objects of `obj_type` visible to `sel` and matching `filters`, in creation order.
    pub fn query<'a>(
        &'a self,
        obj_type: &str,
        sel: &'a TenantSel,
        filters: &'a [(String, Option<String>)],
    ) -> Vec<&'a Obj> {
        // `name=` is the hot path (AKO reads by name): use the index.
        if let Some((_, Some(name))) = filters.iter().find(|(k, _)| k == "name") {
            let mut v: Vec<&Obj> = self
                .names
                .get(&(obj_type.to_string(), name.clone()))
                .into_iter()
                .flatten()
                .filter_map(|u| self.objects.get(u))
                .filter(|o| sel.sees(o) && self.matches(o, filters))
                .collect();
            v.sort_by_key(|o| o.seq);
            return v;
        }
        self.iter_type(obj_type)
            .filter(|o| sel.sees(o) && self.matches(o, filters))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded() -> Store {
        let mut store = Store::new(DnsPolicy::Reject);
        let entries: Vec<(String, Map<String, Value>)> = vec![
            ("tenant", json!({"uuid": "admin", "name": "admin"})),
            ("tenant", json!({"name": "t1"})),
            ("cloud", json!({"name": "Default-Cloud", "vtype": "CLOUD_NONE",
                "ipam_provider_ref": "/api/ipamdnsproviderprofile/?name=ipam",
                "dns_provider_ref": "/api/ipamdnsproviderprofile/?name=dns"})),
            ("vrfcontext", json!({"name": "global", "system_default": true})),
            ("serviceenginegroup", json!({"name": "Default-Group"})),
            ("applicationprofile", json!({"name": "System-HTTP"})),
            ("networkprofile", json!({"name": "System-TCP-Proxy"})),
            ("analyticsprofile", json!({"name": "System-Analytics-Profile"})),
            ("sslprofile", json!({"name": "System-Standard-PFS"})),
            ("network", json!({"name": "vip-net", "configured_subnets": [{
                "prefix": {"ip_addr": {"addr": "10.10.18.0", "type": "V4"}, "mask": 29},
                "static_ip_ranges": [{"type": "STATIC_IPS_FOR_VIP",
                    "range": {"begin": {"addr": "10.10.18.2", "type": "V4"}, "end": {"addr": "10.10.18.3", "type": "V4"}}}]}]})),
            ("ipamdnsproviderprofile", json!({"name": "ipam", "type": "IPAMDNS_TYPE_INTERNAL",
                "internal_profile": {"usable_networks": [{"nw_ref": "/api/network/?name=vip-net"}]}})),
            ("ipamdnsproviderprofile", json!({"name": "dns", "type": "IPAMDNS_TYPE_INTERNAL_DNS",
                "internal_profile": {"dns_service_domain": [{"domain_name": "avi.jarvis.lab"}], "ttl": 30}})),
        ]
        .into_iter()
        .map(|(t, v)| (t.to_string(), v.as_object().cloned().expect("object")))
        .collect();
        store.load_seed(entries).expect("seed");
        store
    }

    fn create(store: &mut Store, t: &str, body: Value) -> Result<Obj, ApiError> {
        let sel = TenantSel::One("admin".into());
        let uuid = format!("{t}-{}", uuid::Uuid::new_v4());
        let obj = store.prepare(
            t,
            body.as_object().cloned().expect("object"),
            &uuid,
            &sel,
            None,
        )?;
        Ok(store.commit(obj).clone())
    }

    fn vip_addr(o: &Obj) -> Option<String> {
        o.body
            .get("vip")
            .and_then(|v| v.pointer("/0/ip_address/addr"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    #[test]
    fn auto_allocation_hands_out_the_range_then_reports_exhaustion_and_reuses_freed_addresses() {
        let mut store = seeded();
        let req = |n: &str| json!({"name": n, "vip": [{"auto_allocate_ip": true}]});
        let a = create(&mut store, "vsvip", req("a")).expect("a");
        let b = create(&mut store, "vsvip", req("b")).expect("b");
        assert_eq!(vip_addr(&a).as_deref(), Some("10.10.18.2"));
        assert_eq!(vip_addr(&b).as_deref(), Some("10.10.18.3"));
        let err = create(&mut store, "vsvip", req("c")).expect_err("exhausted");
        assert_eq!(
            (err.status, err.message.as_str()),
            (400, "No available free IPs")
        );
        store
            .delete("vsvip", &a.uuid, &TenantSel::One("admin".into()))
            .expect("delete");
        let c = create(&mut store, "vsvip", req("c")).expect("c");
        assert_eq!(vip_addr(&c).as_deref(), Some("10.10.18.2"));
    }

    #[test]
    fn a_static_address_inside_the_range_is_reserved() {
        let mut store = seeded();
        create(
            &mut store,
            "vsvip",
            json!({"name": "s", "vip": [{"ip_address": {"addr": "10.10.18.2", "type": "V4"}}]}),
        )
        .expect("static");
        let auto = create(
            &mut store,
            "vsvip",
            json!({"name": "a", "vip": [{"auto_allocate_ip": true}]}),
        )
        .expect("auto");
        assert_eq!(vip_addr(&auto).as_deref(), Some("10.10.18.3"));
        let dup = create(
            &mut store,
            "vsvip",
            json!({"name": "d", "vip": [{"ip_address": {"addr": "10.10.18.2"}}]}),
        );
        assert_eq!(dup.expect_err("dup").status, 409);
    }

    #[test]
    fn dns_fqdn_outside_the_profile_domains_is_rejected_with_the_documented_message() {
        let mut store = seeded();
        let cases = [
            ("app.avi.jarvis.lab", None),
            ("avi.jarvis.lab", None),
            ("app.example.com", Some(400)),
        ];
        for (i, (fqdn, want)) in cases.into_iter().enumerate() {
            let got = create(
                &mut store,
                "vsvip",
                json!({"name": format!("v{i}"), "vip": [], "dns_info": [{"fqdn": fqdn}]}),
            );
            assert_eq!(got.as_ref().err().map(|e| e.status), want, "{fqdn}");
            if let Err(e) = got {
                assert_eq!(
                    e.message,
                    dns_domain_error(fqdn, "dns", &["avi.jarvis.lab".into()])
                );
            }
        }
        store.dns_policy = DnsPolicy::Accept;
        assert!(
            create(
                &mut store,
                "vsvip",
                json!({"name": "ok", "dns_info": [{"fqdn": "x.example.com"}]})
            )
            .is_ok()
        );
    }

    #[test]
    fn duplicate_names_conflict_per_tenant_and_cloud() {
        let mut store = seeded();
        create(&mut store, "pool", json!({"name": "p"})).expect("first");
        let err = create(&mut store, "pool", json!({"name": "p"})).expect_err("dup");
        assert_eq!(
            err,
            ApiError::new(
                409,
                "Pool with this Name, Tenant ref and Cloud ref already exists."
            )
        );
        let err = create(&mut store, "httppolicyset", json!({"name": "h"}))
            .and_then(|_| create(&mut store, "httppolicyset", json!({"name": "h"})));
        assert_eq!(
            err.expect_err("dup").message,
            "Http policy set with this Name and Tenant ref already exists."
        );
        let other_tenant = create(
            &mut store,
            "pool",
            json!({"name": "p", "tenant_ref": "/api/tenant/?name=t1"}),
        );
        assert!(other_tenant.is_ok());
    }

    #[test]
    fn refs_resolve_in_every_form_and_a_referenced_object_cannot_be_deleted() {
        let mut store = seeded();
        let pool = create(&mut store, "pool", json!({"name": "p"})).expect("pool");
        let forms = [
            format!("https://avi-controller/api/pool/{}#p", pool.uuid),
            format!("/api/pool/{}", pool.uuid),
            "/api/pool/?name=p".to_string(),
            "/api/pool?name=p".to_string(),
            pool.uuid.clone(),
        ];
        for (i, form) in forms.iter().enumerate() {
            let vs = create(
                &mut store,
                "virtualservice",
                json!({"name": format!("vs{i}"), "pool_ref": form}),
            )
            .expect(form);
            assert_eq!(
                vs.body["pool_ref"],
                json!(format!("/api/pool/{}", pool.uuid)),
                "{form}"
            );
            assert_eq!(vs.body["cloud_type"], json!("CLOUD_NONE"));
        }
        let err = store
            .delete("pool", &pool.uuid, &TenantSel::One("admin".into()))
            .expect_err("referenced");
        assert_eq!(err.status, 400);
        assert!(
            err.message.starts_with(
                "Cannot delete, object is referred by: [VirtualService vs0, VirtualService vs1"
            ),
            "{}",
            err.message
        );
        let missing = create(
            &mut store,
            "virtualservice",
            json!({"name": "x", "pool_ref": "/api/pool/?name=nope"}),
        );
        assert_eq!(missing.expect_err("missing").status, 400);
    }

    #[test]
    fn patch_operations_follow_the_documented_semantics() {
        let base = json!({"name": "p", "servers": [{"ip": {"addr": "1.1.1.1"}, "port": 80}, {"ip": {"addr": "2.2.2.2"}}], "enabled": true});
        let cases = [
            (
                "add",
                json!({"servers": [{"ip": {"addr": "3.3.3.3"}}]}),
                json!([{"ip": {"addr": "1.1.1.1"}, "port": 80}, {"ip": {"addr": "2.2.2.2"}}, {"ip": {"addr": "3.3.3.3"}}]),
            ),
            (
                "replace",
                json!({"servers": [{"ip": {"addr": "3.3.3.3"}}]}),
                json!([{"ip": {"addr": "3.3.3.3"}}]),
            ),
            (
                "delete",
                json!({"servers": [{"ip": {"addr": "1.1.1.1"}}]}),
                json!([{"ip": {"addr": "2.2.2.2"}}]),
            ),
        ];
        for (op, fields, want) in cases {
            let mut body = base.as_object().cloned().expect("object");
            apply_patch(&mut body, op, fields.as_object().expect("object")).expect(op);
            assert_eq!(body["servers"], want, "{op}");
        }
        let mut body = base.as_object().cloned().expect("object");
        apply_patch(
            &mut body,
            "replace",
            json!({"enabled": false}).as_object().expect("o"),
        )
        .expect("scalar");
        assert_eq!(body["enabled"], json!(false));
        apply_patch(
            &mut body,
            "delete",
            json!({"enabled": null}).as_object().expect("o"),
        )
        .expect("delete scalar");
        assert!(!body.contains_key("enabled"));
        assert_eq!(
            apply_patch(&mut body, "remove", &Map::new()).map(|_| ()),
            Ok(())
        );
        assert!(apply_patch(&mut body, "remove", json!({"a": 1}).as_object().expect("o")).is_err());
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn collection_filters_select_the_documented_objects() {
        let mut store = seeded();
        create(
            &mut store,
            "pool",
            json!({"name": "ako-c1-a", "created_by": "ako-c1"}),
        )
        .expect("a");
        create(
            &mut store,
            "pool",
            json!({"name": "ako-c1-b", "created_by": "ako-c1"}),
        )
        .expect("b");
        create(
            &mut store,
            "pool",
            json!({"name": "other", "created_by": "someone"}),
        )
        .expect("c");
        let sel = TenantSel::One("admin".into());
        let f = |pairs: &[(&str, &str)]| -> Vec<(String, Option<String>)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                .collect()
        };
        let cases: Vec<(Vec<(String, Option<String>)>, Vec<&str>)> = vec![
            (f(&[("name", "other")]), vec!["other"]),
            (f(&[("created_by", "ako-c1")]), vec!["ako-c1-a", "ako-c1-b"]),
            (f(&[("name.contains", "c1-")]), vec!["ako-c1-a", "ako-c1-b"]),
            (
                f(&[("name.in", "other,ako-c1-b")]),
                vec!["ako-c1-b", "other"],
            ),
            (
                f(&[
                    ("cloud_ref.name", "Default-Cloud"),
                    ("created_by", "someone"),
                ]),
                vec!["other"],
            ),
            (f(&[("cloud_ref.name", "Other-Cloud")]), vec![]),
            (
                f(&[("unknown_param", "x")]),
                vec!["ako-c1-a", "ako-c1-b", "other"],
            ),
        ];
        for (filters, want) in cases {
            let got: Vec<&str> = store
                .query("pool", &sel, &filters)
                .iter()
                .map(|o| o.name.as_str())
                .collect();
            assert_eq!(got, want, "{filters:?}");
        }
    }

    #[test]
    fn fqdn_domain_matching_handles_suffix_entries() {
        let domains = vec!["avi.jarvis.lab".to_string(), ".com".to_string()];
        let cases = [
            ("a.avi.jarvis.lab", true),
            ("avi.jarvis.lab.", true),
            ("x.example.com", true),
            ("bavi.jarvis.lab", false),
            ("a.org", false),
        ];
        for (fqdn, want) in cases {
            assert_eq!(fqdn_in_domains(fqdn, &domains), want, "{fqdn}");
        }
    }
}
