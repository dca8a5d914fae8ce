//! Static facts per object type (model name, verbose name, uniqueness scope) and the defaults the
//! controller fills on create/replace.

use serde_json::{Map, Value, json};

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
        obj_type: "wafpolicy",
        model: "WafPolicy",
        verbose: "Waf policy",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "errorpageprofile",
        model: "ErrorPageProfile",
        verbose: "Error page profile",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "networksecuritypolicy",
        model: "NetworkSecurityPolicy",
        verbose: "Network security policy",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "securitypolicy",
        model: "SecurityPolicy",
        verbose: "Security policy",
        cloud_scoped: false,
    },
    TypeInfo {
        obj_type: "icapprofile",
        model: "IcapProfile",
        verbose: "Icap profile",
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

pub(super) fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if !map.contains_key(key) || map.get(key) == Some(&Value::Null) {
        map.insert(key.to_string(), value);
    }
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
        "virtualservice" => virtualservice_defaults(body),
        "vsvip" => vsvip_defaults(body),
        "pool" => pool_defaults(body),
        "poolgroup" => poolgroup_defaults(body),
        "httppolicyset" => httppolicyset_defaults(body),
        "sslkeyandcertificate" => sslkeyandcertificate_defaults(body),
        "tenant" => tenant_defaults(body),
        "cloud" => cloud_defaults(body),
        "serviceenginegroup" => serviceenginegroup_defaults(body),
        "network" => network_defaults(body),
        "vrfcontext" => vrfcontext_defaults(body),
        "ipamdnsproviderprofile" => ipamdnsproviderprofile_defaults(body),
        _ => {}
    }
}

fn virtualservice_defaults(body: &mut Map<String, Value>) {
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

fn vsvip_defaults(body: &mut Map<String, Value>) {
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

fn pool_defaults(body: &mut Map<String, Value>) {
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

fn poolgroup_defaults(body: &mut Map<String, Value>) {
    set_default(body, "implicit_priority_labels", json!(false));
    set_default(body, "min_servers", json!(0));
    if let Some(members) = body.get_mut("members").and_then(Value::as_array_mut) {
        for m in members.iter_mut().filter_map(Value::as_object_mut) {
            set_default(m, "ratio", json!(1));
        }
    }
}

fn httppolicyset_defaults(body: &mut Map<String, Value>) {
    set_default(body, "is_internal_policy", json!(false));
}

fn sslkeyandcertificate_defaults(body: &mut Map<String, Value>) {
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

fn tenant_defaults(body: &mut Map<String, Value>) {
    set_default(body, "local", json!(true));
    set_default(
        body,
        "config_settings",
        json!({"tenant_vrf": false, "se_in_provider_context": true, "tenant_access_to_provider_se": true}),
    );
}

fn cloud_defaults(body: &mut Map<String, Value>) {
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

fn serviceenginegroup_defaults(body: &mut Map<String, Value>) {
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

fn network_defaults(body: &mut Map<String, Value>) {
    set_default(body, "vrf_context_ref", by_name("vrfcontext", "global"));
    set_default(body, "dhcp_enabled", json!(true));
    set_default(body, "exclude_discovered_subnets", json!(false));
    set_default(body, "ip6_autocfg_enabled", json!(false));
}

fn vrfcontext_defaults(body: &mut Map<String, Value>) {
    set_default(body, "system_default", json!(false));
}

fn ipamdnsproviderprofile_defaults(body: &mut Map<String, Value>) {
    set_default(body, "allocate_ip_in_vrf", json!(false));
}
