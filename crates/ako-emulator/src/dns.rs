//! The Avi DNS virtual service: an authoritative server (hickory-server, UDP and TCP) for the DNS profile's
//! domains. A/AAAA for the `dns_info` fqdns of VsVips used by an enabled virtual service, TTL from `dns_info`
//! (else the profile's, else 30), NXDOMAIN for other names inside a domain, REFUSED outside every domain, SOA
//! and NS at each domain's apex. The zone data is rebuilt from the store after each change.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, NS, SOA};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use serde_json::Value;

use super::server::App;
use super::store::Store;

/// TTL of a record whose `dns_info` and DNS profile give none.
pub const DEFAULT_TTL: u32 = 30;
/// How long a TCP connection may stay idle.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors starting the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("DNS listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// One authoritative domain of a DNS profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub name: LowerName,
    /// The profile's TTL, used for the SOA and records without their own.
    pub ttl: u32,
}

/// The records served, rebuilt from the store.
#[derive(Debug, Default)]
pub struct Zones {
    pub domains: Vec<Domain>,
    /// fqdn -> (address, ttl), in VsVip order.
    pub records: BTreeMap<LowerName, Vec<(IpAddr, u32)>>,
    /// SOA serial: the store generation.
    pub serial: u32,
    /// Address of the name server (glue for `ns1.<domain>`), when it listens on a specific address.
    pub ns_addr: Option<IpAddr>,
}

fn uuid_of(r: Option<&Value>) -> Option<&str> {
    r?.as_str()?.rsplit('/').next()
}

fn lower(name: &str) -> Option<LowerName> {
    let mut n = Name::from_ascii(name.trim_end_matches('.')).ok()?;
    n.set_fqdn(true);
    Some(LowerName::from(n.to_lowercase()))
}

