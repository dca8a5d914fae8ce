//! L7 translation: Ingresses of ako's class -> the Avi objects that should exist, with AKO's names so a cluster
//! moving from AKO keeps its virtual services. Pure: Ingresses, backend Services with their endpoints, nodes and
//! the TLS Secrets' PEM come in as values; [`crate::plan`] compares the result with the controller.
//!
//! Shared mode (`shardVSSize` LARGE 8, MEDIUM 4, SMALL 1 parents), per shard `n = fnv1a32(host) & (shards-1)`:
//!
//! ```text
//!  VsVip           <cluster>--Shared-L7-<n>          dns_info: the shard's hosts inside the delegated subdomains
//!  VirtualService  <cluster>--Shared-L7-<n>          VS_TYPE_VH_PARENT, 80 + 443/SSL, System-HTTP,
//!                                                    http_policies: one set per host, in host order
//!  per host:
//!  HTTPPolicySet   <cluster>--Shared-L7-<n>--<host>  on the parent: insecure host+path -> PoolGroup; secure 80 -> 443
//!  Pool, PoolGroup <cluster>--<host>_<path>-<ns>-<ing>          insecure route ('/' -> '_', AKO's GetL7PoolName)
//!  per secure host:
//!  SSLKeyAndCertificate <cluster>--<host>            the Secret's certificate and key
//!  Pool, PoolGroup <cluster>--<ns>-<host>_<path>-<ing>          (AKO's GetSniPoolName / GetSniPGName)
//!  HTTPPolicySet   <cluster>--<ns>-<host>            path -> PoolGroup (AKO's GetSniHttpPolName)
//!  VirtualService  <cluster>--<host>                 VS_TYPE_VH_CHILD of its shard's parent, vh_domain_name [host]
//! ```
//!
//! Dedicated mode: one `VS_TYPE_NORMAL` virtual service per host, `<cluster>--<host>-L7-dedicated`, with its own
//! VsVip and HTTPPolicySet (same name); pools `<cluster>--<ns>-<host>_<path>-<ing>-L7-dedicated`; a secure host
//! gets 443 with the certificate on the VS and an 80 -> 443 redirect.
//!
//! Routing follows Kubernetes path semantics ([`path_match`], [`path_criteria`]): Exact `/foo` is `EQUALS /foo`;
//! Prefix `/foo` (or `/foo/`) is `EQUALS /foo` or `BEGINS_WITH /foo/`, so `/foobar` is not matched; Prefix `/` has
//! no path match; ImplementationSpecific is Prefix. Rules are ordered by index so that the longest path wins and
//! Exact comes before Prefix for the same path; exact hosts come before wildcard hosts.
//!
//! Decisions where AKO's references are silent or AKO behaves differently:
//! - Routing on a shared parent is one HTTPPolicySet per host (AKO uses a DataScript and a priority-labelled
//!   PoolGroup), listed in the parent's `http_policies` in host order (exact hosts first, then wildcards, longest
//!   first). Avi evaluates the sets by `index` and the first matching rule decides, as one set in that order would;
//!   per host, an edit of its paths rewrites only its own small set, never a set holding every host of the shard.
//! - Several Ingresses on one host merge into one rule set. Under `fqdnReusePolicy: Strict` only the namespace of
//!   the oldest claim keeps the host; Ingresses of other namespaces get a Warning naming the owner. A path (same
//!   path and type) routed by two Ingresses goes to the oldest; the newer gets a Warning naming it (the webhook
//!   denies such a newer Ingress; this is the reconciler's answer to one that slipped past).
//! - A host is secure when the oldest Ingress giving it a TLS Secret gives a usable one (certificate and key parse
//!   and match). Newer Ingresses naming another Secret for the host get a Warning. A missing or bad Secret: the
//!   host is served over plain HTTP only, with a Warning saying why (AKO silently skips the SNI child).
//! - A `spec.tls` entry without `secretName` uses the default certificate when given, else a Warning.
//! - `ako.vmware.com/enable-tls: "true"` with the default certificate (Secret `router-certs-default`): the host
//!   keeps answering on port 80 and also answers on 443 (no redirect), its SNI child switching to the same pool
//!   groups as port 80. The certificate is one object, `<cluster>--router-certs-default`.
//! - Wildcard hosts: `vh_domain_name` keeps `*.example.com`; the host header match is `HDR_ENDS_WITH
//!   .example.com` (Avi has no one-label wildcard match, so `a.b.example.com` matches too); no DNS record.
//! - A backend Service that does not exist, a port it does not have, or a NodePort without a nodePort: the pool
//!   is created empty and the Ingress gets a Warning. Resource backends and `spec.defaultBackend` are not served.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use k8s_openapi::api::core::v1::ServicePort;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::{Map, Value, json};

use crate::config::{Config, FqdnReusePolicy};
use crate::hosts;
use crate::index::ObjKey;
use crate::intent::{self, Backend, BackendPort, IngressIntent, Problem, Severity};
use crate::l4::{
    NodeInfo, Placement, ServiceInput, avi_name, ip_json, marker, members, vip_request,
};
use crate::ownership::{self, Order};
use crate::plan::{Desired, Kind, name_ref};

/// The Ingress annotation asking for HTTPS with the default certificate.
pub const ENABLE_TLS_ANNOTATION: &str = "ako.vmware.com/enable-tls";
/// The Secret (in ako's namespace) holding the default certificate.
pub const DEFAULT_CERT_SECRET: &str = "router-certs-default";
/// `http_policies[].index` of ako's policy set on a virtual service (AKO starts at 11).
pub const HTTP_POLICY_INDEX: u32 = 11;
/// AKO's suffix of dedicated virtual services and their pools.
pub const DEDICATED_SUFFIX: &str = "-L7-dedicated";

/// `L7Settings.shardVSSize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSize {
    Large,
    Medium,
    Small,
    Dedicated,
}

impl ShardSize {
    /// AKO's values, case-insensitive.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "LARGE" => Some(Self::Large),
            "MEDIUM" => Some(Self::Medium),
            "SMALL" => Some(Self::Small),
            "DEDICATED" => Some(Self::Dedicated),
            _ => None,
        }
    }

    /// Number of shared parents (a power of two); `None` in dedicated mode.
    pub fn shards(self) -> Option<u32> {
        match self {
            Self::Large => Some(8),
            Self::Medium => Some(4),
            Self::Small => Some(1),
            Self::Dedicated => None,
        }
    }
}

/// A TLS certificate (chain) and its private key, PEM, with what is wrong with them if anything: the check
/// (X.509 parses, the key parses and belongs to the certificate) is crypto, done where the Secret is read
/// (`ako_certs::tls_pair`), never here.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsPair {
    pub cert_pem: String,
    pub key_pem: String,
    /// Why the pair is not usable; `None`: usable.
    pub problem: Option<String>,
}

impl std::fmt::Debug for TlsPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPair")
            .field("cert_len", &self.cert_pem.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Everything the translation reads.
#[derive(Debug, Clone, Copy)]
pub struct L7Input<'a> {
    /// Ingresses already known to be of ako's class.
    pub ingresses: &'a [&'a Ingress],
    /// The backend Services with their endpoints (a Service absent here does not exist).
    pub services: &'a [ServiceInput<'a>],
    /// Nodes, for NodePort member mode.
    pub nodes: &'a [NodeInfo],
    /// The referenced TLS Secrets: absent = not found; `None` = found without `tls.crt`/`tls.key`.
    pub secrets: &'a BTreeMap<ObjKey, Option<TlsPair>>,
    /// `router-certs-default` in ako's namespace, if present.
    pub default_cert: Option<&'a TlsPair>,
    /// Translate only the hosts of this part (`None`: every host). Problems that are not about a host (the
    /// Ingress's own) are reported whatever the part.
    pub part: Option<&'a Part>,
}

/// An independently planned piece of the L7 configuration: a shared parent with every host hashed to it, or
/// (dedicated mode) one host. Every object a host produces belongs to the host's part, and every Ingress
/// claiming a host is needed to plan it, so a change re-plans only the parts of the hosts it touches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// Shard `index` of `of` shared parents.
    Shard {
        index: u32,
        of: u32,
    },
    Host(String),
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Shard { index, .. } => write!(f, "Shared-L7-{index}"),
            Part::Host(h) => write!(f, "{h}{DEDICATED_SUFFIX}"),
        }
    }
}

/// The part a host belongs to.
pub fn part_of(host: &str, shard: ShardSize) -> Part {
    match shard.shards() {
        Some(of) => Part::Shard {
            index: shard_of(host, of),
            of,
        },
        None => Part::Host(host.to_string()),
    }
}

/// How one host of an Ingress is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOutcome {
    pub host: String,
    /// The virtual service carrying the host: SNI child, shared parent or dedicated VS.
    pub vs_name: String,
    /// The VsVip whose address the host resolves to (the parent's for an SNI child).
    pub vip_name: String,
    /// Served over HTTPS.
    pub tls: bool,
}

/// What translation says about one Ingress.
#[derive(Debug, Clone, PartialEq)]
pub struct IngressOutcome {
    pub key: ObjKey,
    /// The hosts it is (at least partly) served on, sorted.
    pub hosts: Vec<HostOutcome>,
    pub problems: Vec<Problem>,
}

/// The desired objects of all Ingresses, and one outcome per Ingress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct L7Desired {
    pub objects: Vec<Desired>,
    pub outcomes: Vec<IngressOutcome>,
}

/// FNV-1a, 32 bits (Go's `hash/fnv` New32a, which AKO's `utils.Bkt` uses).
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// AKO's shard of a host: `fnv1a32(host) & (shards - 1)`.
pub fn shard_of(host: &str, shards: u32) -> u32 {
    fnv1a32(host.as_bytes()) & shards.saturating_sub(1)
}

/// `<cluster>--Shared-L7-<n>`: a shared parent, its VsVip and its HTTPPolicySet.
pub fn shared_vs_name(cluster: &str, shard: u32) -> String {
    avi_name(format!("{cluster}--Shared-L7-{shard}"))
}

/// `<cluster>--<host>-L7-dedicated`: the VS, VsVip and HTTPPolicySet of a host in dedicated mode.
pub fn dedicated_vs_name(cluster: &str, host: &str) -> String {
    avi_name(format!("{cluster}--{host}{DEDICATED_SUFFIX}"))
}

/// `<cluster>--Shared-L7-<n>--<host>`: a host's HTTPPolicySet on its shared parent.
pub fn parent_policy_name(cluster: &str, shard: u32, host: &str) -> String {
    avi_name(format!("{cluster}--Shared-L7-{shard}--{host}"))
}

/// `<cluster>--<host>`: the SNI child and the SSLKeyAndCertificate of a secure host.
pub fn sni_child_name(cluster: &str, host: &str) -> String {
    avi_name(format!("{cluster}--{host}"))
}

/// `<cluster>--<ns>-<host>`: the HTTPPolicySet of an SNI child.
pub fn sni_policy_name(cluster: &str, namespace: &str, host: &str) -> String {
    avi_name(format!("{cluster}--{namespace}-{host}"))
}

/// `<cluster>--<host>_<path>-<ns>-<ing>`: pool and pool group of an insecure route (`/` -> `_`).
pub fn insecure_pool_name(
    cluster: &str,
    host: &str,
    path: &str,
    namespace: &str,
    ingress: &str,
) -> String {
    let label = format!("{host}{path}").replace('/', "_");
    avi_name(format!("{cluster}--{label}-{namespace}-{ingress}"))
}

