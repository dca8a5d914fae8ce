//! The bodies of the L7 objects: pools, pool groups, policy sets, certificates, virtual services and VsVips of
//! a host or a shared parent.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::crd::RuleSet;

/// A route with the pool group it switches to.
pub(super) struct Routed {
    pub(super) m: PathMatch,
    pub(super) pool_group: String,
}

pub(super) struct Ctx<'a> {
    pub(super) cfg: &'a Config,
    pub(super) place: &'a Placement,
    pub(super) cluster: &'a str,
    pub(super) owner: String,
    pub(super) tenant_ref: String,
    pub(super) cloud_ref: String,
    pub(super) services: HashMap<ObjKey, ServiceInput<'a>>,
    pub(super) nodes: &'a [NodeInfo],
    pub(super) names: HashSet<(Kind, String)>,
    pub(super) objects: Vec<Desired>,
    /// The accepted HostRules and HTTPRules.
    pub(super) rules: Option<&'a RuleSet>,
    /// The AviInfraSetting placing the host being translated (its name in the objects' names).
    pub(super) infra: Option<&'a str>,
}

pub(super) fn markers_list(key: &str, values: &BTreeSet<String>) -> Value {
    json!({"key": key, "values": values.iter().collect::<Vec<_>>()})
}

pub(super) fn host_match(host: &str) -> Value {
    match host.strip_prefix('*') {
        Some(suffix) => {
            json!({"match_criteria": "HDR_ENDS_WITH", "match_case": "INSENSITIVE", "value": [suffix]})
        }
        None => {
            json!({"match_criteria": "HDR_EQUALS", "match_case": "INSENSITIVE", "value": [host]})
        }
    }
}

pub(super) fn resolve_port<'s>(
    svc: &'s ServiceInput<'_>,
    port: &BackendPort,
) -> Option<&'s ServicePort> {
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

pub(super) fn port_text(port: &BackendPort) -> String {
    match port {
        BackendPort::Number(n) => n.to_string(),
        BackendPort::Name(n) => format!("{n:?}"),
        BackendPort::Unset => "(unset)".into(),
    }
}

impl<'a> Ctx<'a> {
    pub(super) fn new(
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
            rules: None,
            infra: None,
        }
    }
}

