use super::*;

#[test]
fn only_loopback_and_allowed_networks_are_dialable() {
    let allowed: Vec<IpNet> = vec!["10.99.0.0/24".parse().expect("net")];
    assert!(dialable("127.0.0.2".parse().expect("ip"), &[]).is_ok());
    assert!(dialable("::1".parse().expect("ip"), &[]).is_ok());
    assert!(dialable("10.99.0.7".parse().expect("ip"), &allowed).is_ok());
    let err = dialable("10.244.0.5".parse().expect("ip"), &allowed).expect_err("pod ip");
    assert!(err.contains("10.244.0.5"), "{err}");
}

#[test]
fn l4_rules_match_ports_ranges_and_protocol() {
    let r = L4Rule {
        ports: vec![(80, 80), (8000, 8010)],
        negate_ports: false,
        protocol: Some((false, Proto::Tcp)),
        pool: "p".into(),
    };
    assert!(r.matches(80, Proto::Tcp));
    assert!(r.matches(8005, Proto::Tcp));
    assert!(!r.matches(80, Proto::Udp));
    assert!(!r.matches(81, Proto::Tcp));
}