/// `<cluster>--<ns>-<host>_<path>-<ing>`: pool and pool group of a secure route; dedicated mode adds
/// `-L7-dedicated`.
pub fn secure_pool_name(
    cluster: &str,
    namespace: &str,
    host: &str,
    path: &str,
    ingress: &str,
    dedicated: bool,
) -> String {
    let path = path.replace('/', "_");
    let suffix = if dedicated { DEDICATED_SUFFIX } else { "" };
    avi_name(format!(
        "{cluster}--{namespace}-{host}{path}-{ingress}{suffix}"
    ))
}

/// `<cluster>--router-certs-default`: the SSLKeyAndCertificate of the default certificate.
pub fn default_cert_name(cluster: &str) -> String {
    avi_name(format!("{cluster}--{DEFAULT_CERT_SECRET}"))
}

/// A Kubernetes path match, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathMatch {
    /// `Exact`: the path as written.
    Exact(String),
    /// `Prefix` / `ImplementationSpecific`: without trailing slashes; `/` matches everything.
    Prefix(String),
}

impl PathMatch {
    fn path(&self) -> &str {
        match self {
            Self::Exact(p) | Self::Prefix(p) => p,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Self::Exact(_) => "Exact",
            Self::Prefix(_) => "Prefix",
        }
    }

    /// Rule order: longest path first, Exact before Prefix for the same path, then by path.
    fn order_key(&self) -> (Reverse<usize>, u8, &str) {
        let exact = u8::from(!matches!(self, Self::Exact(_)));
        (Reverse(self.path().len()), exact, self.path())
    }
}

/// Reads an Ingress path and pathType. ImplementationSpecific (and anything unknown) is Prefix; a Prefix path
/// loses its trailing slashes (`/foo/` = `/foo`), and an empty one is `/`.
pub fn path_match(path: &str, path_type: &str) -> PathMatch {
    if path_type == "Exact" {
        return PathMatch::Exact(if path.is_empty() {
            "/".into()
        } else {
            path.into()
        });
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        PathMatch::Prefix("/".into())
    } else {
        PathMatch::Prefix(trimmed.into())
    }
}

/// The Avi path match criteria expressing a [`PathMatch`], one per policy rule (Avi has no OR within a match):
/// `None` means no path match (everything). Paths are case-sensitive, as in Kubernetes.
pub fn path_criteria(m: &PathMatch) -> Vec<Option<Value>> {
    let crit = |c: &str, s: &str| {
        Some(json!({"match_criteria": c, "match_case": "SENSITIVE", "match_str": [s]}))
    };
    match m {
        PathMatch::Exact(p) => vec![crit("EQUALS", p)],
        PathMatch::Prefix(p) if p == "/" => vec![None],
        PathMatch::Prefix(p) => vec![crit("EQUALS", p), crit("BEGINS_WITH", &format!("{p}/"))],
    }
}

// ---------------------------------------------------------------------------------------------------------------

struct Claimant {
    key: ObjKey,
    created: Option<i64>,
    intent: IngressIntent,
    enable_tls: bool,
    /// Position in the input.
    pos: usize,
}

impl Claimant {
    fn order(&self) -> Order<'_> {
        Order::new(self.created, &self.key.namespace, &self.key.name)
    }
}

/// One accepted route of a host.
#[derive(Debug, Clone)]
struct RoutePlan {
    claimant: usize,
    m: PathMatch,
    raw_path: String,
    backend: Backend,
    field: String,
}

#[derive(Debug, Clone)]
enum CertSource {
    Secret(ObjKey, TlsPair),
    Default,
}

struct HostPlan {
    host: String,
    owner_ns: String,
    /// Accepted claimants, oldest first.
    claimants: Vec<usize>,
    routes: Vec<RoutePlan>,
    cert: Option<CertSource>,
    /// HTTP is redirected to HTTPS (a `spec.tls` certificate); false for the default certificate of
    /// `enable-tls`, which adds HTTPS next to HTTP.
    redirect: bool,
}

/// A route with the pool group it switches to.
struct Routed {
    m: PathMatch,
    pool_group: String,
}

struct Ctx<'a> {
    cfg: &'a Config,
    place: &'a Placement,
    cluster: &'a str,
    owner: String,
    tenant_ref: String,
    cloud_ref: String,
    services: HashMap<ObjKey, ServiceInput<'a>>,
    nodes: &'a [NodeInfo],
    names: HashSet<(Kind, String)>,
    objects: Vec<Desired>,
}

fn markers_list(key: &str, values: &BTreeSet<String>) -> Value {
    json!({"key": key, "values": values.iter().collect::<Vec<_>>()})
}

fn host_match(host: &str) -> Value {
    match host.strip_prefix('*') {
        Some(suffix) => {
            json!({"match_criteria": "HDR_ENDS_WITH", "match_case": "INSENSITIVE", "value": [suffix]})
        }
        None => {
            json!({"match_criteria": "HDR_EQUALS", "match_case": "INSENSITIVE", "value": [host]})
        }
    }
}

/// Host order in a policy: exact hosts first (by name), then wildcards, longest suffix first.
fn host_order(host: &str) -> (bool, Reverse<usize>, &str) {
    (host.starts_with('*'), Reverse(host.len()), host)
}

fn resolve_port<'s>(svc: &'s ServiceInput<'_>, port: &BackendPort) -> Option<&'s ServicePort> {
    let ports = svc.service.spec.as_ref()?.ports.as_deref()?;
    match port {
        BackendPort::Number(n) => ports.iter().find(|p| p.port == *n),
        BackendPort::Name(name) => ports.iter().find(|p| p.name.as_deref() == Some(name)),
        BackendPort::Unset => match ports {
            [only] => Some(only),
            _ => None,
        },
    }
}

fn port_text(port: &BackendPort) -> String {
    match port {
        BackendPort::Number(n) => n.to_string(),
        BackendPort::Name(n) => format!("{n:?}"),
        BackendPort::Unset => "(unset)".into(),
    }
}

impl<'a> Ctx<'a> {
    fn new(
        cfg: &'a Config,
        place: &'a Placement,
        services: &'a [ServiceInput<'a>],
        nodes: &'a [NodeInfo],
    ) -> Self {
        Ctx {
            cfg,
            place,
            cluster: &place.cluster_name,
            owner: place.owner(),
            tenant_ref: name_ref("tenant", &place.tenant),
            cloud_ref: name_ref("cloud", &place.cloud),
            services: services
                .iter()
                .map(|s| (ObjKey::of(&s.service.metadata), *s))
                .collect(),
            nodes,
            names: HashSet::new(),
            objects: Vec::new(),
        }
    }
}