impl Zones {
    /// Reads the zones from the store: every cloud's DNS profile domains, and the records of VsVips that an
    /// enabled virtual service uses.
    pub fn from_store(store: &Store, ns_addr: Option<IpAddr>) -> Self {
        let mut zones = Self {
            serial: u32::try_from(store.generation() % u64::from(u32::MAX)).unwrap_or_default(),
            ns_addr,
            ..Self::default()
        };
        let mut profile_ttl: Option<u32> = None;
        for cloud in store.iter_type("cloud") {
            let Some((_, domains, ttl)) = store.dns_domains(&cloud.uuid) else {
                continue;
            };
            let ttl = ttl
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or(DEFAULT_TTL);
            profile_ttl.get_or_insert(ttl);
            for d in domains {
                if let Some(name) = lower(d.trim_start_matches('.'))
                    && !zones.domains.iter().any(|x| x.name == name)
                {
                    zones.domains.push(Domain { name, ttl });
                }
            }
        }
        let enabled_vips: HashSet<&str> = store
            .iter_type("virtualservice")
            .filter(|vs| vs.body.get("enabled") != Some(&Value::Bool(false)))
            .filter_map(|vs| uuid_of(vs.body.get("vsvip_ref")))
            .collect();
        for vsvip in store.iter_type("vsvip") {
            if !enabled_vips.contains(vsvip.uuid.as_str()) {
                continue;
            }
            let addrs = ako_core::l4::vips_of(&vsvip.body);
            for info in vsvip
                .body
                .get("dns_info")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(fqdn) = info.get("fqdn").and_then(Value::as_str).and_then(lower) else {
                    continue;
                };
                let ttl = info
                    .get("ttl")
                    .and_then(Value::as_u64)
                    .and_then(|t| u32::try_from(t).ok())
                    .or(profile_ttl)
                    .unwrap_or(DEFAULT_TTL);
                let limit = info
                    .get("num_records_in_response")
                    .and_then(Value::as_u64)
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .unwrap_or(usize::MAX);
                let entry = zones.records.entry(fqdn).or_default();
                for ip in addrs.iter().take(limit) {
                    if !entry.iter().any(|(a, _)| a == ip) {
                        entry.push((*ip, ttl));
                    }
                }
            }
        }
        zones
    }

    /// The authoritative domain holding `name` (the longest), if any.
    pub fn domain_of(&self, name: &LowerName) -> Option<&Domain> {
        self.domains
            .iter()
            .filter(|d| d.name.zone_of(name))
            .max_by_key(|d| d.name.num_labels())
    }

    fn ns_name(domain: &Domain) -> Option<Name> {
        Name::from_ascii("ns1")
            .ok()?
            .append_domain(&Name::from(domain.name.clone()))
            .ok()
    }

    fn soa(&self, domain: &Domain) -> Option<Record> {
        let apex = Name::from(domain.name.clone());
        let mname = Self::ns_name(domain)?;
        let rname = Name::from_ascii("hostmaster")
            .ok()?
            .append_domain(&apex)
            .ok()?;
        let soa = SOA::new(mname, rname, self.serial, 3600, 600, 86400, domain.ttl);
        Some(Record::from_rdata(apex, domain.ttl, RData::SOA(soa)))
    }

    /// Answers one question: response code, answers and authority records.
    pub fn answer(&self, name: &LowerName, qtype: RecordType) -> Answer {
        let Some(domain) = self.domain_of(name) else {
            return Answer::code(ResponseCode::Refused);
        };
        let owner = Name::from(name.clone());
        let soa = self.soa(domain);
        let mut answers = Vec::new();
        let mut exists = false;
        if let Some(addrs) = self.records.get(name) {
            exists = true;
            for (ip, ttl) in addrs {
                match (ip, qtype) {
                    (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => answers.push(
                        Record::from_rdata(owner.clone(), *ttl, RData::A(A::from(*v4))),
                    ),
                    (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => answers.push(
                        Record::from_rdata(owner.clone(), *ttl, RData::AAAA(AAAA::from(*v6))),
                    ),
                    _ => {}
                }
            }
        }
        if *name == domain.name {
            exists = true;
            if matches!(qtype, RecordType::SOA | RecordType::ANY) {
                answers.extend(soa.clone());
            }
            if matches!(qtype, RecordType::NS | RecordType::ANY)
                && let Some(ns) = Self::ns_name(domain)
            {
                answers.push(Record::from_rdata(
                    owner.clone(),
                    domain.ttl,
                    RData::NS(NS(ns)),
                ));
            }
        }
        if let Some(ns) = Self::ns_name(domain)
            && LowerName::from(ns.clone()) == *name
            && let Some(ip) = self.ns_addr
        {
            exists = true;
            match (ip, qtype) {
                (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => {
                    answers.push(Record::from_rdata(ns, domain.ttl, RData::A(A::from(v4))));
                }
                (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => {
                    answers.push(Record::from_rdata(
                        ns,
                        domain.ttl,
                        RData::AAAA(AAAA::from(v6)),
                    ));
                }
                _ => {}
            }
        }
        let code = if exists {
            ResponseCode::NoError
        } else {
            ResponseCode::NXDomain
        };
        let authority = if answers.is_empty() {
            soa.into_iter().collect()
        } else {
            Vec::new()
        };
        Answer {
            code,
            answers,
            authority,
        }
    }
}

/// The outcome of one question.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub code: ResponseCode,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
}

impl Answer {
    fn code(code: ResponseCode) -> Self {
        Self {
            code,
            answers: Vec::new(),
            authority: Vec::new(),
        }
    }
}

/// The request handler: answers from the current zones.
struct Handler {
    zones: Arc<ArcSwap<Zones>>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let resp_edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512));
            e
        });
        let builder = MessageResponseBuilder::new(&request.queries, resp_edns.as_ref());
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.recursion_available = false;
        let question = match request.queries.queries() {
            [q] if request.metadata.op_code == OpCode::Query => Some(q),
            _ => None,
        };
        let result = match question {
            None => {
                let code = if request.metadata.op_code == OpCode::Query {
                    ResponseCode::FormErr
                } else {
                    ResponseCode::NotImp
                };
                response_handle
                    .send_response(builder.error_msg(&request.metadata, code))
                    .await
            }
            Some(q) => {
                let zones = self.zones.load();
                let answer = zones.answer(q.name(), q.query_type());
                if answer.code == ResponseCode::Refused {
                    metadata.authoritative = false;
                }
                metadata.response_code = answer.code;
                response_handle
                    .send_response(builder.build(
                        metadata,
                        answer.answers.iter(),
                        answer.authority.iter(),
                        std::iter::empty(),
                        std::iter::empty(),
                    ))
                    .await
            }
        };
        match result {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, "DNS answer not sent");
                let mut m = Metadata::response_from_request(&request.metadata);
                m.response_code = ResponseCode::ServFail;
                ResponseInfo::from(hickory_server::proto::op::Header {
                    metadata: m,
                    counts: Default::default(),
                })
            }
        }
    }
}

