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
//!   host is not served at all (no route, no address; as AKO does), with a Warning saying why: plain HTTP
//!   where spec.tls asked for HTTPS would be a downgrade.
//! - A `spec.tls` entry without `secretName` uses the default certificate when given, else a Warning.
//! - `ako.vmware.com/enable-tls: "true"` with the default certificate (Secret `router-certs-default`): the host
//!   keeps answering on port 80 and also answers on 443 (no redirect), its SNI child switching to the same pool
//!   groups as port 80. The certificate is one object, `<cluster>--router-certs-default`.
//! - Wildcard hosts: `vh_domain_name` keeps `*.example.com`; the host header match is `HDR_ENDS_WITH
//!   .example.com` (Avi has no one-label wildcard match, so `a.b.example.com` matches too); no DNS record.
//! - A backend Service that does not exist, a port it does not have, or a NodePort without a nodePort: the pool
//!   is created empty and the Ingress gets a Warning. Resource backends are not served.
//! - A request to a served host that matches none of its paths gets 404 from the virtual service (a local
//!   response, the Kubernetes contract); so does a request for a host the shared parent does not serve (the
//!   parent's own policy set `<cluster>--Shared-L7-<n>`, listed last). 503 stays for "routed, no healthy server".
//! - An Ingress of only `spec.defaultBackend` (no rules) gets a virtual service of its own,
//!   `<cluster>--<ns>-<ing>-default-backend` (VsVip, policy set, pool and pool group of the same name), in every
//!   shard mode: every request to its address goes to the backend, whatever the host. Its status is the address
//!   alone. With rules, `spec.defaultBackend` is not served and the Ingress gets a Warning saying so.

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

mod bodies; // the Avi bodies: shared parents and their hosts, dedicated virtual services, policies
mod claims; // which Ingress a host, a path and a certificate belong to
mod host_rules; // HostRules and HTTPRules on a host's objects
mod names; // AKO's object names
mod paths; // Kubernetes path semantics as Avi match criteria

#[allow(clippy::wildcard_imports)]
use bodies::*;
pub use bodies::{Serving, assemble_parent};
#[allow(clippy::wildcard_imports)]
use claims::*;
use host_rules::*;
pub use names::*;
pub use paths::*;

/// The Ingress annotation asking for HTTPS with the default certificate.
pub const ENABLE_TLS_ANNOTATION: &str = "ako.vmware.com/enable-tls";
/// The Secret (in ako's namespace) holding the default certificate.
pub const DEFAULT_CERT_SECRET: &str = "router-certs-default";
/// `http_policies[].index` of ako's policy set on a virtual service (AKO starts at 11).
pub const HTTP_POLICY_INDEX: u32 = 11;
/// The health monitor of every L7 pool (AKO's default for Ingress backends).
pub const L7_HEALTH_MONITOR: &str = "System-TCP";
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
    /// The accepted HostRules and HTTPRules, and the AviInfraSettings (`None`: none).
    pub rules: Option<&'a crate::crd::RuleSet>,
    /// The cluster's IngressClasses: the AviInfraSetting an Ingress's class names (`None`: none does).
    pub classes: Option<&'a intent::ClassView>,
    /// Namespace -> the AviInfraSetting its annotation names: the placement of its Ingresses whose class names
    /// none.
    pub namespace_infra: Option<&'a BTreeMap<String, String>>,
    /// Translate only the hosts of this part (`None`: every host). Problems that are not about a host (the
    /// Ingress's own) are reported whatever the part.
    pub part: Option<&'a Part>,
}

/// An independently planned piece of the L7 configuration: a shared parent with every host hashed to it, or
/// (dedicated mode) one host. Every object a host produces belongs to the host's part, and every Ingress
/// claiming a host is needed to plan it, so a change re-plans only the parts of the hosts it touches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// Shard `index` of `of` shared parents (of an AviInfraSetting's Ingresses, or the global ones).
    Shard {
        index: u32,
        of: u32,
        infra: Option<String>,
    },
    Host(String),
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Shard { index, infra, .. } => {
                write!(
                    f,
                    "Shared-L7-{}",
                    in_infra(infra.as_deref(), &index.to_string())
                )
            }
            Part::Host(h) => match intent::default_backend_of(h) {
                Some((ns, name)) => write!(f, "default backend of {ns}/{name}"),
                None => write!(f, "{h}{DEDICATED_SUFFIX}"),
            },
        }
    }
}

