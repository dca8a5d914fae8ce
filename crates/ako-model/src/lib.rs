//! Typed models of the Avi objects ako reads and writes, and the controller's published schemas ([`schema`]).
//! Every struct keeps the fields it does not name in `extra`, so an object read back and PUT again never loses
//! what the controller or another tool set. Pure: serde only, shared by the core (which builds write bodies), the
//! client and the emulator (which validates writes against the same schemas).

pub mod redact;
pub mod schema;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Unknown fields, kept verbatim.
pub type Extra = Map<String, Value>;

/// An object type of the Avi REST API (`/api/<OBJ_TYPE>`).
pub trait AviObject: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The collection path segment, e.g. `virtualservice`.
    const OBJ_TYPE: &'static str;
    /// The model name used in controller messages, e.g. `VirtualService`.
    const MODEL: &'static str;
    fn name(&self) -> &str;
    fn uuid(&self) -> Option<&str>;
    /// `created_by`: who created the object (AKO: `ako-<clusterName>`).
    fn created_by(&self) -> Option<&str>;
    /// Whether the kind has `created_by` in the controller's schema (a VsVip has not).
    const HAS_CREATED_BY: bool = true;
    /// Whether the creator `ako-<cluster>` owns this object: its `created_by` is that; for a kind without
    /// `created_by`, its name starts with `<cluster>--` and its `clustername` marker names the cluster (how AKO
    /// finds its VsVips).
    fn owned_by(&self, creator: &str) -> bool {
        if Self::HAS_CREATED_BY {
            return self.created_by() == Some(creator);
        }
        let Some(cluster) = creator.strip_prefix("ako-") else {
            return false;
        };
        let marked = serde_json::to_value(self).ok().is_some_and(|v| {
            v.get("markers")
                .and_then(serde_json::Value::as_array)
                .is_some_and(|markers| {
                    markers.iter().any(|m| {
                        m.get("key").and_then(serde_json::Value::as_str) == Some("clustername")
                            && m.get("values")
                                .and_then(serde_json::Value::as_array)
                                .is_some_and(|vals| {
                                    vals.iter().any(|x| x.as_str() == Some(cluster))
                                })
                    })
                })
        });
        self.name().starts_with(&format!("{cluster}--"))
            && (marked || self.created_by() == Some(creator))
    }
}

