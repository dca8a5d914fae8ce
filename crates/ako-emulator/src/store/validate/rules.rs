//! The field rules of each object type the operator writes: the checks the published schema cannot express
//! (addresses that parse, references to the right kind, ports, prefixes) and the enumerations the emulator
//! relies on.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) const IP_TYPES: &[&str] = &["V4", "V6", "DNS"];
const MATCH_OPS: &[&str] = &["IS_IN", "IS_NOT_IN"];
const MATCH_CASE: &[&str] = &["SENSITIVE", "INSENSITIVE"];
const STRING_MATCH: &[&str] = &[
    "BEGINS_WITH",
    "DOES_NOT_BEGIN_WITH",
    "CONTAINS",
    "DOES_NOT_CONTAIN",
    "ENDS_WITH",
    "DOES_NOT_END_WITH",
    "EQUALS",
    "DOES_NOT_EQUAL",
    "REGEX_MATCH",
    "REGEX_DOES_NOT_MATCH",
];
const HDR_MATCH: &[&str] = &[
    "HDR_EXISTS",
    "HDR_DOES_NOT_EXIST",
    "HDR_BEGINS_WITH",
    "HDR_DOES_NOT_BEGIN_WITH",
    "HDR_CONTAINS",
    "HDR_DOES_NOT_CONTAIN",
    "HDR_ENDS_WITH",
    "HDR_DOES_NOT_END_WITH",
    "HDR_EQUALS",
    "HDR_DOES_NOT_EQUAL",
];
const LB_ALGORITHMS: &[&str] = &[
    "LB_ALGORITHM_LEAST_CONNECTIONS",
    "LB_ALGORITHM_ROUND_ROBIN",
    "LB_ALGORITHM_FASTEST_RESPONSE",
    "LB_ALGORITHM_CONSISTENT_HASH",
    "LB_ALGORITHM_LEAST_LOAD",
    "LB_ALGORITHM_FEWEST_SERVERS",
    "LB_ALGORITHM_RANDOM",
    "LB_ALGORITHM_FEWEST_TASKS",
    "LB_ALGORITHM_NEAREST_SERVER",
    "LB_ALGORITHM_CORE_AFFINITY",
    "LB_ALGORITHM_TOPOLOGY",
];

const VIRTUALSERVICE: &[Rule] = &[
    rule("name", Str),
    rule(
        "type",
        Enum(&["VS_TYPE_NORMAL", "VS_TYPE_VH_PARENT", "VS_TYPE_VH_CHILD"]),
    ),
    rule("vh_type", Enum(&["VS_TYPE_VH_SNI", "VS_TYPE_VH_ENHANCED"])),
    rule("enabled", Bool),
    rule("traffic_enabled", Bool),
    rule("east_west_placement", Bool),
    rule("services[].port", Required),
    rule("services[].port", Port),
    rule("services[].port_range_end", Port),
    rule("services[].enable_ssl", Bool),
    rule("services[].enable_http2", Bool),
    rule(
        "services[].override_network_profile_ref",
        Ref("networkprofile"),
    ),
    rule(
        "services[].override_application_profile_ref",
        Ref("applicationprofile"),
    ),
    rule("vsvip_ref", Ref("vsvip")),
    rule("pool_ref", Ref("pool")),
    rule("pool_group_ref", Ref("poolgroup")),
    rule("application_profile_ref", Ref("applicationprofile")),
    rule("network_profile_ref", Ref("networkprofile")),
    rule("se_group_ref", Ref("serviceenginegroup")),
    rule("cloud_ref", Ref("cloud")),
    rule("vrf_context_ref", Ref("vrfcontext")),
    rule("tenant_ref", Ref("tenant")),
    rule("analytics_profile_ref", Ref("analyticsprofile")),
    rule("ssl_profile_ref", Ref("sslprofile")),
    rule(
        "ssl_key_and_certificate_refs[]",
        Ref("sslkeyandcertificate"),
    ),
    rule("vh_parent_vs_ref", Ref("virtualservice")),
    rule("http_policies[].index", Required),
    rule(
        "http_policies[].index",
        Int {
            min: 0,
            max: i32::MAX as i64,
        },
    ),
    rule("http_policies[].http_policy_set_ref", Required),
    rule("http_policies[].http_policy_set_ref", Ref("httppolicyset")),
    rule("l4_policies[].index", Required),
    rule("l4_policies[].l4_policy_set_ref", Required),
    rule("l4_policies[].l4_policy_set_ref", Ref("l4policyset")),
    rule("vs_datascripts[].index", Required),
    rule("vs_datascripts[].vs_datascript_set_ref", Required),
    rule(
        "vs_datascripts[].vs_datascript_set_ref",
        Ref("vsdatascriptset"),
    ),
    rule("vip[].ip_address", IpAddr),
    rule("vh_domain_name[]", Str),
];