/// The part a host belongs to. An Ingress of only a default backend is a part of its own in every mode: it
/// answers every request to its address, so it cannot share one.
pub fn part_of(host: &str, shard: ShardSize) -> Part {
    part_in(host, shard, None)
}

/// The part of a host placed by an AviInfraSetting (`infra`: its name, in the names of the parents).
pub fn part_in(host: &str, shard: ShardSize, infra: Option<&str>) -> Part {
    if intent::default_backend_of(host).is_some() {
        return Part::Host(host.to_string());
    }
    match shard.shards() {
        Some(of) => Part::Shard {
            index: shard_of(host, of),
            of,
            infra: infra.map(str::to_string),
        },
        None => Part::Host(host.to_string()),
    }
}

/// Where the hosts of an AviInfraSetting's Ingresses go (bound through their IngressClass's `spec.parameters`).
#[derive(Debug, Clone, PartialEq)]
pub struct InfraPlace {
    /// The setting's name in the objects' names (AKO's); `None`: the global names.
    pub label: Option<String>,
    pub place: Placement,
    pub shard: ShardSize,
    /// Why the setting named is not applied (missing or Rejected): the global placement is used instead.
    pub problem: Option<String>,
}

/// Resolves the AviInfraSetting a class names: an Accepted one gives its name, placement and shard size
/// (`l7Settings.shardSize`, else the global one); none, a missing or a Rejected one the global ones (with why).
pub fn resolve_infra(
    name: Option<&str>,
    base: &Placement,
    shard: ShardSize,
    rules: Option<&crate::crd::RuleSet>,
) -> InfraPlace {
    let global = |problem: Option<String>| InfraPlace {
        label: None,
        place: base.clone(),
        shard,
        problem,
    };
    let Some(name) = name else {
        return global(None);
    };
    match rules.and_then(|r| r.infra_setting(name)) {
        Some((crate::crd::Verdict::Accepted, Some(spec))) => InfraPlace {
            label: Some(name.to_string()),
            place: spec.place(base),
            shard: spec.shard_size().unwrap_or(shard),
            problem: None,
        },
        Some((crate::crd::Verdict::Rejected(why), _)) => global(Some(format!(
            "the IngressClass's AviInfraSetting {name:?} is Rejected ({why}); its hosts are placed by the global settings"
        ))),
        _ => global(Some(format!(
            "the IngressClass's AviInfraSetting {name:?} does not exist; its hosts are placed by the global settings"
        ))),
    }
}

/// The AviInfraSetting placing an Ingress: its class's (`spec.parameters`), else its namespace's annotation
/// (as AKO falls back).
pub fn ingress_infra(
    ing: &Ingress,
    classes: Option<&intent::ClassView>,
    namespace_infra: Option<&str>,
) -> Option<String> {
    classes
        .and_then(|c| c.infra_of(&intent::classify(ing)))
        .or(namespace_infra)
        .map(str::to_string)
}

/// The part of a host whose oldest Ingress's class names the AviInfraSetting `infra`.
pub fn host_part(
    host: &str,
    infra: Option<&str>,
    shard: ShardSize,
    rules: Option<&crate::crd::RuleSet>,
) -> Part {
    let accepted = infra.and_then(|name| Some((name, rules?.accepted_infra(name)?)));
    match accepted {
        Some((name, spec)) => part_in(host, spec.shard_size().unwrap_or(shard), Some(name)),
        None => part_of(host, shard),
    }
}

/// The placement of a part's shared parent: its AviInfraSetting's, or `base`.
pub fn part_placement(
    part: &Part,
    base: &Placement,
    rules: Option<&crate::crd::RuleSet>,
) -> Placement {
    let accepted = match part {
        Part::Shard {
            infra: Some(name), ..
        } => rules.and_then(|r| r.accepted_infra(name)),
        _ => None,
    };
    accepted.map_or_else(|| base.clone(), |spec| spec.place(base))
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
    /// Further names its HostRule gives it (`aliases`), served and published with it.
    pub aliases: Vec<String>,
    /// Per claiming Ingress: the host if it is served for it, and the problems about this host.
    pub outcomes: Vec<IngressOutcome>,
}