impl Ctx<'_> {
    fn push(&mut self, kind: Kind, name: &str, body: Value) {
        if !self.names.insert((kind, name.to_string())) {
            return;
        }
        let body = match body {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        self.objects.push(Desired {
            kind,
            name: name.to_string(),
            body,
        });
    }

    /// A pool name not yet used: an Exact route whose AKO name collides with a Prefix route of the same path
    /// (AKO's names carry no path type) gets `-exact`.
    fn free_pool_name(&self, base: String, m: &PathMatch) -> String {
        if !self.names.contains(&(Kind::Pool, base.clone())) {
            return base;
        }
        let tagged = avi_name(format!("{base}-{}", m.type_name().to_ascii_lowercase()));
        if !self.names.contains(&(Kind::Pool, tagged.clone())) {
            return tagged;
        }
        (2..)
            .map(|i| avi_name(format!("{base}-{i}")))
            .find(|n| !self.names.contains(&(Kind::Pool, n.clone())))
            .unwrap_or(base)
    }

    fn servers(
        &self,
        key: &ObjKey,
        route: &RoutePlan,
        host: &str,
        problems: &mut Vec<Problem>,
    ) -> Vec<Value> {
        let b = &route.backend;
        let svc_key = ObjKey::new(&key.namespace, &b.service);
        let Some(svc) = self.services.get(&svc_key) else {
            problems.push(Problem::warn(
                format!("{}.service.name", route.field),
                format!(
                    "backend Service {:?} of host {host} path {} not found in {:?}; the pool has no servers until it exists",
                    b.service, route.raw_path, key.namespace
                ),
            ));
            return Vec::new();
        };
        let Some(port) = resolve_port(svc, &b.port) else {
            problems.push(Problem::warn(
                format!("{}.service.port", route.field),
                format!(
                    "backend Service {:?} has no port {} (host {host} path {}); name the port, or give its number",
                    b.service,
                    port_text(&b.port),
                    route.raw_path
                ),
            ));
            return Vec::new();
        };
        match members(port, svc.endpoints, self.nodes, &self.place.member_mode) {
            Ok(list) => list
                .into_iter()
                .map(|(ip, port)| json!({"ip": ip_json(ip), "port": port, "enabled": true}))
                .collect(),
            Err(reason) => {
                problems.push(Problem::warn(
                    format!("{}.service", route.field),
                    format!("backend Service {:?}: {reason}", b.service),
                ));
                Vec::new()
            }
        }
    }

    /// The pools and pool groups of a host's routes (in claim order, so the oldest gets AKO's plain name),
    /// returned sorted in rule order.
    fn route_objects(
        &mut self,
        hp: &HostPlan,
        claimants: &[Claimant],
        outcomes: &mut [IngressOutcome],
        name_of: &dyn Fn(&Claimant, &RoutePlan) -> String,
    ) -> Vec<Routed> {
        let mut out = Vec::new();
        for route in &hp.routes {
            let c = &claimants[route.claimant];
            let name = self.free_pool_name(name_of(c, route), &route.m);
            let servers = self.servers(
                &c.key,
                route,
                &hp.host,
                &mut outcomes[route.claimant].problems,
            );
            let markers = json!([
                marker("clustername", self.cluster),
                marker("Namespace", &c.key.namespace),
                marker("IngressName", &c.key.name),
                marker("Host", &hp.host),
                marker("Path", &route.raw_path),
                marker("ServiceName", &route.backend.service),
            ]);
            let pool = json!({
                "name": name,
                "created_by": self.owner,
                "tenant_ref": self.tenant_ref,
                "cloud_ref": self.cloud_ref,
                "servers": servers,
                "markers": markers,
            });
            self.push(Kind::Pool, &name, pool);
            let pg = json!({
                "name": name,
                "created_by": self.owner,
                "tenant_ref": self.tenant_ref,
                "cloud_ref": self.cloud_ref,
                "members": [{"pool_ref": name_ref("pool", &name), "ratio": 100}],
                "markers": markers,
            });
            self.push(Kind::PoolGroup, &name, pg);
            out.push(Routed {
                m: route.m.clone(),
                pool_group: name,
            });
        }
        out.sort_by(|a, b| a.m.order_key().cmp(&b.m.order_key()));
        out
    }

    fn vsvip(&mut self, name: &str, hosts: &BTreeSet<String>) {
        let fqdns: Vec<Value> = hosts
            .iter()
            .filter(|h| !h.starts_with('*'))
            .filter(|h| hosts::delegated_domain(h, &self.cfg.dns_domains).is_some())
            .map(|f| json!({"fqdn": f}))
            .collect();
        let vip = vip_request(None, &self.place.vip_network);
        // No created_by: a VsVip has none in the controller's schema; the clustername marker makes it ako's.
        let mut body = json!({
            "name": name,
            "tenant_ref": self.tenant_ref,
            "cloud_ref": self.cloud_ref,
            "vrf_context_ref": name_ref("vrfcontext", &self.place.vrf),
            "east_west_placement": false,
            "vip": [vip],
            "markers": [marker("clustername", self.cluster)],
        });
        // Moved in, not serialized again by json! (a shared parent has thousands).
        if let Some(m) = body.as_object_mut() {
            m.insert("dns_info".into(), Value::Array(fqdns));
        }
        self.push(Kind::VsVip, name, body);
    }

    fn policy_set(&mut self, name: &str, rules: Vec<Value>, hosts: &BTreeSet<String>) {
        let mut body = json!({
            "name": name,
            "created_by": self.owner,
            "tenant_ref": self.tenant_ref,
            "is_internal_policy": false,
            "markers": [marker("clustername", self.cluster), markers_list("Host", hosts)],
        });
        // The rules are moved in, not serialized again by json! (a shared parent has thousands).
        if let Some(m) = body.as_object_mut() {
            let mut policy = Map::new();
            policy.insert("rules".into(), Value::Array(rules));
            m.insert("http_request_policy".into(), Value::Object(policy));
            if let Some(markers) = m.remove("markers") {
                m.insert("markers".into(), markers);
            }
        }
        self.push(Kind::HttpPolicySet, name, body);
    }

    fn certificate(&mut self, name: &str, pair: &TlsPair, markers: Value) {
        let body = json!({
            "name": name,
            "created_by": self.owner,
            "tenant_ref": self.tenant_ref,
            "type": "SSL_CERTIFICATE_TYPE_VIRTUALSERVICE",
            "format": "SSL_PEM",
            "certificate": {"certificate": pair.cert_pem},
            "key": pair.key_pem,
            "markers": markers,
        });
        self.push(Kind::SslKeyAndCertificate, name, body);
    }

    /// The SSLKeyAndCertificate of a secure host; returns its name.
    fn host_certificate(&mut self, hp: &HostPlan, default: Option<&TlsPair>) -> Option<String> {
        match hp.cert.as_ref()? {
            CertSource::Secret(key, pair) => {
                let name = sni_child_name(self.cluster, &hp.host);
                let markers = json!([
                    marker("clustername", self.cluster),
                    marker("Namespace", &key.namespace),
                    marker("Host", &hp.host),
                ]);
                self.certificate(&name, pair, markers);
                Some(name)
            }
            CertSource::Default => {
                let pair = default?;
                let name = default_cert_name(self.cluster);
                self.certificate(&name, pair, json!([marker("clustername", self.cluster)]));
                Some(name)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn virtual_service(
        &mut self,
        kind: Kind,
        name: &str,
        vs_type: &str,
        services: Value,
        policies: &[&str],
        cert: Option<&str>,
        app_profile: &str,
        extra: Map<String, Value>,
        markers: Value,
    ) {
        let mut body = json!({
            "name": name,
            "created_by": self.owner,
            "tenant_ref": self.tenant_ref,
            "cloud_ref": self.cloud_ref,
            "se_group_ref": name_ref("serviceenginegroup", &self.place.se_group),
            "vrf_context_ref": name_ref("vrfcontext", &self.place.vrf),
            "type": vs_type,
            "enabled": true,
            "traffic_enabled": true,
            "application_profile_ref": name_ref("applicationprofile", app_profile),
            "network_profile_ref": name_ref("networkprofile", "System-TCP-Proxy"),
            "markers": markers,
        });
        if let Some(m) = body.as_object_mut() {
            let policies: Vec<Value> = policies
                .iter()
                .zip(HTTP_POLICY_INDEX..)
                .map(|(p, index)| json!({"index": index, "http_policy_set_ref": name_ref("httppolicyset", p)}))
                .collect();
            m.insert("http_policies".into(), Value::Array(policies));
            if !services.is_null() {
                m.insert("services".into(), services);
            }
            if let Some(c) = cert {
                m.insert(
                    "ssl_key_and_certificate_refs".into(),
                    json!([name_ref("sslkeyandcertificate", c)]),
                );
            }
            m.extend(extra);
        }
        self.push(kind, name, body);
    }
}

fn switching_rules(host: &str, routed: &[Routed], rules: &mut Vec<Value>) {
    for r in routed {
        for path in path_criteria(&r.m) {
            let mut m = Map::new();
            m.insert("host_hdr".into(), host_match(host));
            if let Some(p) = path {
                m.insert("path".into(), p);
            }
            let index = rules.len();
            rules.push(json!({
                "name": format!("{host}-{index}"),
                "index": index,
                "enable": true,
                "match": Value::Object(m),
                "switching_action": {
                    "action": "HTTP_SWITCHING_SELECT_POOLGROUP",
                    "pool_group_ref": name_ref("poolgroup", &r.pool_group),
                },
            }));
        }
    }
}

fn redirect_rule(host: &str, rules: &mut Vec<Value>) {
    let index = rules.len();
    rules.push(json!({
        "name": format!("{host}-{index}"),
        "index": index,
        "enable": true,
        "match": {
            "host_hdr": host_match(host),
            "vs_port": {"match_criteria": "IS_IN", "ports": [80]},
        },
        "redirect_action": {
            "protocol": "HTTPS",
            "port": 443,
            "status_code": "HTTP_REDIRECT_STATUS_CODE_302",
            "keep_query": true,
        },
    }));
}

/// What one host produces: its own objects, its part in its shared parent, and what it means for the Ingresses
/// claiming it. The reconciler keeps these per host, so an edit re-translates only the hosts it touches and
/// re-assembles the parent from the others' fragments ([`assemble_parent`]).
#[derive(Debug, Clone, PartialEq)]
pub struct HostFragment {
    pub host: String,
    pub part: Part,
    /// Shared mode: its pools, pool groups, and SNI child with its policy set and certificate. Dedicated mode:
    /// every object of its virtual service.
    pub objects: Vec<Desired>,
    /// Shared mode: the name of its HTTPPolicySet on the parent (one of `objects`), which the parent lists.
    pub parent_policy: Option<String>,
    /// Per claiming Ingress: the host if it is served for it, and the problems about this host.
    pub outcomes: Vec<IngressOutcome>,
}

/// Per-host translation: a fragment for each host of the input's Ingresses (in `input.part`, and among `only`
/// when given) that at least one Ingress may use, and one outcome per Ingress with what is not about a host
/// (refused over the size limits, the problems of the Ingress itself).
pub fn translate_hosts(
    input: &L7Input<'_>,
    cfg: &Config,
    place: &Placement,
    shard: ShardSize,
    only: Option<&BTreeSet<String>>,
) -> (Vec<HostFragment>, Vec<IngressOutcome>) {
    // Outcomes of Ingresses refused before translation, by input position; the rest are parallel to `claimants`.
    let mut refused: Vec<(usize, IngressOutcome)> = Vec::new();
    let mut claimants: Vec<Claimant> = Vec::new();
    let mut c_outcomes: Vec<IngressOutcome> = Vec::new();
    for (pos, ing) in input.ingresses.iter().enumerate() {
        let key = ObjKey::of(&ing.metadata);
        let too_big = intent::check_ingress_limits(ing);
        if !too_big.is_empty() {
            refused.push((
                pos,
                IngressOutcome {
                    key,
                    hosts: Vec::new(),
                    problems: too_big,
                },
            ));
            continue;
        }
        let (intent, problems) = intent::translate_ingress(ing, cfg);
        let enable_tls = ing
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ENABLE_TLS_ANNOTATION))
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        claimants.push(Claimant {
            key: key.clone(),
            created: ownership::created(&ing.metadata),
            intent,
            enable_tls,
            pos,
        });
        c_outcomes.push(IngressOutcome {
            key,
            hosts: Vec::new(),
            problems,
        });
    }

    let mut checks = CertChecks {
        input,
        default: None,
        secrets: HashMap::new(),
    };
    let mut ctx = Ctx::new(cfg, place, input.services, input.nodes);
    // One scratch outcome per claimant, reused host after host: only a host's claimants are touched by it, and
    // what they got is taken out right after (so the cost is per claim, not per host and claimant).
    let mut scratch: Vec<IngressOutcome> = c_outcomes
        .iter()
        .map(|o| IngressOutcome {
            key: o.key.clone(),
            hosts: Vec::new(),
            problems: Vec::new(),
        })
        .collect();
    let mut fragments = Vec::new();
    for (host, cis) in index_hosts(&claimants, input, only) {
        let touched = cis.clone();
        let hp = plan_host(host, cis, &claimants, &mut scratch, cfg, &mut checks);
        let part = part_of(host, shard);
        let mut parent_policy = None;
        ctx.names.clear();
        if !hp.claimants.is_empty() {
            match &part {
                Part::Shard { index, .. } => {
                    let parent = shared_vs_name(ctx.cluster, *index);
                    let rules =
                        shared_host(&mut ctx, &hp, &claimants, &mut scratch, &parent, input);
                    if !rules.is_empty() {
                        let name = parent_policy_name(ctx.cluster, *index, host);
                        let one: BTreeSet<String> = [host.to_string()].into();
                        ctx.policy_set(&name, rules, &one);
                        parent_policy = Some(name);
                    }
                }
                Part::Host(_) => dedicated_host(&mut ctx, &hp, &claimants, &mut scratch, input),
            }
        }
        let outcomes = touched
            .iter()
            .filter_map(|&ci| {
                let o = &mut scratch[ci];
                (!o.hosts.is_empty() || !o.problems.is_empty()).then(|| IngressOutcome {
                    key: o.key.clone(),
                    hosts: std::mem::take(&mut o.hosts),
                    problems: std::mem::take(&mut o.problems),
                })
            })
            .collect();
        fragments.push(HostFragment {
            host: host.to_string(),
            part,
            objects: std::mem::take(&mut ctx.objects),
            parent_policy,
            outcomes,
        });
    }

    let mut outcomes: Vec<(usize, IngressOutcome)> = claimants
        .iter()
        .map(|c| c.pos)
        .zip(c_outcomes)
        .chain(refused)
        .collect();
    outcomes.sort_by_key(|(pos, _)| *pos);
    (fragments, outcomes.into_iter().map(|(_, o)| o).collect())
}

/// Translates the Ingresses of ako (those of `input.part`, or all). See the module documentation for the objects
/// and the decisions.
pub fn translate(
    input: &L7Input<'_>,
    cfg: &Config,
    place: &Placement,
    shard: ShardSize,
) -> L7Desired {
    let (fragments, mut outcomes) = translate_hosts(input, cfg, place, shard, None);
    let mut objects: Vec<Desired> = Vec::new();
    let mut seen: HashSet<(Kind, String)> = HashSet::new();
    let mut parts: BTreeMap<&Part, Vec<(&str, Option<&str>)>> = BTreeMap::new();
    for f in &fragments {
        if !f.objects.is_empty() {
            parts
                .entry(&f.part)
                .or_default()
                .push((&f.host, f.parent_policy.as_deref()));
        }
        for o in &f.objects {
            // The default certificate is one object, whichever hosts use it.
            if seen.insert((o.kind, o.name.clone())) {
                objects.push(o.clone());
            }
        }
    }
    for (part, frs) in parts {
        objects.extend(assemble_parent(cfg, place, part, &frs));
    }
    let index: HashMap<ObjKey, usize> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| (o.key.clone(), i))
        .collect();
    for f in &fragments {
        for o in &f.outcomes {
            if let Some(&i) = index.get(&o.key) {
                outcomes[i].hosts.extend(o.hosts.iter().cloned());
                outcomes[i].problems.extend(o.problems.iter().cloned());
            }
        }
    }
    for o in &mut outcomes {
        o.hosts.sort_by(|a, b| a.host.cmp(&b.host));
        o.hosts.dedup_by(|a, b| a.host == b.host);
    }
    L7Desired { objects, outcomes }
}

