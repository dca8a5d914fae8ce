//! Tests of the crate root.

use super::*;

#[test]
fn the_default_seed_builds_the_lab() {
    let (users, entries) = parse_seed(DEFAULT_SEED).expect("seed parses");
    assert!(users.contains_key("admin"));
    let mut store = Store::new(DnsPolicy::Reject);
    store.load_seed(entries).expect("seed loads");
    for (t, name) in [
        ("cloud", "Default-Cloud"),
        ("serviceenginegroup", "Default-Group"),
        ("serviceenginegroup", "vmug-se-group"),
        ("vrfcontext", "global"),
        ("network", "dpg-sedatapath-18"),
        ("applicationprofile", "System-HTTP"),
        ("networkprofile", "System-TCP-Proxy"),
    ] {
        assert!(
            store.find_by_name(t, name, "admin", None).is_some(),
            "{t} {name}"
        );
    }
    let cloud = store
        .find_by_name("cloud", "Default-Cloud", "admin", None)
        .expect("cloud")
        .uuid
        .clone();
    let (_, domains, _) = store.dns_domains(&cloud).expect("dns profile");
    assert_eq!(domains, vec!["avi.jarvis.lab".to_string()]);
}

#[test]
fn the_loopback_seed_puts_the_lab_vip_network_on_loopback_under_the_same_name() {
    let (_, entries) = parse_seed(LOOPBACK_SEED).expect("seed parses");
    let mut store = Store::new(DnsPolicy::Reject);
    store.load_seed(entries).expect("seed loads");
    let net = store
        .find_by_name("network", "dpg-sedatapath-18", "admin", None)
        .expect("network");
    let ranges = ipam::vip_ranges(&net.body);
    assert!(!ranges.is_empty());
    assert!(
        ranges
            .iter()
            .all(|r| r.contains("127.10.18.10".parse().expect("ip"))
                || r.contains("127.10.18.62".parse().expect("ip")))
    );
    assert!(
        !ranges
            .iter()
            .any(|r| r.contains("10.10.18.10".parse().expect("ip")))
    );
}

#[test]
fn debug_output_never_shows_the_admin_password() {
    let secret = "s3cret-admin-pw";
    let config = EmulatorConfig {
        admin_password: Some(secret.into()),
        seed: format!("users: [{{username: admin, password: {secret}}}]"),
        ..EmulatorConfig::default()
    };
    let args = EmulatorArgs {
        listen: config.listen,
        state_dir: PathBuf::from("state"),
        ephemeral: true,
        seed: None,
        loopback_vips: false,
        dns_listen: None,
        dataplane: false,
        dataplane_allow: Vec::new(),
        pod_networks: Vec::new(),
        health_interval_ms: None,
        dataplane_threads: 1,
        admin_password: Some(secret.into()),
        controller_version: "22.1.5".into(),
        tls_cert: None,
        tls_key: None,
        sans: Vec::new(),
        dns_policy: DnsPolicy::Reject,
        no_fsync: false,
        page_size: 25,
        fault_latency_ms: 0,
        fault_error_rates: Vec::new(),
        fault_retry_after_secs: 1,
        fault_session_expiry_secs: None,
        fault_drop_rate: 0.0,
        fault_writes_only: false,
        request_log: None,
    };
    let (store, journal, users) = open_state(&config).expect("state");
    let app = App::new(
        store,
        journal,
        users,
        Faults::default(),
        "22.1.5".into(),
        25,
    );
    for shown in [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{args:?}"),
        format!("{app:?}"),
    ] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(
            shown.contains("admin_password") || shown.contains("users"),
            "{shown}"
        );
    }
    assert!(format!("{config:?}").contains(REDACTED));
}

#[test]
fn seed_errors_are_reported() {
    let cases = [
        "objects: [{name: x}]",
        "objects: [3]",
        "objects: [{type: nosuchtype, name: x}]",
        "users: 5",
    ];
    for text in cases {
        let result = parse_seed(text).and_then(|(_, e)| {
            Store::new(DnsPolicy::Reject)
                .load_seed(e)
                .map(|_| ())
                .map_err(|e| EmulatorError::Seed(e.message))
        });
        assert!(result.is_err(), "{text}");
    }
}
