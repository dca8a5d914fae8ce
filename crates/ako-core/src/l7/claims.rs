//! Who gets a host: the Ingresses claiming it (oldest first), the routes each keeps, and the certificate it is
//! served with.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) struct Claimant {
    pub(super) key: ObjKey,
    pub(super) created: Option<i64>,
    pub(super) intent: IngressIntent,
    pub(super) enable_tls: bool,
    /// The AviInfraSetting its IngressClass names.
    pub(super) infra: Option<String>,
    /// Position in the input.
    pub(super) pos: usize,
}

impl Claimant {
    pub(super) fn order(&self) -> Order<'_> {
        Order::new(self.created, &self.key.namespace, &self.key.name)
    }
}

/// One accepted route of a host.
#[derive(Debug, Clone)]
pub(super) struct RoutePlan {
    pub(super) claimant: usize,
    pub(super) m: PathMatch,
    pub(super) raw_path: String,
    pub(super) backend: Backend,
    pub(super) field: String,
}

#[derive(Debug, Clone)]
pub(super) enum CertSource {
    Secret(ObjKey, TlsPair),
    Default,
    /// Certificates on the controller, by name (a HostRule's `tls.sslKeyCertificate` of `type: ref`).
    Controller(Vec<String>),
}

pub(super) struct HostPlan {
    pub(super) host: String,
    pub(super) owner_ns: String,
    /// Accepted claimants, oldest first.
    pub(super) claimants: Vec<usize>,
    pub(super) routes: Vec<RoutePlan>,
    pub(super) cert: Option<CertSource>,
    /// HTTP is redirected to HTTPS (a `spec.tls` certificate); false for the default certificate of
    /// `enable-tls`, which adds HTTPS next to HTTP.
    pub(super) redirect: bool,
}

/// Host order in a policy: exact hosts first (by name), then wildcards, longest suffix first.
pub(super) fn host_order(host: &str) -> (bool, Reverse<usize>, &str) {
    (host.starts_with('*'), Reverse(host.len()), host)
}

/// The claimants of each host to translate (among `only` when given).
pub(super) fn index_hosts<'c>(
    claimants: &'c [Claimant],
    only: Option<&BTreeSet<String>>,
) -> BTreeMap<&'c str, Vec<usize>> {
    let mut by_host: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (ci, c) in claimants.iter().enumerate() {
        for hr in &c.intent.hosts {
            if only.is_some_and(|o| !o.contains(&hr.host)) {
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
pub(super) fn plan_host(
    host: &str,
    mut cis: Vec<usize>,
    claimants: &[Claimant],
    outcomes: &mut [IngressOutcome],
    cfg: &Config,
    checks: &mut CertChecks<'_>,
    forced_cert: Option<CertSource>,
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
                ).with_reason(intent::reasons::HOST_ALREADY_CLAIMED));
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
                        ).with_reason(intent::reasons::DUPLICATE_HOST_PATH));
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

        // A HostRule's controller certificate takes precedence over the Ingresses' Secrets (as in AKO), and makes
        // an insecure host secure.
        let Chosen {
            cert,
            redirect,
            withheld,
        } = match forced_cert {
            Some(cert) => Chosen::tls(cert, true),
            None => choose_cert(host, &accepted, claimants, outcomes, checks),
        };
        if withheld {
            // No route at all rather than plain HTTP where spec.tls asked for HTTPS (AKO does the same): the
            // host has no objects and no address until its certificate is usable; the Warning says why.
            return HostPlan {
                host: host.to_string(),
                owner_ns,
                claimants: Vec::new(),
                routes: Vec::new(),
                cert: None,
                redirect: false,
            };
        }
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

/// The claimant whose IngressClass places a host: the oldest.
pub(super) fn placing<'c>(cis: &[usize], claimants: &'c [Claimant]) -> Option<&'c Claimant> {
    cis.iter()
        .map(|&ci| &claimants[ci])
        .min_by(|a, b| a.order().cmp(&b.order()))
}

/// Certificate checks, each certificate parsed once per translation.
pub(super) struct CertChecks<'a> {
    pub(super) input: &'a L7Input<'a>,
    pub(super) default: Option<Result<(), String>>,
    pub(super) secrets: HashMap<ObjKey, Result<(), String>>,
}

impl CertChecks<'_> {
    /// Whether the default certificate is usable; the error completes "Secret router-certs-default ...".
    pub(super) fn default_cert(&mut self) -> Result<(), String> {
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

    pub(super) fn secret(&mut self, key: &ObjKey, pair: &TlsPair) -> Result<(), String> {
        self.secrets
            .entry(key.clone())
            .or_insert_with(|| pair.problem.clone().map_or(Ok(()), Err))
            .clone()
    }
}

/// How a host is served: with which certificate, whether HTTP redirects to HTTPS, or not at all (`withheld`:
/// spec.tls asks for HTTPS and its certificate is missing or unusable).
pub(super) struct Chosen {
    pub(super) cert: Option<CertSource>,
    pub(super) redirect: bool,
    pub(super) withheld: bool,
}

impl Chosen {
    const PLAIN: Chosen = Chosen {
        cert: None,
        redirect: false,
        withheld: false,
    };
    const WITHHELD: Chosen = Chosen {
        cert: None,
        redirect: false,
        withheld: true,
    };

    fn tls(cert: CertSource, redirect: bool) -> Self {
        Chosen {
            cert: Some(cert),
            redirect,
            withheld: false,
        }
    }
}

/// The certificate of a host: the oldest `spec.tls` entry naming it decides; without one, `enable-tls` and the
/// default certificate add HTTPS next to HTTP.
pub(super) fn choose_cert(
    host: &str,
    accepted: &[usize],
    claimants: &[Claimant],
    outcomes: &mut [IngressOutcome],
    checks: &mut CertChecks<'_>,
) -> Chosen {
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
                Ok(()) => Chosen::tls(CertSource::Default, true),
                Err(why) => {
                    outcomes[ci].problems.push(Problem::warn(
                        &field,
                        format!("{field} names no secretName and the default certificate (Secret {DEFAULT_CERT_SECRET}) {why}; {}", withheld(host)),
                    ));
                    Chosen::WITHHELD
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
                Ok(()) => return Chosen::tls(CertSource::Secret(key, pair.clone()), true),
                Err(e) => format!("TLS Secret {key} ({field}) is not usable: {e}"),
            },
        };
        outcomes[ci].problems.push(Problem::warn(
            &field,
            format!("{reason}; {}", withheld(host)),
        ));
        return Chosen::WITHHELD;
    }
    let asking: Vec<usize> = accepted
        .iter()
        .copied()
        .filter(|ci| claimants[*ci].enable_tls)
        .collect();
    if asking.is_empty() {
        return Chosen::PLAIN;
    }
    match checks.default_cert() {
        Ok(()) => Chosen::tls(CertSource::Default, false),
        Err(why) => {
            for ci in asking {
                outcomes[ci].problems.push(Problem::warn(
                    format!("metadata.annotations[{ENABLE_TLS_ANNOTATION}]"),
                    format!("{ENABLE_TLS_ANNOTATION} asks for HTTPS with the default certificate, but Secret {DEFAULT_CERT_SECRET} {why}; host {host} is served over HTTP only"),
                ));
            }
            Chosen::PLAIN
        }
    }
}

/// What a host whose spec.tls certificate is not usable gets, in words.
fn withheld(host: &str) -> String {
    format!(
        "host {host} is not served until it is fixed (no route and no address: serving it over plain HTTP would \
         downgrade what spec.tls asks for)"
    )
}