/// The claimants of each host to translate (in the input's part, and among `only` when given).
fn index_hosts<'c>(
    claimants: &'c [Claimant],
    input: &L7Input<'_>,
    only: Option<&BTreeSet<String>>,
) -> BTreeMap<&'c str, Vec<usize>> {
    let mut by_host: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (ci, c) in claimants.iter().enumerate() {
        for hr in &c.intent.hosts {
            if input.part.is_some_and(|p| !in_part(&hr.host, p))
                || only.is_some_and(|o| !o.contains(&hr.host))
            {
                continue;
            }
            let v = by_host.entry(hr.host.as_str()).or_default();
            if !v.contains(&ci) {
                v.push(ci);
            }
        }
    }
    by_host
}

/// Decides who serves a host, which routes and which certificate.
fn plan_host(
    host: &str,
    mut cis: Vec<usize>,
    claimants: &[Claimant],
    outcomes: &mut [IngressOutcome],
    cfg: &Config,
    checks: &mut CertChecks<'_>,
) -> HostPlan {
    {
        cis.sort_by(|a, b| claimants[*a].order().cmp(&claimants[*b].order()));
        let owner = cis[0];
        let owner_ns = claimants[owner].key.namespace.clone();
        let mut accepted = Vec::new();
        for ci in cis {
            let c = &claimants[ci];
            if cfg.fqdn_reuse_policy == FqdnReusePolicy::Strict && c.key.namespace != owner_ns {
                let field = c.intent.hosts.iter().find(|h| h.host == host).map_or_else(
                    || "spec.rules".to_string(),
                    |h| format!("spec.rules[{}].host", h.rule),
                );
                outcomes[ci].problems.push(Problem::warn(
                    &field,
                    format!(
                        "host {host:?} ({field}) belongs to namespace {owner_ns:?} (Ingress {}, the oldest claim); fqdnReusePolicy Strict lets only one namespace use a host, so this Ingress is not served on it",
                        claimants[owner].key
                    ),
                ));
                continue;
            }
            accepted.push(ci);
        }

        // Routes: oldest claim first; a path already routed goes to the older claim.
        let mut routes: Vec<RoutePlan> = Vec::new();
        let mut taken: HashMap<PathMatch, usize> = HashMap::new();
        for &ci in &accepted {
            let c = &claimants[ci];
            for hr in c.intent.hosts.iter().filter(|h| h.host == host) {
                for (j, r) in hr.routes.iter().enumerate() {
                    let field = format!("spec.rules[{}].http.paths[{j}]", hr.rule);
                    let Some(backend) = r.backend.clone() else {
                        outcomes[ci].problems.push(Problem::warn(
                            format!("{field}.backend"),
                            format!("{field}.backend is not a Service; ako routes only to Services, so path {} of host {host} is not served", r.path),
                        ));
                        continue;
                    };
                    let m = path_match(&r.path, &r.path_type);
                    if let Some(&holder) = taken.get(&m) {
                        let by = if holder == ci {
                            "an earlier rule of this Ingress".to_string()
                        } else {
                            format!("Ingress {}", claimants[holder].key)
                        };
                        outcomes[ci].problems.push(Problem::warn(
                            &field,
                            format!(
                                "host {host:?} path {:?} ({}) ({field}) is already routed by {by}; one path cannot go to two backends, so this one is not served",
                                r.path, m.type_name()
                            ),
                        ));
                        continue;
                    }
                    taken.insert(m.clone(), ci);
                    routes.push(RoutePlan {
                        claimant: ci,
                        m,
                        raw_path: r.path.clone(),
                        backend,
                        field,
                    });
                }
            }
        }

        let (cert, redirect) = choose_cert(host, &accepted, claimants, outcomes, checks);
        HostPlan {
            host: host.to_string(),
            owner_ns,
            claimants: accepted,
            routes,
            cert,
            redirect,
        }
    }
}

fn in_part(host: &str, part: &Part) -> bool {
    match part {
        Part::Shard { index, of } => shard_of(host, *of) == *index,
        Part::Host(h) => h == host,
    }
}

/// Certificate checks, each certificate parsed once per translation.
struct CertChecks<'a> {
    input: &'a L7Input<'a>,
    default: Option<Result<(), String>>,
    secrets: HashMap<ObjKey, Result<(), String>>,
}

impl CertChecks<'_> {
    /// Whether the default certificate is usable; the error completes "Secret router-certs-default ...".
    fn default_cert(&mut self) -> Result<(), String> {
        let input = self.input;
        self.default
            .get_or_insert_with(|| match input.default_cert {
                None => Err("does not exist".into()),
                Some(pair) => match &pair.problem {
                    Some(e) => Err(format!("is not usable: {e}")),
                    None => Ok(()),
                },
            })
            .clone()
    }

    fn secret(&mut self, key: &ObjKey, pair: &TlsPair) -> Result<(), String> {
        self.secrets
            .entry(key.clone())
            .or_insert_with(|| pair.problem.clone().map_or(Ok(()), Err))
            .clone()
    }
}