/// Whether a kind has `created_by` in the controller's schema (API 30.2.1): VsVip and VrfContext have not.
pub const fn kind_has_created_by(obj_type: &str) -> bool {
    const fn same(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
    let t = obj_type.as_bytes();
    !(same(t, b"vsvip") || same(t, b"vrfcontext"))
}

macro_rules! avi_object {
    ($(#[$meta:meta])* $ty:ident, $obj_type:literal, $model:literal { $($(#[$fmeta:meta])* pub $field:ident : $fty:ty,)* }) => {
        avi_object!(@derive [Debug] $(#[$meta])* $ty, $obj_type, $model { $($(#[$fmeta])* pub $field : $fty,)* });
    };
    // `@derive []`: the type implements `Debug` by hand (to redact secrets).
    (@derive [$($derive:ident),*] $(#[$meta:meta])* $ty:ident, $obj_type:literal, $model:literal { $($(#[$fmeta:meta])* pub $field:ident : $fty:ty,)* }) => {
        $(#[$meta])*
        #[derive($($derive,)* Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct $ty {
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub url: Option<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub uuid: Option<String>,
            pub name: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub tenant_ref: Option<String>,
            #[serde(default, rename = "_last_modified", skip_serializing_if = "Option::is_none")]
            pub last_modified: Option<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub created_by: Option<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub description: Option<String>,
            $($(#[$fmeta])* #[serde(default, skip_serializing_if = "Option::is_none")] pub $field: Option<$fty>,)*
            #[serde(flatten)]
            pub extra: Extra,
        }

        impl AviObject for $ty {
            const OBJ_TYPE: &'static str = $obj_type;
            const MODEL: &'static str = $model;
            const HAS_CREATED_BY: bool = kind_has_created_by($obj_type);
            fn name(&self) -> &str {
                &self.name
            }
            fn uuid(&self) -> Option<&str> {
                self.uuid.as_deref()
            }
            fn created_by(&self) -> Option<&str> {
                self.created_by.as_deref()
            }
        }
    };
}

macro_rules! nested {
    ($(#[$meta:meta])* $ty:ident { $($(#[$fmeta:meta])* pub $field:ident : $fty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct $ty {
            $($(#[$fmeta])* #[serde(default, skip_serializing_if = "Option::is_none")] pub $field: Option<$fty>,)*
            #[serde(flatten)]
            pub extra: Extra,
        }
    };
}

nested!(
    /// `{addr, type}` with type `V4`, `V6` or `DNS`.
    IpAddr {
        pub addr: String,
        #[serde(rename = "type")]
        pub ip_type: String,
    }
);

impl IpAddr {
    pub fn v4(addr: impl Into<String>) -> Self {
        Self {
            addr: Some(addr.into()),
            ip_type: Some("V4".into()),
            extra: Extra::new(),
        }
    }
}

nested!(
    /// `{ip_addr, mask}`.
    IpAddrPrefix {
        pub ip_addr: IpAddr,
        pub mask: u8,
    }
);

nested!(
    /// `{begin, end}`.
    IpAddrRange {
        pub begin: IpAddr,
        pub end: IpAddr,
    }
);

nested!(
    /// A VsVip's IPAM request: network and optionally the subnet.
    IpamNetworkSubnet {
        pub network_ref: String,
        pub subnet: IpAddrPrefix,
        pub subnet_uuid: String,
    }
);

nested!(
    /// One VIP of a VsVip.
    Vip {
        pub vip_id: String,
        pub ip_address: IpAddr,
        pub enabled: bool,
        pub auto_allocate_ip: bool,
        pub auto_allocate_ip_type: String,
        pub ipam_network_subnet: IpamNetworkSubnet,
        pub prefix_length: u8,
    }
);

nested!(
    /// A DNS record request of a VsVip.
    DnsInfo {
        pub fqdn: String,
        #[serde(rename = "type")]
        pub record_type: String,
        pub ttl: u32,
        pub num_records_in_response: u32,
        pub algorithm: String,
    }
);

nested!(
    /// A listening port of a VirtualService.
    Service {
        pub port: u32,
        pub port_range_end: u32,
        pub enable_ssl: bool,
        pub enable_http2: bool,
        pub override_network_profile_ref: String,
        pub override_application_profile_ref: String,
    }
);

nested!(
    /// `{index, http_policy_set_ref}` on a VirtualService.
    HttpPolicies {
        pub index: i32,
        pub http_policy_set_ref: String,
    }
);

nested!(
    /// A pool member.
    Server {
        pub ip: IpAddr,
        pub port: u32,
        pub hostname: String,
        pub enabled: bool,
        pub ratio: u32,
    }
);

nested!(
    /// A PoolGroup member.
    PoolGroupMember {
        pub pool_ref: String,
        pub ratio: u32,
        pub priority_label: String,
        pub deployment_state: String,
    }
);

nested!(
    /// A rule of an HTTP request policy.
    HttpRequestRule {
        pub name: String,
        pub index: i32,
        pub enable: bool,
        #[serde(rename = "match")]
        pub match_target: Value,
        pub switching_action: Value,
    }
);

nested!(
    /// `http_request_policy` of an HTTPPolicySet.
    HttpRequestPolicy {
        pub rules: Vec<HttpRequestRule>,
    }
);

nested!(
    /// `certificate` of an SSLKeyAndCertificate.
    SslCertificate {
        pub certificate: String,
        pub subject: Value,
        pub not_after: String,
        pub expiry_status: String,
    }
);

nested!(
    /// `static_ip_ranges[]` of a configured subnet.
    StaticIpRange {
        pub range: IpAddrRange,
        #[serde(rename = "type")]
        pub range_type: String,
    }
);

nested!(
    /// `configured_subnets[]` of a Network.
    ConfiguredSubnet {
        pub prefix: IpAddrPrefix,
        pub static_ip_ranges: Vec<StaticIpRange>,
        /// Pre-20.1.3 form, still returned by older controllers.
        pub static_ranges: Vec<IpAddrRange>,
    }
);

nested!(
    /// `internal_profile.dns_service_domain[]`.
    DnsServiceDomain {
        pub domain_name: String,
        pub pass_through: bool,
        pub record_ttl: u32,
    }
);

nested!(
    /// `internal_profile.usable_networks[]`.
    UsableNetwork {
        pub nw_ref: String,
    }
);

nested!(
    /// `internal_profile` of an IpamDnsProviderProfile.
    IpamInternalProfile {
        pub dns_service_domain: Vec<DnsServiceDomain>,
        pub usable_networks: Vec<UsableNetwork>,
        /// Pre-20.1.3 form.
        pub usable_network_refs: Vec<String>,
        pub ttl: u32,
        pub dns_virtualservice_ref: String,
    }
);

avi_object!(
    /// `/api/virtualservice`.
    VirtualService, "virtualservice", "VirtualService" {
        pub cloud_ref: String,
        pub enabled: bool,
        #[serde(rename = "type")]
        pub vs_type: String,
        pub vsvip_ref: String,
        pub services: Vec<Service>,
        pub pool_ref: String,
        pub pool_group_ref: String,
        pub application_profile_ref: String,
        pub network_profile_ref: String,
        pub se_group_ref: String,
        pub vrf_context_ref: String,
        pub ssl_key_and_certificate_refs: Vec<String>,
        pub ssl_profile_ref: String,
        pub http_policies: Vec<HttpPolicies>,
        pub vh_parent_vs_ref: String,
        pub vh_domain_name: Vec<String>,
        pub vh_type: String,
        pub traffic_enabled: bool,
        pub east_west_placement: bool,
        pub cloud_config_cksum: String,
        pub markers: Vec<Value>,
    }
);

avi_object!(
    /// `/api/vsvip`.
    VsVip, "vsvip", "VsVip" {
        pub cloud_ref: String,
        pub vrf_context_ref: String,
        pub vip: Vec<Vip>,
        pub dns_info: Vec<DnsInfo>,
        pub east_west_placement: bool,
        pub vsvip_cloud_config_cksum: String,
        pub markers: Vec<Value>,
    }
);

avi_object!(
    /// `/api/pool`.
    Pool, "pool", "Pool" {
        pub cloud_ref: String,
        pub enabled: bool,
        pub servers: Vec<Server>,
        pub default_server_port: u32,
        pub lb_algorithm: String,
        pub health_monitor_refs: Vec<String>,
        pub vrf_ref: String,
        pub cloud_config_cksum: String,
        pub markers: Vec<Value>,
    }
);

avi_object!(
    /// `/api/poolgroup`.
    PoolGroup, "poolgroup", "PoolGroup" {
        pub cloud_ref: String,
        pub members: Vec<PoolGroupMember>,
        pub min_servers: u32,
        pub implicit_priority_labels: bool,
        pub cloud_config_cksum: String,
        pub markers: Vec<Value>,
    }
);

avi_object!(
    /// `/api/httppolicyset`.
    HttpPolicySet, "httppolicyset", "HTTPPolicySet" {
        pub http_request_policy: HttpRequestPolicy,
        pub http_security_policy: Value,
        pub http_response_policy: Value,
        pub is_internal_policy: bool,
        pub cloud_config_cksum: String,
        pub markers: Vec<Value>,
    }
);

avi_object!(@derive []
    /// `/api/sslkeyandcertificate`. `key` is write-only: the controller returns `<sensitive>`. `Debug`
    /// redacts the key and any secret among the unknown fields (e.g. `key_passphrase`).
    SslKeyAndCertificate, "sslkeyandcertificate", "SSLKeyAndCertificate" {
        #[serde(rename = "type")]
        pub cert_type: String,
        pub key: String,
        pub certificate: SslCertificate,
        pub ca_certs: Vec<Value>,
        pub status: String,
        pub format: String,
        pub markers: Vec<Value>,
    }
);

avi_object!(
    /// `/api/cloud` (read-only for ako).
    Cloud, "cloud", "Cloud" {
        pub vtype: String,
        pub ipam_provider_ref: String,
        pub dns_provider_ref: String,
        pub east_west_ipam_provider_ref: String,
        pub east_west_dns_provider_ref: String,
        pub state_based_dns_registration: bool,
    }
);

avi_object!(
    /// `/api/serviceenginegroup` (read-only for ako, except labels).
    ServiceEngineGroup, "serviceenginegroup", "ServiceEngineGroup" {
        pub cloud_ref: String,
        pub ha_mode: String,
        pub max_se: u32,
        pub min_se: u32,
        pub max_vs_per_se: u32,
        pub se_name_prefix: String,
        pub labels: Vec<Value>,
    }
);

avi_object!(
    /// `/api/network`: subnets and static ranges used by IPAM.
    Network, "network", "Network" {
        pub cloud_ref: String,
        pub vrf_context_ref: String,
        pub configured_subnets: Vec<ConfiguredSubnet>,
        pub dhcp_enabled: bool,
        pub exclude_discovered_subnets: bool,
    }
);

avi_object!(
    /// `/api/ipamdnsproviderprofile`.
    IpamDnsProviderProfile, "ipamdnsproviderprofile", "IpamDnsProviderProfile" {
        #[serde(rename = "type")]
        pub profile_type: String,
        pub internal_profile: IpamInternalProfile,
        pub allocate_ip_in_vrf: bool,
    }
);

avi_object!(
    /// `/api/tenant`. (`local` stays in `extra`: controllers accept it as a bool or a string.)
    Tenant, "tenant", "Tenant" {
        pub config_settings: Value,
    }
);

avi_object!(
    /// `/api/vrfcontext`.
    VrfContext, "vrfcontext", "VrfContext" {
        pub cloud_ref: String,
        pub system_default: bool,
        pub static_routes: Vec<Value>,
    }
);

impl std::fmt::Debug for SslKeyAndCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SslKeyAndCertificate")
            .field("url", &self.url)
            .field("uuid", &self.uuid)
            .field("name", &self.name)
            .field("tenant_ref", &self.tenant_ref)
            .field("last_modified", &self.last_modified)
            .field("created_by", &self.created_by)
            .field("description", &self.description)
            .field("cert_type", &self.cert_type)
            .field("key", &redact::Opt(&self.key))
            .field("certificate", &self.certificate)
            .field("ca_certs", &self.ca_certs)
            .field("status", &self.status)
            .field("format", &self.format)
            .field("markers", &self.markers)
            .field("extra", &redact::Fields(&self.extra))
            .finish()
    }
}

/// `GET /api/ipamdnsproviderprofiledomainlist?cloud_uuid=…`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainList {
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A collection page: `{"count", "results", "next"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionPage<T> {
    #[serde(default)]
    pub count: u64,
    #[serde(default = "Vec::new")]
    pub results: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `oper_status` of a runtime answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperStatus {
    #[serde(default)]
    pub state: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip_at_every_level() {
        let input = serde_json::json!({
            "name": "v", "uuid": "vsvip-1", "future_top": {"a": 1},
            "vip": [{"vip_id": "0", "ip_address": {"addr": "10.0.0.1", "type": "V4", "x": true}, "floating_ip": {"addr": "1.1.1.1"}}],
            "dns_info": [{"fqdn": "a.b", "cname": {"cname": "c"}}]
        });
        let vsvip: VsVip = serde_json::from_value(input.clone()).expect("parse");
        assert_eq!(
            vsvip.extra.get("future_top"),
            Some(&serde_json::json!({"a": 1}))
        );
        assert_eq!(serde_json::to_value(&vsvip).expect("serialize"), input);
    }

    #[test]
    fn absent_optional_fields_are_not_serialized() {
        let pool = Pool {
            name: "p".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&pool).expect("serialize"),
            serde_json::json!({"name": "p"})
        );
    }
}