/// The Ingresses of the input as claimants of their hosts (with their own problems, parallel to them), and the
/// outcomes of those refused before translation (over the size limits), by input position.
#[allow(clippy::type_complexity)]
fn claimants_of(
    input: &L7Input<'_>,
    cfg: &Config,
) -> (
    Vec<(usize, IngressOutcome)>,
    Vec<Claimant>,
    Vec<IngressOutcome>,
) {
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
        let ns_infra = input
            .namespace_infra
            .zip(ing.metadata.namespace.as_deref())
            .and_then(|(m, ns)| m.get(ns))
            .map(String::as_str);
        let infra = ingress_infra(ing, input.classes, ns_infra);
        claimants.push(Claimant {
            key: key.clone(),
            created: ownership::created(&ing.metadata),
            intent,
            enable_tls,
            infra,
            pos,
        });
        c_outcomes.push(IngressOutcome {
            key,
            hosts: Vec::new(),
            problems,
        });
    }

    (refused, claimants, c_outcomes)
}

/// The placements of the AviInfraSettings the claimants' classes name (and the global one), resolved once.
fn placements_of<'c>(
    claimants: &'c [Claimant],
    place: &Placement,
    shard: ShardSize,
    rules: Option<&crate::crd::RuleSet>,
) -> BTreeMap<Option<&'c str>, InfraPlace> {
    let mut placements = BTreeMap::new();
    for infra in claimants
        .iter()
        .map(|c| c.infra.as_deref())
        .chain(std::iter::once(None))
    {
        placements
            .entry(infra)
            .or_insert_with(|| resolve_infra(infra, place, shard, rules));
    }
    placements
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
    let (refused, claimants, c_outcomes) = claimants_of(input, cfg);
    let mut checks = CertChecks {
        input,
        default: None,
        secrets: HashMap::new(),
    };
    let placements = placements_of(&claimants, place, shard, input.rules);
    let global = &placements[&None];
    let mut ctx = Ctx::new(cfg, &global.place, input.services, input.nodes);
    ctx.rules = input.rules;
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
    for (host, cis) in index_hosts(&claimants, only) {
        // The oldest claimant's class places the host.
        let infra = placing(&cis, &claimants).and_then(|c| c.infra.as_deref());
        let placed = placements.get(&infra).unwrap_or(global);
        let part = part_in(host, placed.shard, placed.label.as_deref());
        if input.part.is_some_and(|p| *p != part) {
            continue;
        }
        ctx.place = &placed.place;
        ctx.infra = placed.label.as_deref();
        let touched = cis.clone();
        let host_rule = input.rules.and_then(|r| r.host_rule(host));
        let (forced_cert, cert_note) = host_rule_cert(host_rule, input);
        let hp = plan_host(
            host,
            cis,
            &claimants,
            &mut scratch,
            cfg,
            &mut checks,
            forced_cert,
        );
        if let Some(why) = &placed.problem {
            for &ci in &touched {
                if claimants[ci].infra.as_deref() == infra {
                    scratch[ci]
                        .problems
                        .push(Problem::warn("spec.ingressClassName", why.clone()));
                }
            }
        }
        let mut parent_policy = None;
        let mut host_rule_notes: Vec<String> = cert_note.into_iter().collect();
        let mut aliases: Vec<String> = Vec::new();
        ctx.names.clear();
        if !hp.claimants.is_empty() {
            match &part {
                Part::Shard { index, .. } => {
                    let parent = shared_vs_name_in(ctx.cluster, ctx.infra, *index);
                    let rules =
                        shared_host(&mut ctx, &hp, &claimants, &mut scratch, &parent, input);
                    if !rules.is_empty() {
                        let name = parent_policy_name_in(ctx.cluster, ctx.infra, *index, host);
                        let one: BTreeSet<String> = [host.to_string()].into();
                        ctx.policy_set(&name, rules, &one);
                        parent_policy = Some(name);
                    }
                    if host_rule.is_some() {
                        let child = sni_child_name(ctx.cluster, &in_infra(ctx.infra, host));
                        if hp.cert.is_some() {
                            aliases = host_aliases(&ctx, host);
                            host_rule_notes.extend(apply_host_rule(&mut ctx, host, &child, true));
                            host_rule_notes.extend(add_alternate_secret(
                                &mut ctx,
                                host_rule,
                                host,
                                &child,
                                input.secrets,
                            ));
                        } else {
                            host_rule_notes.push(format!(
                                "host {host} is served without TLS on the shared parent, where a HostRule does not apply (as in AKO); give it a certificate (spec.tls of the Ingress, or the HostRule's tls.sslKeyCertificate) or use shardVSSize DEDICATED"
                            ));
                        }
                    }
                }
                Part::Host(_) => match intent::default_backend_of(host) {
                    Some(ingress) => {
                        default_backend_vs(&mut ctx, &hp, &claimants, &mut scratch, ingress)
                    }
                    None => {
                        dedicated_host(&mut ctx, &hp, &claimants, &mut scratch, input);
                        let vs = dedicated_vs_name(ctx.cluster, &in_infra(ctx.infra, host));
                        aliases = host_aliases(&ctx, host);
                        host_rule_notes.extend(apply_host_rule(&mut ctx, host, &vs, false));
                        host_rule_notes.extend(add_alternate_secret(
                            &mut ctx,
                            host_rule,
                            host,
                            &vs,
                            input.secrets,
                        ));
                    }
                },
            }
        }
        if let Some((id, _)) = host_rule {
            for note in host_rule_notes {
                for &ci in &touched {
                    scratch[ci].problems.push(Problem::warn(
                        "spec.rules",
                        format!("HostRule {}: {note}", id.key),
                    ));
                }
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
            aliases,
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
    let mut parts: BTreeMap<&Part, Vec<Serving<'_>>> = BTreeMap::new();
    for f in &fragments {
        if !f.objects.is_empty() {
            parts.entry(&f.part).or_default().push(Serving {
                host: &f.host,
                policy: f.parent_policy.as_deref(),
                aliases: &f.aliases,
            });
        }
        for o in &f.objects {
            // The default certificate is one object, whichever hosts use it.
            if seen.insert((o.kind, o.name.clone())) {
                objects.push(o.clone());
            }
        }
    }
    for (part, frs) in parts {
        let placed = part_placement(part, place, input.rules);
        objects.extend(assemble_parent(cfg, &placed, part, &frs));
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

/// The certificate a host's HostRule gives it, replacing its Ingresses': controller certificates (`type: ref`),
/// or a TLS Secret of the rule's namespace (`type: secret`); with what stops the Secret from serving (it is
/// missing or unusable: the host keeps its Ingresses' certificate).
fn host_rule_cert(
    host_rule: Option<(&crate::crd::RuleId, &crate::crd::HostRuleSpec)>,
    input: &L7Input<'_>,
) -> (Option<CertSource>, Option<String>) {
    let Some((id, spec)) = host_rule else {
        return (None, None);
    };
    let certs = spec.controller_certs();
    if !certs.is_empty() {
        let names = certs.into_iter().map(str::to_string).collect();
        return (Some(CertSource::Controller(names)), None);
    }
    let Some(name) = spec.secret_cert() else {
        return (None, None);
    };
    let key = ObjKey::new(id.key.namespace.clone(), name);
    let problem = match input.secrets.get(&key) {
        Some(Some(pair)) if pair.problem.is_none() => {
            return (Some(CertSource::Secret(key, pair.clone())), None);
        }
        Some(Some(pair)) => format!(
            "is not usable: {}",
            pair.problem.clone().unwrap_or_default()
        ),
        Some(None) => "has no tls.crt and tls.key".to_string(),
        None => "does not exist".to_string(),
    };
    (
        None,
        Some(format!(
            "tls.sslKeyCertificate: Secret {key} {problem}; the host keeps its Ingresses' certificate"
        )),
    )
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

/// Whether any problem of an outcome is a [`Severity::Deny`] (the webhook would have refused the Ingress).
pub fn has_denial(outcome: &IngressOutcome) -> bool {
    outcome
        .problems
        .iter()
        .any(|p| p.severity == Severity::Deny)
}

#[cfg(test)]
mod tests;