/// The certificate of a host: the oldest `spec.tls` entry naming it decides; without one, `enable-tls` and the
/// default certificate add HTTPS. Returns the source and whether HTTP redirects to HTTPS.
fn choose_cert(
    host: &str,
    accepted: &[usize],
    claimants: &[Claimant],
    outcomes: &mut [IngressOutcome],
    checks: &mut CertChecks<'_>,
) -> (Option<CertSource>, bool) {
    let mut chosen: Option<(usize, Option<String>)> = None;
    for &ci in accepted {
        let c = &claimants[ci];
        let Some((i, tls)) = c
            .intent
            .tls
            .iter()
            .enumerate()
            .find(|(_, t)| t.hosts.iter().any(|h| h == host))
        else {
            continue;
        };
        match &chosen {
            None => chosen = Some((ci, tls.secret.clone())),
            Some((first, secret)) if *secret != tls.secret && claimants[*first].key != c.key => {
                outcomes[ci].problems.push(Problem::warn(
                    format!("spec.tls[{i}]"),
                    format!(
                        "host {host:?} is served with the TLS Secret of Ingress {} (the oldest claim); spec.tls[{i}] of this Ingress is ignored for it",
                        claimants[*first].key
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    if let Some((ci, secret)) = chosen {
        let c = &claimants[ci];
        let field = c
            .intent
            .tls
            .iter()
            .position(|t| t.hosts.iter().any(|h| h == host))
            .map_or_else(|| "spec.tls".to_string(), |i| format!("spec.tls[{i}]"));
        let Some(secret) = secret else {
            return match checks.default_cert() {
                Ok(()) => (Some(CertSource::Default), true),
                Err(why) => {
                    outcomes[ci].problems.push(Problem::warn(
                        &field,
                        format!("{field} names no secretName and the default certificate (Secret {DEFAULT_CERT_SECRET}) {why}; host {host} is served over HTTP only"),
                    ));
                    (None, false)
                }
            };
        };
        let key = ObjKey::new(&c.key.namespace, &secret);
        let reason = match checks.input.secrets.get(&key) {
            None => format!(
                "TLS Secret {secret:?} ({field}) not found in {:?}",
                c.key.namespace
            ),
            Some(None) => format!("TLS Secret {key} ({field}) has no tls.crt and tls.key"),
            Some(Some(pair)) => match checks.secret(&key, pair) {
                Ok(()) => return (Some(CertSource::Secret(key, pair.clone())), true),
                Err(e) => format!("TLS Secret {key} ({field}) is not usable: {e}"),
            },
        };
        outcomes[ci].problems.push(Problem::warn(
            &field,
            format!("{reason}; host {host} is served over HTTP only until it is fixed"),
        ));
        return (None, false);
    }
    let asking: Vec<usize> = accepted
        .iter()
        .copied()
        .filter(|ci| claimants[*ci].enable_tls)
        .collect();
    if asking.is_empty() {
        return (None, false);
    }
    match checks.default_cert() {
        Ok(()) => (Some(CertSource::Default), false),
        Err(why) => {
            for ci in asking {
                outcomes[ci].problems.push(Problem::warn(
                    format!("metadata.annotations[{ENABLE_TLS_ANNOTATION}]"),
                    format!("{ENABLE_TLS_ANNOTATION} asks for HTTPS with the default certificate, but Secret {DEFAULT_CERT_SECRET} {why}; host {host} is served over HTTP only"),
                ));
            }
            (None, false)
        }
    }
}

/// Marks the host as served for the claimants with at least one route on it (one whose every path went to an
/// older claim is not served there) or whose certificate the host uses.
fn record(outcomes: &mut [IngressOutcome], hp: &HostPlan, vs: &str, vip: &str) {
    for &ci in &hp.claimants {
        let routed = hp.routes.iter().any(|r| r.claimant == ci);
        let cert_owner = matches!(&hp.cert, Some(CertSource::Secret(k, _)) if *k.namespace == outcomes[ci].key.namespace)
            && hp.claimants.first() == Some(&ci);
        if !routed && !cert_owner {
            continue;
        }
        outcomes[ci].hosts.push(HostOutcome {
            host: hp.host.clone(),
            vs_name: vs.to_string(),
            vip_name: vip.to_string(),
            tls: hp.cert.is_some(),
        });
    }
}

fn ingress_markers(cluster: &str, hp: &HostPlan, claimants: &[Claimant]) -> Value {
    let namespaces: BTreeSet<String> = hp
        .claimants
        .iter()
        .map(|ci| claimants[*ci].key.namespace.clone())
        .collect();
    let names: BTreeSet<String> = hp
        .claimants
        .iter()
        .map(|ci| claimants[*ci].key.name.clone())
        .collect();
    json!([
        marker("clustername", cluster),
        marker("Host", &hp.host),
        markers_list("Namespace", &namespaces),
        markers_list("IngressName", &names),
    ])
}

/// The objects of one host in shared mode (pushed to `ctx`); returns its rules on the parent (the caller puts
/// them in the host's own policy set there).
fn shared_host(
    ctx: &mut Ctx<'_>,
    hp: &HostPlan,
    claimants: &[Claimant],
    outcomes: &mut [IngressOutcome],
    parent: &str,
    input: &L7Input<'_>,
) -> Vec<Value> {
    let cluster = ctx.cluster;
    let mut rules = Vec::new();
    let insecure_name = |c: &Claimant, r: &RoutePlan| {
        insecure_pool_name(
            cluster,
            &hp.host,
            &r.raw_path,
            &c.key.namespace,
            &c.key.name,
        )
    };
    let secure_name = |c: &Claimant, r: &RoutePlan| {
        secure_pool_name(
            cluster,
            &c.key.namespace,
            &hp.host,
            &r.raw_path,
            &c.key.name,
            false,
        )
    };
    let Some(cert) = ctx.host_certificate(hp, input.default_cert) else {
        let routed = ctx.route_objects(hp, claimants, outcomes, &insecure_name);
        switching_rules(&hp.host, &routed, &mut rules);
        record(outcomes, hp, parent, parent);
        return rules;
    };
    let routed = if hp.redirect {
        redirect_rule(&hp.host, &mut rules);
        ctx.route_objects(hp, claimants, outcomes, &secure_name)
    } else {
        // HTTPS next to HTTP: both ports switch to the same pool groups.
        let routed = ctx.route_objects(hp, claimants, outcomes, &insecure_name);
        switching_rules(&hp.host, &routed, &mut rules);
        routed
    };
    let child = sni_child_name(cluster, &hp.host);
    let policy = sni_policy_name(cluster, &hp.owner_ns, &hp.host);
    let mut child_rules = Vec::new();
    switching_rules(&hp.host, &routed, &mut child_rules);
    let one: BTreeSet<String> = [hp.host.clone()].into();
    ctx.policy_set(&policy, child_rules, &one);
    let mut extra = Map::new();
    extra.insert(
        "vh_parent_vs_ref".into(),
        json!(name_ref("virtualservice", parent)),
    );
    extra.insert("vh_domain_name".into(), json!([hp.host]));
    ctx.virtual_service(
        Kind::VirtualServiceChild,
        &child,
        "VS_TYPE_VH_CHILD",
        Value::Null,
        &[&policy],
        Some(&cert),
        "System-Secure-HTTP",
        extra,
        ingress_markers(cluster, hp, claimants),
    );
    record(outcomes, hp, &child, parent);
    rules
}

/// Every object of one host in dedicated mode (pushed to `ctx`).
fn dedicated_host(
    ctx: &mut Ctx<'_>,
    hp: &HostPlan,
    claimants: &[Claimant],
    outcomes: &mut [IngressOutcome],
    input: &L7Input<'_>,
) {
    let cluster = ctx.cluster;
    let name = dedicated_vs_name(cluster, &hp.host);
    let pool_name = |c: &Claimant, r: &RoutePlan| {
        secure_pool_name(
            cluster,
            &c.key.namespace,
            &hp.host,
            &r.raw_path,
            &c.key.name,
            true,
        )
    };
    let cert = ctx.host_certificate(hp, input.default_cert);
    let routed = ctx.route_objects(hp, claimants, outcomes, &pool_name);
    let mut rules = Vec::new();
    if cert.is_some() && hp.redirect {
        redirect_rule(&hp.host, &mut rules);
    }
    switching_rules(&hp.host, &routed, &mut rules);
    let one: BTreeSet<String> = [hp.host.clone()].into();
    ctx.vsvip(&name, &one);
    ctx.policy_set(&name, rules, &one);
    let services = if cert.is_some() {
        json!([{"port": 80, "enable_ssl": false}, {"port": 443, "enable_ssl": true}])
    } else {
        json!([{"port": 80, "enable_ssl": false}])
    };
    let mut extra = Map::new();
    extra.insert("vsvip_ref".into(), json!(name_ref("vsvip", &name)));
    ctx.virtual_service(
        Kind::VirtualService,
        &name,
        "VS_TYPE_NORMAL",
        services,
        &[&name],
        cert.as_deref(),
        "System-HTTP",
        extra,
        ingress_markers(cluster, hp, claimants),
    );
    record(outcomes, hp, &name, &name);
}

/// The shared parent of a part (VsVip and VirtualService, listing its hosts' policy sets in host order) from the
/// hosts it serves, each with its policy set on the parent if it has one; nothing in dedicated mode (a dedicated
/// host's fragment holds its virtual service) or when no host is left.
pub fn assemble_parent(
    cfg: &Config,
    place: &Placement,
    part: &Part,
    serving: &[(&str, Option<&str>)],
) -> Vec<Desired> {
    let Part::Shard { index, .. } = part else {
        return Vec::new();
    };
    if serving.is_empty() {
        return Vec::new();
    }
    let mut ctx = Ctx::new(cfg, place, &[], &[]);
    let cluster = ctx.cluster;
    let parent = shared_vs_name(cluster, *index);
    let mut sorted: Vec<&(&str, Option<&str>)> = serving.iter().collect();
    sorted.sort_by(|a, b| host_order(a.0).cmp(&host_order(b.0)));
    let policies: Vec<&str> = sorted.iter().filter_map(|(_, p)| *p).collect();
    let hosts: BTreeSet<String> = sorted.iter().map(|(h, _)| (*h).to_string()).collect();
    ctx.vsvip(&parent, &hosts);
    let mut extra = Map::new();
    extra.insert("vsvip_ref".into(), json!(name_ref("vsvip", &parent)));
    ctx.virtual_service(
        Kind::VirtualService,
        &parent,
        "VS_TYPE_VH_PARENT",
        json!([{"port": 80, "enable_ssl": false}, {"port": 443, "enable_ssl": true}]),
        &policies,
        None,
        "System-HTTP",
        extra,
        json!([marker("clustername", cluster)]),
    );
    ctx.objects
}

/// Whether any problem of an outcome is a [`Severity::Deny`] (the webhook would have refused the Ingress).
pub fn has_denial(outcome: &IngressOutcome) -> bool {
    outcome
        .problems
        .iter()
        .any(|p| p.severity == Severity::Deny)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l4::{EndpointAddress, EndpointGroup, MemberMode};
    use k8s_openapi::api::core::v1::Service;

    const C: &str = "veba-of";

    fn cfg() -> Config {
        Config {
            cluster_name: C.into(),
            dns_domains: vec!["avi.jarvis.lab".into()],
            ..Config::default()
        }
    }

    fn place(mode: MemberMode) -> Placement {
        Placement {
            cluster_name: C.into(),
            tenant: "admin".into(),
            cloud: "Default-Cloud".into(),
            se_group: "vmug-se-group".into(),
            vrf: "global".into(),
            vip_network: Some(("dpg-sedatapath-18".into(), "10.10.18.0/26".parse().ok())),
            member_mode: mode,
        }
    }

    fn ing(yaml: &str) -> Ingress {
        serde_yaml_ng::from_str(yaml).expect("ingress yaml")
    }

    fn svc(yaml: &str) -> Service {
        serde_yaml_ng::from_str(yaml).expect("service yaml")
    }

    fn web_endpoints() -> Vec<EndpointGroup> {
        vec![EndpointGroup {
            ports: vec![(Some("http".into()), 8080, "TCP".into())],
            addresses: vec![EndpointAddress {
                ip: "10.244.0.5".parse().expect("ip"),
                ready: true,
                terminating: false,
            }],
        }]
    }

    fn pair() -> TlsPair {
        let ca = ako_certs::generate_ca("shop.avi.jarvis.lab", 30).expect("cert");
        tls(ca.cert_pem, ca.key_pem)
    }

    /// A pair as the Secret reader makes it: checked by ako-certs.
    fn tls(cert_pem: impl Into<String>, key_pem: impl Into<String>) -> TlsPair {
        let (cert_pem, key_pem) = (cert_pem.into(), key_pem.into());
        TlsPair {
            problem: ako_certs::check_pair(&cert_pem, &key_pem).err(),
            cert_pem,
            key_pem,
        }
    }

    /// A world: Ingresses (YAML), the Services `web` and `api` in every namespace used, Secrets.
    struct World {
        ingresses: Vec<Ingress>,
        services: Vec<Service>,
        endpoints: Vec<EndpointGroup>,
        secrets: BTreeMap<ObjKey, Option<TlsPair>>,
        default_cert: Option<TlsPair>,
    }

    impl World {
        fn new(ingresses: &[&str]) -> Self {
            let ingresses: Vec<Ingress> = ingresses.iter().map(|y| ing(y)).collect();
            let namespaces: BTreeSet<String> = ingresses
                .iter()
                .filter_map(|i| i.metadata.namespace.clone())
                .collect();
            let services = namespaces
                .iter()
                .flat_map(|ns| {
                    ["web", "api"].map(|n| {
                        svc(&format!(
                            "metadata: {{name: {n}, namespace: {ns}}}\nspec: {{ports: [{{name: http, port: 80, targetPort: http, nodePort: 30080}}]}}"
                        ))
                    })
                })
                .collect();
            Self {
                ingresses,
                services,
                endpoints: web_endpoints(),
                secrets: BTreeMap::new(),
                default_cert: None,
            }
        }

        fn run(&self, shard: ShardSize, cfg: &Config) -> L7Desired {
            self.run_mode(shard, cfg, MemberMode::ClusterIp)
        }

        fn run_mode(&self, shard: ShardSize, cfg: &Config, mode: MemberMode) -> L7Desired {
            self.run_part(shard, cfg, mode, None)
        }

        /// Translates the world, or only one part of it.
        fn run_part(
            &self,
            shard: ShardSize,
            cfg: &Config,
            mode: MemberMode,
            part: Option<&Part>,
        ) -> L7Desired {
            let refs: Vec<&Ingress> = self.ingresses.iter().collect();
            let inputs: Vec<ServiceInput<'_>> = self
                .services
                .iter()
                .map(|s| ServiceInput {
                    service: s,
                    endpoints: &self.endpoints,
                })
                .collect();
            let nodes = [NodeInfo {
                name: "n1".into(),
                internal_ip: "127.0.0.2".parse().ok(),
                labels: BTreeMap::new(),
            }];
            let input = L7Input {
                ingresses: &refs,
                services: &inputs,
                nodes: &nodes,
                secrets: &self.secrets,
                default_cert: self.default_cert.as_ref(),
                part,
            };
            translate(&input, cfg, &place(mode), shard)
        }

        /// Translates each part on its own (as the reconciler does) and merges the results.
        fn run_by_part(&self, shard: ShardSize, cfg: &Config) -> L7Desired {
            let whole = self.run(shard, cfg);
            let parts: BTreeSet<Part> = whole
                .outcomes
                .iter()
                .flat_map(|o| o.hosts.iter().map(|h| part_of(&h.host, shard)))
                .collect();
            let mut merged = L7Desired::default();
            for part in &parts {
                let d = self.run_part(shard, cfg, MemberMode::ClusterIp, Some(part));
                for o in d.objects {
                    if !merged
                        .objects
                        .iter()
                        .any(|m| m.kind == o.kind && m.name == o.name)
                    {
                        merged.objects.push(o);
                    }
                }
                merged.outcomes.extend(d.outcomes);
            }
            merged
        }
    }

    fn find<'a>(d: &'a L7Desired, kind: Kind, name: &str) -> &'a Map<String, Value> {
        &d.objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no {kind:?} {name} in {:#?}",
                    d.objects
                        .iter()
                        .map(|o| (o.kind, &o.name))
                        .collect::<Vec<_>>()
                )
            })
            .body
    }

    fn names(d: &L7Desired, kind: Kind) -> Vec<&str> {
        d.objects
            .iter()
            .filter(|o| o.kind == kind)
            .map(|o| o.name.as_str())
            .collect()
    }

    fn outcome<'a>(d: &'a L7Desired, name: &str) -> &'a IngressOutcome {
        d.outcomes
            .iter()
            .find(|o| o.key.name == name)
            .expect("outcome")
    }

    /// The rules of a shared parent's policy sets as one set, in the order Avi evaluates them (sets by their
    /// `http_policies` index, rules by theirs), renumbered.
    fn parent_routes(d: &L7Desired, parent: &str) -> Map<String, Value> {
        let vs = find(d, Kind::VirtualService, parent);
        let mut sets: Vec<&Value> = vs["http_policies"]
            .as_array()
            .expect("policies")
            .iter()
            .collect();
        sets.sort_by_key(|p| p["index"].as_u64());
        let mut rules = Vec::new();
        for p in sets {
            let name = p["http_policy_set_ref"]
                .as_str()
                .expect("ref")
                .trim_start_matches("/api/httppolicyset/?name=");
            let set = find(d, Kind::HttpPolicySet, name);
            let mut own: Vec<Value> = set["http_request_policy"]["rules"]
                .as_array()
                .expect("rules")
                .clone();
            own.sort_by_key(|r| r["index"].as_u64());
            for mut r in own {
                r["index"] = json!(rules.len());
                rules.push(r);
            }
        }
        let mut out = Map::new();
        out.insert("http_request_policy".into(), json!({ "rules": rules }));
        out
    }

    /// What Avi does with a request (host, path, port) on a policy: rules by index, the first match acts.
    /// Returns the pool group chosen, `redirect`, or `none`.
    fn route(policy: &Map<String, Value>, host: &str, path: &str, port: u16) -> String {
        let mut rules: Vec<&Value> = policy["http_request_policy"]["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .collect();
        rules.sort_by_key(|r| r["index"].as_u64());
        let strs = |v: &Value| -> Vec<String> {
            v.as_array()
                .expect("list")
                .iter()
                .map(|s| s.as_str().expect("str").to_string())
                .collect()
        };
        for r in rules {
            let m = &r["match"];
            let h = &m["host_hdr"];
            let host_ok = match h["match_criteria"].as_str() {
                Some("HDR_EQUALS") => strs(&h["value"])
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(host)),
                Some("HDR_ENDS_WITH") => strs(&h["value"])
                    .iter()
                    .any(|v| host.to_ascii_lowercase().ends_with(&v.to_ascii_lowercase())),
                other => panic!("host criteria {other:?}"),
            };
            let p = &m["path"];
            let path_ok = p.is_null()
                || match p["match_criteria"].as_str() {
                    Some("EQUALS") => strs(&p["match_str"]).iter().any(|s| s == path),
                    Some("BEGINS_WITH") => strs(&p["match_str"])
                        .iter()
                        .any(|s| path.starts_with(s.as_str())),
                    other => panic!("path criteria {other:?}"),
                };
            let port_ok = m["vs_port"].is_null()
                || m["vs_port"]["ports"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p.as_u64() == Some(u64::from(port))));
            if host_ok && path_ok && port_ok {
                if !r["redirect_action"].is_null() {
                    return "redirect".into();
                }
                let pg = r["switching_action"]["pool_group_ref"]
                    .as_str()
                    .expect("pg ref");
                return pg.trim_start_matches("/api/poolgroup/?name=").to_string();
            }
        }
        "none".into()
    }

    #[test]
    fn fnv_and_shard_table() {
        // FNV-1a 32 reference vectors, then hosts (value computed from the algorithm: start 0x811c9dc5, per byte
        // xor then multiply by 0x01000193 mod 2^32); shard = value & (n - 1).
        let vectors = [
            ("", 0x811c_9dc5_u32),
            ("a", 0xe40c_292c),
            ("foobar", 0xbf9c_f968),
        ];
        for (s, want) in vectors {
            assert_eq!(fnv1a32(s.as_bytes()), want, "{s:?}");
        }
        let hosts = [
            ("hackazon.avi.jarvis.lab", 0xc71e_0eb8_u32, 0, 0),
            ("a.avi.jarvis.lab", 0x710a_e766, 6, 2),
            ("shop.avi.jarvis.lab", 0xddc3_a3f9, 1, 1),
        ];
        for (h, hash, large, medium) in hosts {
            assert_eq!(fnv1a32(h.as_bytes()), hash, "{h}");
            assert_eq!(shard_of(h, 8), large, "{h} LARGE");
            assert_eq!(shard_of(h, 4), medium, "{h} MEDIUM");
            assert_eq!(shard_of(h, 1), 0, "{h} SMALL");
        }
        assert_eq!(ShardSize::parse("large"), Some(ShardSize::Large));
        assert_eq!(
            ShardSize::parse("DEDICATED").and_then(ShardSize::shards),
            None
        );
        assert_eq!(
            ShardSize::parse("MEDIUM").and_then(ShardSize::shards),
            Some(4)
        );
        assert_eq!(ShardSize::parse("HUGE"), None);
    }

    #[test]
    fn path_type_table() {
        // (path, type, normalized, criteria, requests that match, requests that do not)
        type Case<'a> = (
            &'a str,
            &'a str,
            PathMatch,
            Value,
            Vec<&'a str>,
            Vec<&'a str>,
        );
        let eq = |s: &str| json!({"match_criteria": "EQUALS", "match_case": "SENSITIVE", "match_str": [s]});
        let bw = |s: &str| json!({"match_criteria": "BEGINS_WITH", "match_case": "SENSITIVE", "match_str": [s]});
        let cases: Vec<Case<'_>> = vec![
            (
                "/foo",
                "Exact",
                PathMatch::Exact("/foo".into()),
                json!([eq("/foo")]),
                vec!["/foo"],
                vec!["/foo/", "/foo/bar", "/foobar", "/Foo"],
            ),
            (
                "/foo/",
                "Exact",
                PathMatch::Exact("/foo/".into()),
                json!([eq("/foo/")]),
                vec!["/foo/"],
                vec!["/foo", "/foo/bar"],
            ),
            (
                "/foo",
                "Prefix",
                PathMatch::Prefix("/foo".into()),
                json!([eq("/foo"), bw("/foo/")]),
                vec!["/foo", "/foo/", "/foo/bar"],
                vec!["/foobar", "/fo", "/"],
            ),
            (
                "/foo/",
                "Prefix",
                PathMatch::Prefix("/foo".into()),
                json!([eq("/foo"), bw("/foo/")]),
                vec!["/foo", "/foo/bar"],
                vec!["/foobar"],
            ),
            (
                "/foo//",
                "ImplementationSpecific",
                PathMatch::Prefix("/foo".into()),
                json!([eq("/foo"), bw("/foo/")]),
                vec!["/foo"],
                vec!["/foobar"],
            ),
            (
                "/",
                "Prefix",
                PathMatch::Prefix("/".into()),
                json!([null]),
                vec!["/", "/anything/at/all"],
                vec![],
            ),
            (
                "",
                "ImplementationSpecific",
                PathMatch::Prefix("/".into()),
                json!([null]),
                vec!["/x"],
                vec![],
            ),
            (
                "/",
                "Exact",
                PathMatch::Exact("/".into()),
                json!([eq("/")]),
                vec!["/"],
                vec!["/x"],
            ),
        ];
        for (path, ty, want, criteria, yes, no) in cases {
            let m = path_match(path, ty);
            assert_eq!(m, want, "{path} {ty}");
            let got = path_criteria(&m);
            assert_eq!(json!(got), criteria, "{path} {ty}");
            let hit = |req: &str| {
                got.iter().any(|c| match c {
                    None => true,
                    Some(c) => {
                        let s = c["match_str"][0].as_str().unwrap_or_default();
                        match c["match_criteria"].as_str() {
                            Some("EQUALS") => req == s,
                            Some("BEGINS_WITH") => req.starts_with(s),
                            _ => false,
                        }
                    }
                })
            };
            for r in yes {
                assert!(hit(r), "{path} {ty} should match {r}");
            }
            for r in no {
                assert!(!hit(r), "{path} {ty} should not match {r}");
            }
        }
    }

    const HACKAZON: &str = r#"