impl Ctx<'_> {
    pub(super) fn push(&mut self, kind: Kind, name: &str, body: Value) {
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
    pub(super) fn free_pool_name(&self, base: String, m: &PathMatch) -> String {
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

    pub(super) fn servers(
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
    pub(super) fn route_objects(
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
            let mut pool = json!({
                "name": name,
                "created_by": self.owner,
                "tenant_ref": self.tenant_ref,
                "cloud_ref": self.cloud_ref,
                "servers": servers,
                // AKO's monitor for Ingress pools: a server that stops accepting connections leaves rotation.
                "health_monitor_refs": [name_ref("healthmonitor", L7_HEALTH_MONITOR)],
                "markers": markers,
            });
            if let Some(body) = pool.as_object_mut() {
                body.extend(crate::crd::l4rule::pool_defaults());
            }
            let ca = match (self.rules, pool.as_object_mut()) {
                (Some(rules), Some(body)) => {
                    apply_http_rules(rules, &hp.host, &c.key.namespace, &route.raw_path, body)
                }
                _ => None,
            };
            if let Some(ca) = ca {
                // AKO's PKI profile of the pool, `<pool>-pkiprofile`, holding the HTTPRule's CA.
                let pki = avi_name(format!("{name}-pkiprofile"));
                self.push(
                    Kind::PkiProfile,
                    &pki,
                    json!({
                        "name": pki,
                        "created_by": self.owner,
                        "tenant_ref": self.tenant_ref,
                        "ca_certs": [{"certificate": ca}],
                        "crl_check": false,
                        "markers": markers,
                    }),
                );
                if let Some(body) = pool.as_object_mut() {
                    body.insert(
                        "pki_profile_ref".into(),
                        json!(name_ref("pkiprofile", &pki)),
                    );
                }
            }
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

    pub(super) fn vsvip(&mut self, name: &str, hosts: &BTreeSet<String>) {
        let fqdns: Vec<Value> = hosts
            .iter()
            .filter(|h| !h.starts_with('*'))
            .filter(|h| hosts::delegated_domain(h, &self.cfg.dns_domains).is_some())
            .map(|f| json!({"fqdn": f}))
            .collect();
        let vip = vip_request(None, self.place);
        // No created_by: a VsVip has none in the controller's schema; the clustername marker makes it ako's.
        let mut body = json!({
            "name": name,
            "tenant_ref": self.tenant_ref,
            "cloud_ref": self.cloud_ref,
            "vrf_context_ref": name_ref("vrfcontext", &self.place.vrf),
            "east_west_placement": false,
            "vip": [vip],
            "bgp_peer_labels": self.place.rhi.vsvip_field(),
            "markers": [marker("clustername", self.cluster)],
        });
        // Moved in, not serialized again by json! (a shared parent has thousands).
        if let Some(m) = body.as_object_mut() {
            m.insert("dns_info".into(), Value::Array(fqdns));
        }
        self.push(Kind::VsVip, name, body);
    }

    pub(super) fn policy_set(&mut self, name: &str, rules: Vec<Value>, hosts: &BTreeSet<String>) {
        // A set of no host (a parent's own, a default backend's) has no Host marker: a marker carries values.
        let markers = if hosts.is_empty() {
            json!([marker("clustername", self.cluster)])
        } else {
            json!([
                marker("clustername", self.cluster),
                markers_list("Host", hosts)
            ])
        };
        let mut body = json!({
            "name": name,
            "created_by": self.owner,
            "tenant_ref": self.tenant_ref,
            "is_internal_policy": false,
            "markers": markers,
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

    pub(super) fn certificate(&mut self, name: &str, pair: &TlsPair, markers: Value) {
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
    pub(super) fn host_certificate(
        &mut self,
        hp: &HostPlan,
        default: Option<&TlsPair>,
    ) -> Option<String> {
        match hp.cert.as_ref()? {
            CertSource::Secret(key, pair) => {
                let name = sni_child_name(self.cluster, &in_infra(self.infra, &hp.host));
                let markers = json!([
                    marker("clustername", self.cluster),
                    marker("Namespace", &key.namespace),
                    marker("Host", &hp.host),
                ]);
                self.certificate(&name, pair, markers);
                Some(name)
            }
            // Already on the controller: nothing to create; the HostRule puts every name on the virtual service.
            CertSource::Controller(names) => names.first().cloned(),
            CertSource::Default => {
                let pair = default?;
                let name = default_cert_name(self.cluster);
                self.certificate(&name, pair, json!([marker("clustername", self.cluster)]));
                Some(name)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn virtual_service(
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
            // Route health injection is the parent's (or the dedicated VS's): a child has no VIP of its own.
            if vs_type != "VS_TYPE_VH_CHILD" {
                m.insert("enable_rhi".into(), self.place.rhi.vs_field());
            }
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

/// The rules switching each route of a host to its pool group (`host`: `None` matches any host).
pub(super) fn switching_rules(host: Option<&str>, routed: &[Routed], rules: &mut Vec<Value>) {
    for r in routed {
        for path in path_criteria(&r.m) {
            let mut m = Map::new();
            if let Some(h) = host {
                m.insert("host_hdr".into(), host_match(h));
            }
            if let Some(p) = path {
                m.insert("path".into(), p);
            }
            let index = rules.len();
            rules.push(json!({
                "name": format!("{}-{index}", host.unwrap_or(ANY_HOST)),
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

/// The rule name part of rules that match any host.
const ANY_HOST: &str = "any-host";

/// The last rule of a host (`None`: of any host): a request no earlier rule routed gets 404 from the virtual
/// service itself, as Kubernetes defines for a path no rule matches (without it, Avi answers a request no policy
/// routes like a failed pool, and 503 would mean "routed, no healthy server").
pub(super) fn not_found_rule(host: Option<&str>, rules: &mut Vec<Value>) {
    let index = rules.len();
    let mut rule = json!({
        "name": format!("{}-{index}", host.unwrap_or(ANY_HOST)),
        "index": index,
        "enable": true,
        "switching_action": {
            "action": "HTTP_SWITCHING_SELECT_LOCAL",
            "status_code": "HTTP_LOCAL_RESPONSE_STATUS_CODE_404",
        },
    });
    if let (Some(h), Some(m)) = (host, rule.as_object_mut()) {
        m.insert("match".into(), json!({"host_hdr": host_match(h)}));
    }
    rules.push(rule);
}

pub(super) fn redirect_rule(host: &str, rules: &mut Vec<Value>) {
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

pub(super) fn ingress_markers(cluster: &str, hp: &HostPlan, claimants: &[Claimant]) -> Value {
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
pub(super) fn shared_host(
    ctx: &mut Ctx<'_>,
    hp: &HostPlan,
    claimants: &[Claimant],
    outcomes: &mut [IngressOutcome],
    parent: &str,
    input: &L7Input<'_>,
) -> Vec<Value> {
    let cluster = ctx.cluster;
    let infra = ctx.infra;
    // With an AviInfraSetting, AKO's names carry its name before the host (insecure pools) or the namespace.
    let label = in_infra(infra, &hp.host);
    let mut rules = Vec::new();
    let insecure_name = |c: &Claimant, r: &RoutePlan| {
        insecure_pool_name(cluster, &label, &r.raw_path, &c.key.namespace, &c.key.name)
    };
    let secure_name = |c: &Claimant, r: &RoutePlan| {
        secure_pool_name(
            cluster,
            &in_infra(infra, &c.key.namespace),
            &hp.host,
            &r.raw_path,
            &c.key.name,
            false,
        )
    };
    let host = Some(hp.host.as_str());
    let Some(cert) = ctx.host_certificate(hp, input.default_cert) else {
        let routed = ctx.route_objects(hp, claimants, outcomes, &insecure_name);
        switching_rules(host, &routed, &mut rules);
        not_found_rule(host, &mut rules);
        record(outcomes, hp, parent, parent);
        return rules;
    };
    let routed = if hp.redirect {
        redirect_rule(&hp.host, &mut rules);
        ctx.route_objects(hp, claimants, outcomes, &secure_name)
    } else {
        // HTTPS next to HTTP: both ports switch to the same pool groups.
        let routed = ctx.route_objects(hp, claimants, outcomes, &insecure_name);
        switching_rules(host, &routed, &mut rules);
        routed
    };
    not_found_rule(host, &mut rules);
    let child = sni_child_name(cluster, &label);
    let policy = sni_policy_name(cluster, &in_infra(infra, &hp.owner_ns), &hp.host);
    let mut child_rules = Vec::new();
    switching_rules(host, &routed, &mut child_rules);
    not_found_rule(host, &mut child_rules);
    let one: BTreeSet<String> = [hp.host.clone()].into();
    ctx.policy_set(&policy, child_rules, &one);
    let mut extra = Map::new();
    extra.insert(
        "vh_parent_vs_ref".into(),
        json!(name_ref("virtualservice", parent)),
    );
    extra.insert("vh_domain_name".into(), json!([hp.host]));
    extra.extend(vs_rule_defaults(true));
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
pub(super) fn dedicated_host(
    ctx: &mut Ctx<'_>,
    hp: &HostPlan,
    claimants: &[Claimant],
    outcomes: &mut [IngressOutcome],
    input: &L7Input<'_>,
) {
    let cluster = ctx.cluster;
    let infra = ctx.infra;
    let name = dedicated_vs_name(cluster, &in_infra(infra, &hp.host));
    let pool_name = |c: &Claimant, r: &RoutePlan| {
        secure_pool_name(
            cluster,
            &in_infra(infra, &c.key.namespace),
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
    switching_rules(Some(&hp.host), &routed, &mut rules);
    // The VS serves one host: whatever else reaches its address is not found either.
    not_found_rule(None, &mut rules);
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
    extra.extend(vs_rule_defaults(cert.is_some()));
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

/// The virtual service of an Ingress of only a default backend (pushed to `ctx`): its own address, one rule
/// sending every request to the backend's pool group, whatever the host. No DNS record: it has no host.
pub(super) fn default_backend_vs(
    ctx: &mut Ctx<'_>,
    hp: &HostPlan,
    claimants: &[Claimant],
    outcomes: &mut [IngressOutcome],
    (namespace, ingress): (&str, &str),
) {
    let cluster = ctx.cluster;
    let name = default_backend_vs_name(cluster, namespace, ingress);
    let routed = ctx.route_objects(hp, claimants, outcomes, &|_, _| name.clone());
    let mut rules = Vec::new();
    switching_rules(None, &routed, &mut rules);
    not_found_rule(None, &mut rules);
    let none = BTreeSet::new();
    ctx.vsvip(&name, &none);
    ctx.policy_set(&name, rules, &none);
    let mut extra = Map::new();
    extra.insert("vsvip_ref".into(), json!(name_ref("vsvip", &name)));
    ctx.virtual_service(
        Kind::VirtualService,
        &name,
        "VS_TYPE_NORMAL",
        json!([{"port": 80, "enable_ssl": false}]),
        &[&name],
        None,
        "System-HTTP",
        extra,
        json!([
            marker("clustername", cluster),
            marker("Namespace", namespace),
            marker("IngressName", ingress),
        ]),
    );
    record(outcomes, hp, &name, &name);
}

/// The shared parent of a part (VsVip and VirtualService, listing its hosts' policy sets in host order) from the
/// hosts it serves, each with its policy set on the parent if it has one; nothing in dedicated mode (a dedicated
/// host's fragment holds its virtual service) or when no host is left.
/// A host a shared parent serves: its policy set there, and the aliases its HostRule gives it.
#[derive(Debug, Clone, Copy)]
pub struct Serving<'a> {
    pub host: &'a str,
    pub policy: Option<&'a str>,
    pub aliases: &'a [String],
}

pub fn assemble_parent(
    cfg: &Config,
    place: &Placement,
    part: &Part,
    serving: &[Serving<'_>],
) -> Vec<Desired> {
    let Part::Shard { index, infra, .. } = part else {
        return Vec::new();
    };
    if serving.is_empty() {
        return Vec::new();
    }
    let mut ctx = Ctx::new(cfg, place, &[], &[]);
    let cluster = ctx.cluster;
    let parent = shared_vs_name_in(cluster, infra.as_deref(), *index);
    let mut sorted: Vec<&Serving<'_>> = serving.iter().collect();
    sorted.sort_by(|a, b| host_order(a.host).cmp(&host_order(b.host)));
    // The parent's own policy set, listed last: a request for a host it does not serve gets 404.
    let mut not_found = Vec::new();
    not_found_rule(None, &mut not_found);
    ctx.policy_set(&parent, not_found, &BTreeSet::new());
    let policies: Vec<&str> = sorted
        .iter()
        .filter_map(|s| s.policy)
        .chain(std::iter::once(parent.as_str()))
        .collect();
    // The parent's DNS records: its hosts and their aliases.
    let hosts: BTreeSet<String> = sorted
        .iter()
        .flat_map(|s| std::iter::once(s.host.to_string()).chain(s.aliases.iter().cloned()))
        .collect();
    ctx.vsvip(&parent, &hosts);
    let mut extra = Map::new();
    extra.insert("vsvip_ref".into(), json!(name_ref("vsvip", &parent)));
    // ako routes with its policy sets: a DataScript AKO attached to the parent (its host routing) is detached,
    // not left to route beside them. The DataScript itself is left on the controller (the orphan scan reports it).
    extra.insert("vs_datascripts".into(), json!([]));
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
