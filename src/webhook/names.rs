//! The controller's names, as the webhook needs them to review a HostRule or an HTTPRule: what a rule names
//! must exist. A name found is trusted for [`TTL`] (one found missing is asked again at every review); a name not known when a review arrives is asked before deciding,
//! within the review's deadline (at most [`ASK_WITHIN`]). A controller that does not answer in time leaves the
//! name unknown, and an unknown name never denies: the cluster is never blocked by the controller, and the
//! reconciler reports on the rule's status.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use ako_avi::AviClient;
use ako_core::crd::{HostRuleSpec, HttpRuleSpec, L4RuleSpec, Lookup, RuleKind};

/// How long an answer is trusted.
pub const TTL: Duration = Duration::from_secs(30);
/// The longest a review waits for the controller.
pub const ASK_WITHIN: Duration = Duration::from_secs(2);

pub struct Names {
    client: AviClient,
    cache: RwLock<HashMap<(String, String), (bool, Instant)>>,
    /// Controller certificates by name: the DNS names each is valid for, and when that was read.
    certs: RwLock<HashMap<String, (Vec<String>, Instant)>>,
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Names")
            .field("cached", &self.cache.read().len())
            .finish()
    }
}

impl Names {
    pub fn new(client: AviClient) -> Self {
        Self {
            client,
            cache: RwLock::new(HashMap::new()),
            certs: RwLock::new(HashMap::new()),
        }
    }

    /// What is known now (no I/O).
    pub fn lookup(&self, obj_type: &str, name: &str) -> Lookup {
        match self
            .cache
            .read()
            .get(&(obj_type.to_string(), name.to_string()))
        {
            Some((found, at)) if at.elapsed() < TTL => {
                if *found {
                    Lookup::Found
                } else {
                    Lookup::Missing
                }
            }
            _ => Lookup::Unknown,
        }
    }

    /// Asks the controller about the names of a review body that are not known, if it is a HostRule's or an
    /// HTTPRule's; waits at most `within`.
    pub async fn prefetch(&self, body: &[u8], within: Duration) {
        // Only "found" is trusted for a while: a name found missing is asked again at the next review, so the
        // apply that follows creating the profile is admitted at once.
        let wanted: Vec<(&'static str, String)> = rule_refs(body)
            .into_iter()
            .filter(|(t, n)| self.lookup(t, n) != Lookup::Found)
            .collect();
        if wanted.is_empty() {
            return;
        }
        // A certificate a HostRule names is read whole (its names are checked against the FQDN): found or not
        // in the same request.
        let certs: Vec<&String> = wanted
            .iter()
            .filter(|(t, _)| *t == "sslkeyandcertificate")
            .map(|(_, n)| n)
            .collect();
        let cert_reads =
            futures::future::join_all(certs.iter().map(|n| self.client.certificate_of(n)));
        let asks = wanted
            .iter()
            .filter(|(t, _)| *t != "sslkeyandcertificate")
            .map(|(t, n)| self.client.exists(t, n));
        let both =
            async { futures::future::join(futures::future::join_all(asks), cert_reads).await };
        let answers = tokio::time::timeout(within.min(ASK_WITHIN), both).await;
        let Ok((answers, cert_answers)) = answers else {
            tracing::warn!(
                names = wanted.len(),
                "the controller did not say in time whether a rule's names exist; the review goes on without"
            );
            return;
        };
        let now = Instant::now();
        let mut cache = self.cache.write();
        if cache.len() > 10_000 {
            cache.retain(|_, (_, at)| at.elapsed() < TTL);
        }
        let mut known = self.certs.write();
        if known.len() > 10_000 {
            known.retain(|_, (_, at)| at.elapsed() < TTL);
        }
        for (n, a) in certs.iter().zip(cert_answers) {
            match a {
                Ok(Some((pem, listed))) => {
                    cache.insert(("sslkeyandcertificate".into(), (*n).clone()), (true, now));
                    // The names in the certificate itself; what the controller lists when its PEM cannot be read.
                    match ako_certs::dns_names(&pem) {
                        Ok(names) => {
                            known.insert((*n).clone(), (names, now));
                        }
                        Err(_) if !listed.is_empty() => {
                            known.insert((*n).clone(), (listed, now));
                        }
                        Err(_) => {
                            known.remove(*n);
                        }
                    }
                }
                Ok(None) => {
                    cache.insert(("sslkeyandcertificate".into(), (*n).clone()), (false, now));
                    known.remove(*n);
                }
                Err(error) => {
                    tracing::warn!(collection = "sslkeyandcertificate", name = %n, %error, "could not read a certificate a rule names");
                }
            }
        }
        let others = wanted
            .iter()
            .filter(|(t, _)| *t != "sslkeyandcertificate")
            .cloned();
        for ((t, n), a) in others.zip(answers) {
            match a {
                Ok(found) => {
                    cache.insert((t.to_string(), n), (found, now));
                }
                Err(error) => {
                    tracing::warn!(collection = t, name = %n, %error, "could not ask the controller about a name a rule uses");
                }
            }
        }
    }
}

impl ako_core::crd::ControllerView for Names {
    fn lookup(&self, obj_type: &str, name: &str) -> Lookup {
        Names::lookup(self, obj_type, name)
    }

    fn cert_names(&self, name: &str) -> Option<Vec<String>> {
        self.certs
            .read()
            .get(name)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(names, _)| names.clone())
    }
}

/// The controller names a review's object names, when it is a HostRule or an HTTPRule (a cheap look first: the
/// body must mention ako.vmware.com).
pub fn rule_refs(body: &[u8]) -> Vec<(&'static str, String)> {
    const GROUP: &[u8] = b"ako.vmware.com";
    if !body.windows(GROUP.len()).any(|w| w == GROUP) {
        return Vec::new();
    }
    #[derive(serde::Deserialize)]
    struct Kind {
        group: String,
        kind: String,
    }
    #[derive(serde::Deserialize)]
    struct Obj {
        spec: Option<serde_json::Value>,
    }
    #[derive(serde::Deserialize)]
    struct Req {
        kind: Kind,
        object: Option<Obj>,
    }
    #[derive(serde::Deserialize)]
    struct Review {
        request: Option<Req>,
    }
    let Ok(Review { request: Some(r) }) = serde_json::from_slice::<Review>(body) else {
        return Vec::new();
    };
    let Some(spec) = r.object.and_then(|o| o.spec) else {
        return Vec::new();
    };
    let refs = match RuleKind::of(&r.kind.group, &r.kind.kind) {
        Some(RuleKind::HostRule) => serde_json::from_value::<HostRuleSpec>(spec)
            .map(|s| s.refs())
            .unwrap_or_default(),
        Some(RuleKind::HttpRule) => serde_json::from_value::<HttpRuleSpec>(spec)
            .map(|s| s.refs())
            .unwrap_or_default(),
        Some(RuleKind::L4Rule) => serde_json::from_value::<L4RuleSpec>(spec)
            .map(|s| s.refs())
            .unwrap_or_default(),
        Some(RuleKind::AviInfraSetting) => {
            serde_json::from_value::<ako_core::crd::InfraSettingSpec>(spec)
                .map(|s| s.refs())
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    refs.into_iter()
        .filter(|r| !r.name.is_empty())
        .map(|r| (r.obj_type, r.name))
        .collect()
}
