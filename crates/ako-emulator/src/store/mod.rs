//! The emulator's object store. Pure in-memory logic; persistence is in `journal`. By concern:
//!
//! * this module: the stored object, the indexes and tenant visibility;
//! * [`types`]: facts and controller defaults per object type;
//! * [`validate`]: the per-type field rules (required, enums, addresses, ports, ref targets);
//! * [`cert`]: parsing uploaded certificates and keys (SSLKeyAndCertificate);
//! * [`refs`]: resolving `*_ref` fields in every accepted form, with the tenant rule;
//! * [`write`]: preparing a create/update (defaults, refs, validation, uniqueness), commit, delete;
//! * [`vip`] and [`ipam`]: VIP allocation and the DNS-domain rule;
//! * [`query`], [`render`], [`patch`]: collection filters, output form, PATCH semantics;
//! * [`restore`]: rebuilding from the journal and loading the seed.

pub mod cert;
pub mod ipam;
pub mod patch;
pub mod query;
pub mod refs;
pub mod render;
pub mod restore;
pub mod types;
pub mod validate;
pub mod vip;
pub mod write;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;

use serde_json::{Map, Value};

pub use patch::{apply_patch, subset_matches};
pub use types::{TypeInfo, apply_defaults, type_info};
pub use vip::dns_domain_error;

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

/// A stored object. `body` holds refs in canonical form `/api/<type>/<uuid>`. `Debug` masks the
/// secret fields of the body (a certificate's private key).
#[derive(Clone)]
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

/// Body fields never shown by `Debug`.
const SECRET_FIELDS: &[&str] = &["key", "key_passphrase", "password"];

impl std::fmt::Debug for Obj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut body = self.body.clone();
        for k in SECRET_FIELDS {
            if let Some(v) = body.get_mut(*k) {
                *v = Value::String(cert::SENSITIVE.into());
            }
        }
        f.debug_struct("Obj")
            .field("obj_type", &self.obj_type)
            .field("uuid", &self.uuid)
            .field("name", &self.name)
            .field("tenant", &self.tenant)
            .field("cloud", &self.cloud)
            .field("body", &body)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// The 400 message of a write with `X-Avi-Tenant: *`.
pub const WILDCARD_WRITE: &str =
    "X-Avi-Tenant: * selects all tenants and is valid for reads only; send one tenant for a write";

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
    /// The tenant a write lands in. `*` selects every tenant for reads (AKO lists with it); a write
    /// needs one tenant. avi-api.md is silent on the controller's answer: the emulator refuses with
    /// 400 rather than guessing a tenant (it used to put such writes in `admin`).
    pub fn write_tenant(&self) -> Result<&str, ApiError> {
        match self {
            Self::All => Err(ApiError::new(400, WILDCARD_WRITE)),
            Self::One(t) => Ok(t),
        }
    }

    /// Whether a ref from this tenant may name `obj`: its own tenant's objects and the shared
    /// `admin` tenant's (avi-api.md §1.8).
    pub fn may_refer_to(tenant: &str, obj: &Obj) -> bool {
        obj.tenant == tenant || obj.tenant == "admin"
    }
}

/// Change notification: the store's generation, bumped by every commit and delete, so the data plane and the
/// DNS server follow the configuration live.
#[derive(Debug)]
pub struct ChangeFeed(tokio::sync::watch::Sender<u64>);

impl Default for ChangeFeed {
    fn default() -> Self {
        Self(tokio::sync::watch::Sender::new(0))
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
    changes: ChangeFeed,
}

fn now_micros() -> u64 {
    let now = jiff::Timestamp::now();
    u64::try_from(now.as_microsecond()).unwrap_or_default()
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

    /// The number of changes committed so far.
    pub fn generation(&self) -> u64 {
        *self.changes.0.borrow()
    }

    /// A receiver that sees the generation change after each commit and delete.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.0.subscribe()
    }

    fn changed(&self) {
        self.changes.0.send_modify(|g| *g += 1);
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
}

fn not_found(obj_type: &str) -> ApiError {
    let model = type_info(obj_type).map_or("Object", |t| t.model);
    ApiError::new(404, format!("{model} object not found!"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
            json!({"name": "d", "vip": [{"ip_address": {"addr": "10.10.18.2", "type": "V4"}}]}),
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
    fn debug_of_a_stored_certificate_masks_the_key() {
        let mut store = seeded();
        let ca = ako_certs::generate_ca("debug-test", 1).expect("ca");
        let obj = create(
            &mut store,
            "sslkeyandcertificate",
            json!({"name": "c", "key": ca.key_pem, "certificate": {"certificate": ca.cert_pem}}),
        )
        .expect("cert");
        let shown = format!("{obj:?} {store:?}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        assert!(shown.contains(cert::SENSITIVE));
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
            // A field no object has matches nothing (it used to match everything).
            (f(&[("unknown_param", "x")]), vec![]),
            (
                f(&[
                    ("lb_algorithm", "LB_ALGORITHM_LEAST_CONNECTIONS"),
                    ("name", "other"),
                ]),
                vec!["other"],
            ),
            (
                f(&[("enabled", "true"), ("created_by", "someone")]),
                vec!["other"],
            ),
            (f(&[("enabled", "false")]), vec![]),
        ];
        for (filters, want) in cases {
            let got: Vec<&str> = store
                .query("pool", &sel, &filters)
                .iter()
                .map(|o| o.name.as_str())
                .collect();
            assert_eq!(got, want, "{filters:?}");
        }
        // Seed objects carry no `created_by`: AKO's own-object listing must not return them.
        let ako = f(&[("created_by", "ako-c1")]);
        assert!(store.query("network", &sel, &ako).is_empty());
        assert!(store.query("cloud", &sel, &ako).is_empty());
        let cloud = store
            .find_by_name("cloud", "Default-Cloud", "admin", None)
            .expect("cloud")
            .uuid
            .clone();
        let cloud_ref = format!("/api/cloud/{cloud}");
        let filters = f(&[("cloud_ref", &cloud_ref), ("created_by", "someone")]);
        let by_ref: Vec<&str> = store
            .query("pool", &sel, &filters)
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(
            by_ref,
            vec!["other"],
            "a ref field filter compares the target uuid"
        );
    }
}