metadata: {name: hackazon, namespace: vmug, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  rules:
  - host: hackazon.avi.jarvis.lab
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /foo, pathType: Prefix, backend: {service: {name: api, port: {name: http}}}}
      - {path: /foo, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /foo/bar/, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
"#;

    #[test]
    fn shared_insecure_host_is_routed_on_its_shards_parent() {
        let w = World::new(&[HACKAZON]);
        let d = w.run(ShardSize::Large, &cfg());
        let parent = "veba-of--Shared-L7-0";
        assert_eq!(names(&d, Kind::VirtualService), vec![parent]);
        assert!(names(&d, Kind::VirtualServiceChild).is_empty());
        let vs = find(&d, Kind::VirtualService, parent);
        assert_eq!(vs["type"], json!("VS_TYPE_VH_PARENT"));
        assert_eq!(
            vs["services"],
            json!([{"port": 80, "enable_ssl": false}, {"port": 443, "enable_ssl": true}])
        );
        assert_eq!(
            vs["application_profile_ref"],
            json!("/api/applicationprofile/?name=System-HTTP")
        );
        assert_eq!(
            vs["network_profile_ref"],
            json!("/api/networkprofile/?name=System-TCP-Proxy")
        );
        assert_eq!(
            vs["se_group_ref"],
            json!("/api/serviceenginegroup/?name=vmug-se-group")
        );
        assert_eq!(vs["vsvip_ref"], json!(format!("/api/vsvip/?name={parent}")));
        assert_eq!(
            vs["http_policies"],
            json!([{"index": 11, "http_policy_set_ref": format!("/api/httppolicyset/?name={parent}--hackazon.avi.jarvis.lab")}])
        );
        assert_eq!(vs["created_by"], json!("ako-veba-of"));
        let vip = find(&d, Kind::VsVip, parent);
        assert_eq!(
            vip["dns_info"],
            json!([{"fqdn": "hackazon.avi.jarvis.lab"}])
        );
        assert_eq!(
            vip["vip"][0]["ipam_network_subnet"]["network_ref"],
            json!("/api/network/?name=dpg-sedatapath-18")
        );
        // AKO's insecure pool names: <cluster>--<host>_<path>-<ns>-<ing>; Exact /foo collides with Prefix /foo.
        let pools = names(&d, Kind::Pool);
        assert_eq!(
            pools,
            vec![
                "veba-of--hackazon.avi.jarvis.lab_-vmug-hackazon",
                "veba-of--hackazon.avi.jarvis.lab_foo-vmug-hackazon",
                "veba-of--hackazon.avi.jarvis.lab_foo-vmug-hackazon-exact",
                "veba-of--hackazon.avi.jarvis.lab_foo_bar_-vmug-hackazon",
            ]
        );
        assert_eq!(names(&d, Kind::PoolGroup), pools);
        let pool = find(&d, Kind::Pool, pools[0]);
        assert_eq!(
            pool["servers"],
            json!([{"ip": {"addr": "10.244.0.5", "type": "V4"}, "port": 8080, "enabled": true}])
        );
        let markers = pool["markers"].as_array().expect("markers");
        for (k, v) in [
            ("clustername", C),
            ("Namespace", "vmug"),
            ("IngressName", "hackazon"),
            ("Host", "hackazon.avi.jarvis.lab"),
            ("Path", "/"),
            ("ServiceName", "web"),
        ] {
            assert!(markers.contains(&marker(k, v)), "{k}");
        }
        let pg = find(&d, Kind::PoolGroup, pools[1]);
        assert_eq!(
            pg["members"],
            json!([{"pool_ref": format!("/api/pool/?name={}", pools[1]), "ratio": 100}])
        );

        let policy = &parent_routes(&d, parent);
        let h = "hackazon.avi.jarvis.lab";
        let table = [
            ("/", pools[0]),
            ("/index.php", pools[0]),
            ("/foo", pools[2]),
            ("/foo/", pools[1]),
            ("/foobar", pools[0]),
            ("/foo/bar", pools[3]),
            ("/foo/bar/baz", pools[3]),
            ("/foo/barn", pools[1]),
        ];
        for (path, want) in table {
            assert_eq!(route(policy, h, path, 80), want, "{path}");
        }
        assert_eq!(route(policy, "other.avi.jarvis.lab", "/", 80), "none");
        let o = outcome(&d, "hackazon");
        assert!(o.problems.is_empty(), "{:?}", o.problems);
        assert_eq!(
            o.hosts,
            vec![HostOutcome {
                host: h.into(),
                vs_name: parent.into(),
                vip_name: parent.into(),
                tls: false
            }]
        );
    }

    const SHOP_TLS: &str = r#"
metadata: {name: shop, namespace: vmug, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  tls: [{hosts: [shop.avi.jarvis.lab], secretName: shop-tls}]
  rules:
  - host: shop.avi.jarvis.lab
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;

    #[test]
    fn translating_part_by_part_gives_the_same_objects_and_hosts_as_translating_everything() {
        let two_hosts = r#"
metadata: {name: two, namespace: other, creationTimestamp: "2026-02-01T00:00:00Z"}
spec:
  rules:
  - host: a.avi.jarvis.lab
    http: {paths: [{path: /x, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}]}
  - host: hackazon.avi.jarvis.lab
    http: {paths: [{path: /y, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}]}
"#;
        let mut w = World::new(&[SHOP_TLS, HACKAZON, two_hosts]);
        w.secrets
            .insert(ObjKey::new("vmug", "shop-tls"), Some(pair()));
        for shard in [
            ShardSize::Large,
            ShardSize::Medium,
            ShardSize::Small,
            ShardSize::Dedicated,
        ] {
            let whole = w.run(shard, &cfg());
            let merged = w.run_by_part(shard, &cfg());
            let sorted = |d: &L7Desired| {
                let mut v: Vec<(Kind, String, Value)> = d
                    .objects
                    .iter()
                    .map(|o| (o.kind, o.name.clone(), Value::Object(o.body.clone())))
                    .collect();
                v.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
                v
            };
            assert_eq!(sorted(&whole), sorted(&merged), "{shard:?}");
            for o in &whole.outcomes {
                let mut hosts: Vec<HostOutcome> = merged
                    .outcomes
                    .iter()
                    .filter(|m| m.key == o.key)
                    .flat_map(|m| m.hosts.clone())
                    .collect();
                hosts.sort_by(|a, b| a.host.cmp(&b.host));
                assert_eq!(hosts, o.hosts, "{shard:?} {}", o.key);
            }
        }
        // A part holds only its hosts: with LARGE, shop (shard 1) is not in shard 0's translation.
        assert_eq!(
            part_of("shop.avi.jarvis.lab", ShardSize::Large),
            Part::Shard { index: 1, of: 8 }
        );
        assert_eq!(
            part_of("x.avi.jarvis.lab", ShardSize::Dedicated),
            Part::Host("x.avi.jarvis.lab".into())
        );
    }

    #[test]
    fn secure_host_gets_an_sni_child_with_its_certificate_and_a_redirect_on_the_parent() {
        let mut w = World::new(&[SHOP_TLS, HACKAZON]);
        let tls = pair();
        w.secrets
            .insert(ObjKey::new("vmug", "shop-tls"), Some(tls.clone()));
        let d = w.run(ShardSize::Medium, &cfg());
        let h = "shop.avi.jarvis.lab";
        // shop hashes to shard 1 of 4, hackazon to 0.
        let parent = "veba-of--Shared-L7-1";
        assert_eq!(
            names(&d, Kind::VirtualService),
            vec!["veba-of--Shared-L7-0", parent]
        );
        let child = find(
            &d,
            Kind::VirtualServiceChild,
            "veba-of--shop.avi.jarvis.lab",
        );
        assert_eq!(child["type"], json!("VS_TYPE_VH_CHILD"));
        assert_eq!(
            child["vh_parent_vs_ref"],
            json!(format!("/api/virtualservice/?name={parent}"))
        );
        assert_eq!(child["vh_domain_name"], json!([h]));
        assert!(child.get("vsvip_ref").is_none() && child.get("services").is_none());
        assert_eq!(
            child["ssl_key_and_certificate_refs"],
            json!(["/api/sslkeyandcertificate/?name=veba-of--shop.avi.jarvis.lab"])
        );
        let cert = find(
            &d,
            Kind::SslKeyAndCertificate,
            "veba-of--shop.avi.jarvis.lab",
        );
        assert_eq!(cert["type"], json!("SSL_CERTIFICATE_TYPE_VIRTUALSERVICE"));
        assert_eq!(cert["certificate"]["certificate"], json!(tls.cert_pem));
        assert_eq!(cert["key"], json!(tls.key_pem));
        let pool = "veba-of--vmug-shop.avi.jarvis.lab_-shop";
        find(&d, Kind::Pool, pool);
        find(&d, Kind::PoolGroup, pool);
        let child_policy = find(&d, Kind::HttpPolicySet, "veba-of--vmug-shop.avi.jarvis.lab");
        assert_eq!(route(child_policy, h, "/cart", 443), pool);
        assert_eq!(
            child["http_policies"][0]["http_policy_set_ref"],
            json!("/api/httppolicyset/?name=veba-of--vmug-shop.avi.jarvis.lab")
        );
        let parent_policy = &parent_routes(&d, parent);
        assert_eq!(route(parent_policy, h, "/cart", 80), "redirect");
        let rule = &parent_policy["http_request_policy"]["rules"][0];
        assert_eq!(rule["redirect_action"]["protocol"], json!("HTTPS"));
        assert_eq!(rule["redirect_action"]["port"], json!(443));
        assert_eq!(
            find(&d, Kind::VsVip, parent)["dns_info"],
            json!([{"fqdn": h}])
        );
        let o = outcome(&d, "shop");
        assert!(o.problems.is_empty(), "{:?}", o.problems);
        assert_eq!(
            o.hosts,
            vec![HostOutcome {
                host: h.into(),
                vs_name: "veba-of--shop.avi.jarvis.lab".into(),
                vip_name: parent.into(),
                tls: true
            }]
        );
    }

    #[test]
    fn a_missing_or_bad_secret_leaves_the_host_on_http_with_a_warning() {
        let good = pair();
        let other = pair();
        let cases: Vec<(&str, Option<Option<TlsPair>>, &str)> = vec![
            (
                "missing",
                None,
                "TLS Secret \"shop-tls\" (spec.tls[0]) not found in \"vmug\"",
            ),
            ("no data", Some(None), "has no tls.crt and tls.key"),
            (
                "garbage",
                Some(Some(tls("nope", good.key_pem.clone()))),
                "tls.crt holds no PEM certificate",
            ),
            (
                "mismatched key",
                Some(Some(tls(good.cert_pem.clone(), other.key_pem.clone()))),
                "tls.key does not belong to the certificate",
            ),
        ];
        for (name, secret, want) in cases {
            let mut w = World::new(&[SHOP_TLS]);
            if let Some(s) = secret {
                w.secrets.insert(ObjKey::new("vmug", "shop-tls"), s);
            }
            let d = w.run(ShardSize::Small, &cfg());
            assert!(names(&d, Kind::VirtualServiceChild).is_empty(), "{name}");
            assert!(names(&d, Kind::SslKeyAndCertificate).is_empty(), "{name}");
            let o = outcome(&d, "shop");
            assert_eq!(o.problems.len(), 1, "{name}: {:?}", o.problems);
            assert_eq!(o.problems[0].severity, Severity::Warn);
            assert!(
                o.problems[0].message.contains(want),
                "{name}: {}",
                o.problems[0]
            );
            assert!(
                o.problems[0].message.contains("served over HTTP only"),
                "{name}"
            );
            assert!(!o.hosts[0].tls);
            let policy = &parent_routes(&d, "veba-of--Shared-L7-0");
            assert_eq!(
                route(policy, "shop.avi.jarvis.lab", "/", 80),
                "veba-of--shop.avi.jarvis.lab_-vmug-shop"
            );
        }
    }

    #[test]
    fn several_ingresses_on_one_host_merge_and_the_oldest_keeps_a_path() {
        let a = r#"
metadata: {name: a, namespace: vmug, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  rules:
  - host: shop.avi.jarvis.lab
    http: {paths: [{path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}]}
"#;
        let b = r#"
metadata: {name: b, namespace: vmug, creationTimestamp: "2026-01-02T00:00:00Z"}
spec:
  rules:
  - host: shop.avi.jarvis.lab
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /api/, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /api/v2, pathType: ImplementationSpecific, backend: {service: {name: web, port: {number: 80}}}}
"#;
        let other_ns = r#"
metadata: {name: c, namespace: other, creationTimestamp: "2026-01-03T00:00:00Z"}
spec:
  rules:
  - host: shop.avi.jarvis.lab
    http: {paths: [{path: /other, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}]}
"#;
        let w = World::new(&[other_ns, b, a]);
        let h = "shop.avi.jarvis.lab";

        // InterNamespaceAllowed (default): all three merge.
        let d = w.run(ShardSize::Small, &cfg());
        let policy = &parent_routes(&d, "veba-of--Shared-L7-0");
        let table = [
            ("/api", "veba-of--shop.avi.jarvis.lab_api-vmug-a"),
            ("/api/v1", "veba-of--shop.avi.jarvis.lab_api-vmug-a"),
            ("/api/v2/x", "veba-of--shop.avi.jarvis.lab_api_v2-vmug-b"),
            ("/apix", "veba-of--shop.avi.jarvis.lab_-vmug-b"),
            ("/other", "veba-of--shop.avi.jarvis.lab_other-other-c"),
            ("/other/x", "veba-of--shop.avi.jarvis.lab_-vmug-b"),
        ];
        for (path, want) in table {
            assert_eq!(route(policy, h, path, 80), want, "{path}");
        }
        let pb = &outcome(&d, "b").problems;
        assert_eq!(pb.len(), 1, "{pb:?}");
        assert!(pb[0].message.contains("path \"/api/\" (Prefix) (spec.rules[0].http.paths[1]) is already routed by Ingress vmug/a"), "{}", pb[0]);
        assert!(outcome(&d, "a").problems.is_empty());
        assert!(outcome(&d, "c").problems.is_empty());
        assert_eq!(outcome(&d, "c").hosts.len(), 1);
        // Outcomes come in input order.
        let order: Vec<&str> = d.outcomes.iter().map(|o| o.key.name.as_str()).collect();
        assert_eq!(order, ["c", "b", "a"]);

        // Strict: the namespace of the oldest claim keeps the host.
        let strict = Config {
            fqdn_reuse_policy: FqdnReusePolicy::Strict,
            ..cfg()
        };
        let d = w.run(ShardSize::Small, &strict);
        let policy = &parent_routes(&d, "veba-of--Shared-L7-0");
        assert_eq!(
            route(policy, h, "/other", 80),
            "veba-of--shop.avi.jarvis.lab_-vmug-b"
        );
        assert!(
            names(&d, Kind::Pool)
                .iter()
                .all(|p| !p.contains("-other-c"))
        );
        let pc = &outcome(&d, "c");
        assert!(pc.hosts.is_empty());
        assert_eq!(pc.problems.len(), 1);
        assert!(
            pc.problems[0]
                .message
                .contains("belongs to namespace \"vmug\" (Ingress vmug/a, the oldest claim)"),
            "{}",
            pc.problems[0]
        );
    }

    #[test]
    fn wildcard_hosts_match_by_suffix_after_exact_hosts_and_get_no_dns_record() {
        let w = World::new(&[r#"
metadata: {name: wild, namespace: vmug}
spec:
  rules:
  - host: '*.shop.avi.jarvis.lab'
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
  - host: eu.shop.avi.jarvis.lab
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}]}
"#]);
        let d = w.run(ShardSize::Small, &cfg());
        let parent = "veba-of--Shared-L7-0";
        let policy = &parent_routes(&d, parent);
        assert_eq!(
            route(policy, "us.shop.avi.jarvis.lab", "/", 80),
            "veba-of--*.shop.avi.jarvis.lab_-vmug-wild"
        );
        assert_eq!(
            route(policy, "EU.shop.avi.jarvis.lab", "/", 80),
            "veba-of--eu.shop.avi.jarvis.lab_-vmug-wild"
        );
        assert_eq!(route(policy, "shop.avi.jarvis.lab", "/", 80), "none");
        assert_eq!(
            find(&d, Kind::VsVip, parent)["dns_info"],
            json!([{"fqdn": "eu.shop.avi.jarvis.lab"}])
        );
    }

    #[test]
    fn a_rule_without_host_is_served_on_the_generated_host() {
        let w = World::new(&[
            "metadata: {name: web, namespace: shop}\nspec: {rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]}",
        ]);
        let d = w.run(ShardSize::Small, &cfg());
        let o = outcome(&d, "web");
        assert_eq!(o.hosts[0].host, "web.shop.avi.jarvis.lab");
        find(&d, Kind::Pool, "veba-of--web.shop.avi.jarvis.lab_-shop-web");
        assert_eq!(
            find(&d, Kind::VsVip, "veba-of--Shared-L7-0")["dns_info"],
            json!([{"fqdn": "web.shop.avi.jarvis.lab"}])
        );
    }

    #[test]
    fn enable_tls_adds_https_with_the_default_certificate() {
        let yaml = r#"
metadata: {name: shop, namespace: vmug, annotations: {ako.vmware.com/enable-tls: "true"}}
spec:
  rules:
  - host: shop.avi.jarvis.lab
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
"#;
        let mut w = World::new(&[yaml]);
        let h = "shop.avi.jarvis.lab";
        let pool = "veba-of--shop.avi.jarvis.lab_-vmug-shop";

        // Without the default Secret: HTTP only, with a warning.
        let d = w.run(ShardSize::Small, &cfg());
        assert!(names(&d, Kind::VirtualServiceChild).is_empty());
        let p = &outcome(&d, "shop").problems;
        assert!(
            p.len() == 1 && p[0].message.contains("router-certs-default does not exist"),
            "{p:?}"
        );

        w.default_cert = Some(pair());
        let d = w.run(ShardSize::Small, &cfg());
        assert!(outcome(&d, "shop").problems.is_empty());
        let child = find(
            &d,
            Kind::VirtualServiceChild,
            "veba-of--shop.avi.jarvis.lab",
        );
        assert_eq!(
            child["ssl_key_and_certificate_refs"],
            json!(["/api/sslkeyandcertificate/?name=veba-of--router-certs-default"])
        );
        find(
            &d,
            Kind::SslKeyAndCertificate,
            "veba-of--router-certs-default",
        );
        // HTTP keeps being served (no redirect) and HTTPS reaches the same pool group.
        assert_eq!(
            route(&parent_routes(&d, "veba-of--Shared-L7-0"), h, "/", 80),
            pool
        );
        assert_eq!(
            route(
                find(&d, Kind::HttpPolicySet, "veba-of--vmug-shop.avi.jarvis.lab"),
                h,
                "/",
                443
            ),
            pool
        );
        assert!(outcome(&d, "shop").hosts[0].tls);
    }

    #[test]
    fn tls_without_secret_uses_the_default_certificate_and_the_oldest_secret_wins() {
        let no_secret = r#"
metadata: {name: a, namespace: vmug, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  tls: [{hosts: [shop.avi.jarvis.lab]}]
  rules:
  - host: shop.avi.jarvis.lab
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
"#;
        let newer = r#"
metadata: {name: b, namespace: vmug, creationTimestamp: "2026-01-02T00:00:00Z"}
spec:
  tls: [{hosts: [shop.avi.jarvis.lab], secretName: other-tls}]
  rules:
  - host: shop.avi.jarvis.lab
    http: {paths: [{path: /b, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
"#;
        let mut w = World::new(&[newer, no_secret]);
        w.secrets
            .insert(ObjKey::new("vmug", "other-tls"), Some(pair()));
        let d = w.run(ShardSize::Small, &cfg());
        // No default certificate: the oldest claim decides, so no TLS at all.
        assert!(names(&d, Kind::VirtualServiceChild).is_empty());
        let pa = &outcome(&d, "a").problems;
        assert!(pa.len() == 1 && pa[0].message.contains("names no secretName and the default certificate (Secret router-certs-default) does not exist"), "{pa:?}");
        let pb = &outcome(&d, "b").problems;
        assert!(
            pb.len() == 1
                && pb[0]
                    .message
                    .contains("served with the TLS Secret of Ingress vmug/a"),
            "{pb:?}"
        );

        w.default_cert = Some(tls("bad", "bad"));
        let d = w.run(ShardSize::Small, &cfg());
        assert!(names(&d, Kind::VirtualServiceChild).is_empty());
        assert!(
            outcome(&d, "a").problems[0]
                .message
                .contains("is not usable")
        );

        w.default_cert = Some(pair());
        let d = w.run(ShardSize::Small, &cfg());
        let child = find(
            &d,
            Kind::VirtualServiceChild,
            "veba-of--shop.avi.jarvis.lab",
        );
        assert_eq!(
            child["ssl_key_and_certificate_refs"],
            json!(["/api/sslkeyandcertificate/?name=veba-of--router-certs-default"])
        );
        // A spec.tls host redirects HTTP to HTTPS; both Ingresses' paths are on the child.
        let h = "shop.avi.jarvis.lab";
        assert_eq!(
            route(&parent_routes(&d, "veba-of--Shared-L7-0"), h, "/b", 80),
            "redirect"
        );
        let child_policy = find(&d, Kind::HttpPolicySet, "veba-of--vmug-shop.avi.jarvis.lab");
        assert_eq!(
            route(child_policy, h, "/b/x", 443),
            "veba-of--vmug-shop.avi.jarvis.lab_b-b"
        );
        assert_eq!(
            route(child_policy, h, "/bx", 443),
            "veba-of--vmug-shop.avi.jarvis.lab_-a"
        );
        assert!(outcome(&d, "b").hosts[0].tls);
    }

    #[test]
    fn dedicated_mode_builds_one_virtual_service_per_host() {
        let mut w = World::new(&[SHOP_TLS, HACKAZON]);
        w.secrets
            .insert(ObjKey::new("vmug", "shop-tls"), Some(pair()));
        let d = w.run(ShardSize::Dedicated, &cfg());
        assert_eq!(
            names(&d, Kind::VirtualService),
            vec![
                "veba-of--hackazon.avi.jarvis.lab-L7-dedicated",
                "veba-of--shop.avi.jarvis.lab-L7-dedicated"
            ]
        );
        assert!(names(&d, Kind::VirtualServiceChild).is_empty());
        let shop = "veba-of--shop.avi.jarvis.lab-L7-dedicated";
        let vs = find(&d, Kind::VirtualService, shop);
        assert_eq!(vs["type"], json!("VS_TYPE_NORMAL"));
        assert_eq!(
            vs["services"],
            json!([{"port": 80, "enable_ssl": false}, {"port": 443, "enable_ssl": true}])
        );
        assert_eq!(vs["vsvip_ref"], json!(format!("/api/vsvip/?name={shop}")));
        assert_eq!(
            vs["ssl_key_and_certificate_refs"],
            json!(["/api/sslkeyandcertificate/?name=veba-of--shop.avi.jarvis.lab"])
        );
        assert_eq!(
            find(&d, Kind::VsVip, shop)["dns_info"],
            json!([{"fqdn": "shop.avi.jarvis.lab"}])
        );
        let policy = find(&d, Kind::HttpPolicySet, shop);
        let pool = "veba-of--vmug-shop.avi.jarvis.lab_-shop-L7-dedicated";
        assert_eq!(route(policy, "shop.avi.jarvis.lab", "/", 80), "redirect");
        assert_eq!(route(policy, "shop.avi.jarvis.lab", "/", 443), pool);
        let hk = "veba-of--hackazon.avi.jarvis.lab-L7-dedicated";
        let vs = find(&d, Kind::VirtualService, hk);
        assert_eq!(vs["services"], json!([{"port": 80, "enable_ssl": false}]));
        assert!(vs.get("ssl_key_and_certificate_refs").is_none());
        assert_eq!(
            route(
                find(&d, Kind::HttpPolicySet, hk),
                "hackazon.avi.jarvis.lab",
                "/foobar",
                80
            ),
            "veba-of--vmug-hackazon.avi.jarvis.lab_-hackazon-L7-dedicated"
        );
        assert_eq!(outcome(&d, "shop").hosts[0].vs_name, shop);
        assert_eq!(outcome(&d, "shop").hosts[0].vip_name, shop);
    }

    #[test]
    fn backend_problems_leave_an_empty_pool_and_a_warning() {
        let yaml = r#"
metadata: {name: app, namespace: vmug}
spec:
  rules:
  - host: app.avi.jarvis.lab
    http:
      paths:
      - {path: /gone, pathType: Prefix, backend: {service: {name: gone, port: {number: 80}}}}
      - {path: /port, pathType: Prefix, backend: {service: {name: web, port: {number: 8443}}}}
      - {path: /named, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
      - {path: /res, pathType: Prefix, backend: {resource: {kind: Bucket, name: b}}}
"#;
        let w = World::new(&[yaml]);
        let d = w.run(ShardSize::Small, &cfg());
        let empty = |p: &str| find(&d, Kind::Pool, p)["servers"] == json!([]);
        assert!(empty("veba-of--app.avi.jarvis.lab_gone-vmug-app"));
        assert!(empty("veba-of--app.avi.jarvis.lab_port-vmug-app"));
        assert!(!empty("veba-of--app.avi.jarvis.lab_named-vmug-app"));
        let p: Vec<String> = outcome(&d, "app")
            .problems
            .iter()
            .map(|p| p.message.clone())
            .collect();
        assert_eq!(p.len(), 3, "{p:?}");
        for want in [
            "backend Service \"gone\" of host app.avi.jarvis.lab path /gone not found in \"vmug\"",
            "backend Service \"web\" has no port 8443",
            "spec.rules[0].http.paths[3].backend is not a Service",
        ] {
            assert!(p.iter().any(|m| m.contains(want)), "{want} not in {p:?}");
        }
        assert!(
            outcome(&d, "app")
                .problems
                .iter()
                .all(|p| p.severity == Severity::Warn)
        );

        // NodePort mode: nodes and the nodePort.
        let d = w.run_mode(
            ShardSize::Small,
            &cfg(),
            MemberMode::NodePort { selector: None },
        );
        assert_eq!(
            find(&d, Kind::Pool, "veba-of--app.avi.jarvis.lab_named-vmug-app")["servers"],
            json!([{"ip": {"addr": "127.0.0.2", "type": "V4"}, "port": 30080, "enabled": true}])
        );
    }

    #[test]
    fn long_names_are_shortened_and_denied_hosts_are_not_served() {
        let long = "x".repeat(240);
        let w = World::new(&[&format!(
            "metadata: {{name: {long}, namespace: vmug}}\nspec: {{rules: [{{host: a.avi.jarvis.lab, http: {{paths: [{{path: /{long}, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]}}}}, {{host: evil.example.com}}]}}"
        )]);
        let d = w.run(ShardSize::Small, &cfg());
        assert!(
            d.objects
                .iter()
                .all(|o| o.name.len() <= crate::l4::MAX_NAME)
        );
        let pool = names(&d, Kind::Pool)[0];
        assert!(pool.starts_with("veba-of--a.avi.jarvis.lab_xxx"), "{pool}");
        assert_eq!(names(&d, Kind::PoolGroup)[0], pool);
        let o = &d.outcomes[0];
        assert_eq!(o.hosts.len(), 1);
        assert!(has_denial(o), "the outside host is a deny problem");
        assert!(d.objects.iter().all(|o| !o.name.contains("evil")));
    }
}