const VSVIP: &[Rule] = &[
    rule("name", Str),
    rule("cloud_ref", Ref("cloud")),
    rule("tenant_ref", Ref("tenant")),
    rule("vrf_context_ref", Ref("vrfcontext")),
    rule("east_west_placement", Bool),
    rule("vip[].vip_id", Str),
    rule("vip[].ip_address", IpAddr),
    rule("vip[].ip6_address", IpAddr),
    rule("vip[].enabled", Bool),
    rule("vip[].auto_allocate_ip", Bool),
    rule(
        "vip[].auto_allocate_ip_type",
        Enum(&["V4_ONLY", "V6_ONLY", "V4_V6"]),
    ),
    rule("vip[].prefix_length", Int { min: 0, max: 128 }),
    rule("vip[].ipam_network_subnet.network_ref", Ref("network")),
    rule("vip[].ipam_network_subnet.subnet", IpPrefix),
    rule("vip[].ipam_network_subnet.subnet6", IpPrefix),
    rule("vip[].placement_networks[].network_ref", Ref("network")),
    rule("vip[].placement_networks[].subnet", IpPrefix),
    rule("dns_info[].fqdn", Str),
    rule(
        "dns_info[].type",
        Enum(&[
            "DNS_RECORD_A",
            "DNS_RECORD_AAAA",
            "DNS_RECORD_CNAME",
            "DNS_RECORD_NS",
            "DNS_RECORD_SRV",
            "DNS_RECORD_TXT",
            "DNS_RECORD_MX",
            "DNS_RECORD_PTR",
            "DNS_RECORD_SOA",
            "DNS_RECORD_ANY",
            "DNS_RECORD_OTHER",
        ]),
    ),
    rule(
        "dns_info[].ttl",
        Int {
            min: 0,
            max: 604_800,
        },
    ),
    rule(
        "dns_info[].algorithm",
        Enum(&[
            "DNS_RECORD_RESPONSE_ROUND_ROBIN",
            "DNS_RECORD_RESPONSE_CONSISTENT_HASH",
        ]),
    ),
    rule(
        "dns_info[].num_records_in_response",
        Int { min: 0, max: 20 },
    ),
];

const POOL: &[Rule] = &[
    rule("name", Str),
    rule("cloud_ref", Ref("cloud")),
    rule("tenant_ref", Ref("tenant")),
    rule("vrf_ref", Ref("vrfcontext")),
    rule("enabled", Bool),
    rule("default_server_port", Port),
    rule("lb_algorithm", Enum(LB_ALGORITHMS)),
    rule("health_monitor_refs[]", Ref("healthmonitor")),
    rule("analytics_profile_ref", Ref("analyticsprofile")),
    rule(
        "application_persistence_profile_ref",
        Ref("applicationpersistenceprofile"),
    ),
    rule("ssl_profile_ref", Ref("sslprofile")),
    rule("ssl_key_and_certificate_ref", Ref("sslkeyandcertificate")),
    rule("pki_profile_ref", Ref("pkiprofile")),
    // Swagger: `ip` is "required if there is no resolvable host name"; the emulator resolves no names.
    rule("servers[].ip", Required),
    rule("servers[].ip", IpAddr),
    // 0 means "use the pool's default_server_port".
    rule("servers[].port", Int { min: 0, max: 65535 }),
    rule("servers[].ratio", Int { min: 1, max: 20 }),
    rule("servers[].enabled", Bool),
];

const POOLGROUP: &[Rule] = &[
    rule("name", Str),
    rule("cloud_ref", Ref("cloud")),
    rule("tenant_ref", Ref("tenant")),
    rule("members[].pool_ref", Required),
    rule("members[].pool_ref", Ref("pool")),
    rule("members[].ratio", Int { min: 0, max: 1000 }),
    rule("members[].priority_label", Str),
    rule("min_servers", Int { min: 0, max: 65535 }),
];

