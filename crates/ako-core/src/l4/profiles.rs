//! What ako chooses for L4 virtual services as AKO does: network profiles and health monitors by protocol and
//! licence tier.

/// The controller's default licence tier (`systemconfiguration.default_license_tier`), as far as ako's choices
/// depend on it. AKO gives TCP ports of L4 virtual services the TCP proxy on the Enterprise tiers and the TCP fast
/// path on the others (Essentials, Basic), whose licence does not include the proxy profile for L4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LicenseTier {
    /// ENTERPRISE or ENTERPRISE_WITH_CLOUD_SERVICES (and the controller's default when it says nothing).
    #[default]
    Enterprise,
    /// ESSENTIALS, BASIC or any other tier.
    EssentialsOrBasic,
}

impl LicenseTier {
    /// From `default_license_tier`.
    pub fn parse(tier: &str) -> Self {
        match tier.trim() {
            "" | "ENTERPRISE" | "ENTERPRISE_WITH_CLOUD_SERVICES" => Self::Enterprise,
            _ => Self::EssentialsOrBasic,
        }
    }
}

/// The network profile of an L4 port, as AKO chooses it: UDP the UDP fast path, SCTP the SCTP proxy, TCP the
/// TCP proxy on Enterprise and the TCP fast path on the other tiers.
pub fn l4_network_profile(proto: &str, tier: LicenseTier) -> &'static str {
    match (proto, tier) {
        ("UDP", _) => "System-UDP-Fast-Path",
        ("SCTP", _) => "System-SCTP-Proxy",
        (_, LicenseTier::Enterprise) => "System-TCP-Proxy",
        (_, LicenseTier::EssentialsOrBasic) => "System-TCP-Fast-Path",
    }
}

/// The health monitor of an L4 pool by protocol, as AKO chooses it.
pub fn l4_health_monitor(proto: &str) -> &'static str {
    match proto {
        "UDP" => "System-UDP",
        "SCTP" => "System-SCTP",
        _ => "System-TCP",
    }
}