/// A running DNS server; stops when dropped or shut down.
pub struct DnsHandle {
    addr: SocketAddr,
    zones: Arc<ArcSwap<Zones>>,
    server: hickory_server::Server<Handler>,
    follow: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for DnsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DnsHandle {
    /// The address served, UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The zones currently served.
    pub fn zones(&self) -> Arc<Zones> {
        self.zones.load_full()
    }

    pub async fn shutdown(mut self) {
        self.follow.abort();
        let _ = self.server.shutdown_gracefully().await;
    }
}

impl Drop for DnsHandle {
    fn drop(&mut self) {
        self.follow.abort();
        self.server.shutdown_token().cancel();
    }
}

/// Binds UDP and TCP on `listen` (port 0: one free port for both) and serves the store's zones, following
/// every change.
pub async fn spawn(app: Arc<App>, listen: SocketAddr) -> Result<DnsHandle, DnsError> {
    let bind_err = |addr, source| DnsError::Bind { addr, source };
    let (udp, tcp) = bind_pair(listen).await.map_err(|e| bind_err(listen, e))?;
    let addr = udp.local_addr().map_err(|e| bind_err(listen, e))?;
    let ns_addr = (!addr.ip().is_unspecified()).then_some(addr.ip());
    let (zones, mut changes) = {
        let store = app.store.lock();
        (
            Arc::new(ArcSwap::from_pointee(Zones::from_store(&store, ns_addr))),
            store.subscribe(),
        )
    };
    let follow = {
        let zones = Arc::clone(&zones);
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let fresh = Zones::from_store(&app.store.lock(), ns_addr);
                zones.store(Arc::new(fresh));
            }
        })
    };
    let mut server = hickory_server::Server::new(Handler {
        zones: Arc::clone(&zones),
    });
    server.register_socket(udp);
    server.register_listener(tcp, TCP_TIMEOUT, 64);
    tracing::info!(%addr, "Avi DNS listening (UDP and TCP)");
    Ok(DnsHandle {
        addr,
        zones,
        server,
        follow,
    })
}

/// Binds a UDP socket and a TCP listener on the same address; with port 0, retries until one port is free for
/// both.
async fn bind_pair(
    listen: SocketAddr,
) -> std::io::Result<(tokio::net::UdpSocket, tokio::net::TcpListener)> {
    let mut last = None;
    for _ in 0..16 {
        let udp = tokio::net::UdpSocket::bind(listen).await?;
        let addr = udp.local_addr()?;
        match tokio::net::TcpListener::bind(addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if listen.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port for UDP and TCP")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones() -> Zones {
        let mut z = Zones {
            domains: vec![Domain {
                name: lower("avi.jarvis.lab").expect("name"),
                ttl: 30,
            }],
            serial: 7,
            ..Zones::default()
        };
        z.records.insert(
            lower("app.avi.jarvis.lab").expect("name"),
            vec![("127.10.18.10".parse().expect("ip"), 60)],
        );
        z
    }

    #[test]
    fn names_inside_the_domain_answer_or_are_nxdomain_and_outside_are_refused() {
        let z = zones();
        let a = z.answer(&lower("APP.avi.jarvis.lab").expect("n"), RecordType::A);
        assert_eq!(a.code, ResponseCode::NoError);
        assert_eq!(a.answers.len(), 1);
        assert_eq!(a.answers[0].ttl, 60);
        let aaaa = z.answer(&lower("app.avi.jarvis.lab").expect("n"), RecordType::AAAA);
        assert_eq!((aaaa.code, aaaa.answers.len()), (ResponseCode::NoError, 0));
        assert_eq!(aaaa.authority.len(), 1, "NODATA carries the SOA");
        let nx = z.answer(&lower("nope.avi.jarvis.lab").expect("n"), RecordType::A);
        assert_eq!(nx.code, ResponseCode::NXDomain);
        assert_eq!(nx.authority[0].record_type(), RecordType::SOA);
        let out = z.answer(&lower("example.com").expect("n"), RecordType::A);
        assert_eq!(out.code, ResponseCode::Refused);
        let lookalike = z.answer(&lower("evilavi.jarvis.lab").expect("n"), RecordType::A);
        assert_eq!(lookalike.code, ResponseCode::Refused);
    }

    #[test]
    fn the_apex_has_soa_and_ns() {
        let z = zones();
        let apex = lower("avi.jarvis.lab").expect("n");
        let soa = z.answer(&apex, RecordType::SOA);
        assert_eq!(soa.answers[0].record_type(), RecordType::SOA);
        let ns = z.answer(&apex, RecordType::NS);
        assert_eq!(ns.answers[0].record_type(), RecordType::NS);
    }
}