const HTTPPOLICYSET: &[Rule] = &[
    rule("name", Str),
    rule("tenant_ref", Ref("tenant")),
    rule("is_internal_policy", Bool),
    rule("http_request_policy.rules[].name", Required),
    rule("http_request_policy.rules[].index", Required),
    rule(
        "http_request_policy.rules[].index",
        Int {
            min: 0,
            max: i32::MAX as i64,
        },
    ),
    rule("http_request_policy.rules[].enable", Required),
    rule("http_request_policy.rules[].enable", Bool),
    rule(
        "http_request_policy.rules[].match.host_hdr.match_criteria",
        Required,
    ),
    rule(
        "http_request_policy.rules[].match.host_hdr.match_criteria",
        Enum(HDR_MATCH),
    ),
    rule(
        "http_request_policy.rules[].match.host_hdr.match_case",
        Enum(MATCH_CASE),
    ),
    rule("http_request_policy.rules[].match.host_hdr.value[]", Str),
    rule(
        "http_request_policy.rules[].match.path.match_criteria",
        Enum(STRING_MATCH),
    ),
    rule(
        "http_request_policy.rules[].match.path.match_case",
        Enum(MATCH_CASE),
    ),
    rule("http_request_policy.rules[].match.path.match_str[]", Str),
    rule(
        "http_request_policy.rules[].match.path.string_group_refs[]",
        Ref("stringgroup"),
    ),
    rule(
        "http_request_policy.rules[].match.vs_port.match_criteria",
        Required,
    ),
    rule(
        "http_request_policy.rules[].match.vs_port.match_criteria",
        Enum(MATCH_OPS),
    ),
    rule("http_request_policy.rules[].match.vs_port.ports[]", Port),
    rule(
        "http_request_policy.rules[].switching_action.action",
        Required,
    ),
    rule(
        "http_request_policy.rules[].switching_action.action",
        Enum(&[
            "HTTP_SWITCHING_SELECT_POOL",
            "HTTP_SWITCHING_SELECT_LOCAL",
            "HTTP_SWITCHING_SELECT_POOLGROUP",
        ]),
    ),
    rule(
        "http_request_policy.rules[].switching_action.pool_ref",
        Ref("pool"),
    ),
    rule(
        "http_request_policy.rules[].switching_action.pool_group_ref",
        Ref("poolgroup"),
    ),
    rule(
        "http_request_policy.rules[].switching_action.status_code",
        Enum(&[
            "HTTP_LOCAL_RESPONSE_STATUS_CODE_200",
            "HTTP_LOCAL_RESPONSE_STATUS_CODE_204",
            "HTTP_LOCAL_RESPONSE_STATUS_CODE_403",
            "HTTP_LOCAL_RESPONSE_STATUS_CODE_404",
            "HTTP_LOCAL_RESPONSE_STATUS_CODE_429",
            "HTTP_LOCAL_RESPONSE_STATUS_CODE_501",
        ]),
    ),
    rule(
        "http_request_policy.rules[].redirect_action.protocol",
        Enum(&["HTTP", "HTTPS"]),
    ),
    rule("http_request_policy.rules[].redirect_action.port", Port),
    rule(
        "http_request_policy.rules[].redirect_action.status_code",
        Enum(&[
            "HTTP_REDIRECT_STATUS_CODE_301",
            "HTTP_REDIRECT_STATUS_CODE_302",
            "HTTP_REDIRECT_STATUS_CODE_307",
            "HTTP_REDIRECT_STATUS_CODE_308",
        ]),
    ),
];

const SSLKEYANDCERTIFICATE: &[Rule] = &[
    rule("name", Str),
    rule("tenant_ref", Ref("tenant")),
    rule("certificate", Required),
    rule("certificate.certificate", Required),
    rule("certificate.certificate", Str),
    rule("key", Str),
    rule(
        "type",
        Enum(&[
            "SSL_CERTIFICATE_TYPE_VIRTUALSERVICE",
            "SSL_CERTIFICATE_TYPE_SYSTEM",
            "SSL_CERTIFICATE_TYPE_CA",
        ]),
    ),
    rule("format", Enum(&["SSL_PEM", "SSL_PKCS12"])),
    rule("ca_certs[].ca_ref", Ref("sslkeyandcertificate")),
];

const L4POLICYSET: &[Rule] = &[
    rule("name", Str),
    rule("tenant_ref", Ref("tenant")),
    rule("is_internal_policy", Bool),
    rule("l4_connection_policy.rules[].index", Required),
    rule(
        "l4_connection_policy.rules[].index",
        Int {
            min: 0,
            max: i32::MAX as i64,
        },
    ),
    rule("l4_connection_policy.rules[].enable", Bool),
    rule(
        "l4_connection_policy.rules[].action.select_pool.action_type",
        Required,
    ),
    rule(
        "l4_connection_policy.rules[].action.select_pool.action_type",
        Enum(&[
            "L4_RULE_ACTION_SELECT_POOL",
            "L4_RULE_ACTION_SELECT_POOLGROUP",
        ]),
    ),
    rule(
        "l4_connection_policy.rules[].action.select_pool.pool_ref",
        Ref("pool"),
    ),
    rule(
        "l4_connection_policy.rules[].action.select_pool.pool_group_ref",
        Ref("poolgroup"),
    ),
    rule(
        "l4_connection_policy.rules[].match.port.match_criteria",
        Required,
    ),
    rule(
        "l4_connection_policy.rules[].match.port.match_criteria",
        Enum(MATCH_OPS),
    ),
    rule("l4_connection_policy.rules[].match.port.ports[]", Port),
    rule(
        "l4_connection_policy.rules[].match.port.port_ranges[].start",
        Port,
    ),
    rule(
        "l4_connection_policy.rules[].match.port.port_ranges[].end",
        Port,
    ),
    rule(
        "l4_connection_policy.rules[].match.protocol.match_criteria",
        Enum(MATCH_OPS),
    ),
    rule(
        "l4_connection_policy.rules[].match.protocol.protocol",
        Enum(&[
            "PROTOCOL_TCP",
            "PROTOCOL_UDP",
            "PROTOCOL_ICMP",
            "PROTOCOL_SCTP",
        ]),
    ),
];

const NETWORK: &[Rule] = &[
    rule("name", Str),
    rule("cloud_ref", Ref("cloud")),
    rule("tenant_ref", Ref("tenant")),
    rule("vrf_context_ref", Ref("vrfcontext")),
    rule("dhcp_enabled", Bool),
    rule("configured_subnets[].prefix", Required),
    rule("configured_subnets[].prefix", IpPrefix),
    rule("configured_subnets[].static_ip_ranges[].range", Required),
    rule(
        "configured_subnets[].static_ip_ranges[].range.begin",
        Required,
    ),
    rule(
        "configured_subnets[].static_ip_ranges[].range.begin",
        IpAddr,
    ),
    rule(
        "configured_subnets[].static_ip_ranges[].range.end",
        Required,
    ),
    rule("configured_subnets[].static_ip_ranges[].range.end", IpAddr),
    rule(
        "configured_subnets[].static_ip_ranges[].type",
        Enum(&[
            "STATIC_IPS_FOR_VIP_AND_SE",
            "STATIC_IPS_FOR_VIP",
            "STATIC_IPS_FOR_SE",
        ]),
    ),
    rule("configured_subnets[].static_ranges[].begin", IpAddr),
    rule("configured_subnets[].static_ranges[].end", IpAddr),
    rule("configured_subnets[].static_ips[]", IpAddr),
];

const IPAMDNSPROVIDERPROFILE: &[Rule] = &[
    rule("name", Str),
    rule("tenant_ref", Ref("tenant")),
    rule("type", Required),
    rule(
        "type",
        Enum(&[
            "IPAMDNS_TYPE_INTERNAL",
            "IPAMDNS_TYPE_INTERNAL_DNS",
            "IPAMDNS_TYPE_INFOBLOX",
            "IPAMDNS_TYPE_INFOBLOX_DNS",
            "IPAMDNS_TYPE_AWS",
            "IPAMDNS_TYPE_AWS_DNS",
            "IPAMDNS_TYPE_AZURE",
            "IPAMDNS_TYPE_AZURE_DNS",
            "IPAMDNS_TYPE_OPENSTACK",
            "IPAMDNS_TYPE_GCP",
            "IPAMDNS_TYPE_OCI",
            "IPAMDNS_TYPE_TENCENT",
            "IPAMDNS_TYPE_CUSTOM",
            "IPAMDNS_TYPE_CUSTOM_DNS",
        ]),
    ),
    rule("allocate_ip_in_vrf", Bool),
    rule(
        "internal_profile.ttl",
        Int {
            min: 1,
            max: 604_800,
        },
    ),
    rule("internal_profile.usable_networks[].nw_ref", Required),
    rule("internal_profile.usable_networks[].nw_ref", Ref("network")),
    rule("internal_profile.usable_network_refs[]", Ref("network")),
    rule(
        "internal_profile.dns_service_domain[].domain_name",
        Required,
    ),
    rule("internal_profile.dns_service_domain[].domain_name", Str),
    rule("internal_profile.dns_service_domain[].pass_through", Bool),
    rule(
        "internal_profile.dns_virtualservice_ref",
        Ref("virtualservice"),
    ),
];

const CLOUD: &[Rule] = &[
    rule("name", Str),
    rule("tenant_ref", Ref("tenant")),
    rule("vtype", Required),
    rule(
        "vtype",
        Enum(&[
            "CLOUD_NONE",
            "CLOUD_VCENTER",
            "CLOUD_OPENSTACK",
            "CLOUD_AWS",
            "CLOUD_VCA",
            "CLOUD_APIC",
            "CLOUD_MESOS",
            "CLOUD_LINUXSERVER",
            "CLOUD_DOCKER_UCP",
            "CLOUD_RANCHER",
            "CLOUD_OSHIFT_K8S",
            "CLOUD_AZURE",
            "CLOUD_GCP",
            "CLOUD_NSXT",
        ]),
    ),
    rule("ipam_provider_ref", Ref("ipamdnsproviderprofile")),
    rule("dns_provider_ref", Ref("ipamdnsproviderprofile")),
    rule("east_west_ipam_provider_ref", Ref("ipamdnsproviderprofile")),
    rule("east_west_dns_provider_ref", Ref("ipamdnsproviderprofile")),
    rule("state_based_dns_registration", Bool),
];

const SERVICEENGINEGROUP: &[Rule] = &[
    rule("name", Str),
    rule("cloud_ref", Ref("cloud")),
    rule("tenant_ref", Ref("tenant")),
    rule(
        "ha_mode",
        Enum(&[
            "HA_MODE_SHARED_PAIR",
            "HA_MODE_SHARED",
            "HA_MODE_LEGACY_ACTIVE_STANDBY",
        ]),
    ),
    rule("max_se", Int { min: 1, max: 1000 }),
    rule("min_se", Int { min: 0, max: 1000 }),
    rule("max_vs_per_se", Int { min: 1, max: 1000 }),
];

const VRFCONTEXT: &[Rule] = &[
    rule("name", Str),
    rule("cloud_ref", Ref("cloud")),
    rule("tenant_ref", Ref("tenant")),
    rule("system_default", Bool),
    rule("static_routes[].prefix", IpPrefix),
    rule("static_routes[].next_hop", IpAddr),
];

const TENANT: &[Rule] = &[rule("name", Str), rule("local", Bool)];

const OTHER: &[Rule] = &[rule("name", Str)];

/// The rules of a type; types without a table (profiles the emulator only seeds) get the name rule.
pub fn rules_for(obj_type: &str) -> &'static [Rule] {
    match obj_type {
        "virtualservice" => VIRTUALSERVICE,
        "vsvip" => VSVIP,
        "pool" => POOL,
        "poolgroup" => POOLGROUP,
        "httppolicyset" => HTTPPOLICYSET,
        "sslkeyandcertificate" => SSLKEYANDCERTIFICATE,
        "l4policyset" => L4POLICYSET,
        "network" => NETWORK,
        "ipamdnsproviderprofile" => IPAMDNSPROVIDERPROFILE,
        "cloud" => CLOUD,
        "serviceenginegroup" => SERVICEENGINEGROUP,
        "vrfcontext" => VRFCONTEXT,
        "tenant" => TENANT,
        _ => OTHER,
    }
}
