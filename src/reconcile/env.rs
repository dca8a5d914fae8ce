//! The environment ako is configured for, checked against the controller: tenant, cloud, SE group, VRF and VIP
//! networks must exist, and the delegated DNS subdomains come from the cloud's DNS profile
//! (`/api/ipamdnsproviderprofiledomainlist`, as AKO reads them). A missing piece is a clear problem, reported and
//! retried: ako keeps running (and serving the webhook) instead of exiting into a crash loop.

use ipnet::IpNet;

use ako_avi::models::{AviObject, Cloud, Network, ServiceEngineGroup, Tenant, VrfContext};
use ako_avi::{AviClient, AviError};
use ako_core::l4::{LicenseTier, Placement};

/// What the controller says about the configured environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// DNS subdomains of the cloud's DNS profile (sorted), empty when it has none.
    pub dns_domains: Vec<String>,
    /// The VIP network's first configured subnet, when the configuration names none.
    pub vip_subnet: Option<IpNet>,
    /// `systemconfiguration.default_license_tier`, when the controller says.
    pub license_tier: Option<LicenseTier>,
}

/// The controller's default licence tier. A controller that does not let ako read its system configuration
/// (a tenant-scoped account) leaves the choice to the configuration's default, with a log line; a transient
/// failure is retried like every other check.
async fn license_tier(avi: &AviClient) -> Result<Option<LicenseTier>, AviError> {
    match avi
        .get_json::<serde_json::Value>("/api/systemconfiguration")
        .await
    {
        Ok(v) => Ok(v
            .get("default_license_tier")
            .and_then(serde_json::Value::as_str)
            .map(LicenseTier::parse)),
        Err(e) if e.is_transient() => Err(e),
        Err(error) => {
            tracing::warn!(%error, "the controller's licence tier could not be read; L4 TCP ports get the Enterprise profile (System-TCP-Proxy)");
            Ok(None)
        }
    }
}

async fn exists<T: AviObject>(
    avi: &AviClient,
    name: &str,
    what: &str,
    problems: &mut Vec<String>,
) -> Result<Option<T>, AviError> {
    let found = avi.get_by_name::<T>(name).await?;
    if found.is_none() {
        problems.push(format!(
            "{what} {name:?} does not exist on the controller ({} {name:?} not found)",
            T::MODEL
        ));
    }
    Ok(found)
}

/// Checks the placement against the controller. `Err` when the controller could not be asked (transient);
/// `Ok` with the problems found otherwise (empty: all good).
pub async fn check(
    avi: &AviClient,
    place: &Placement,
) -> Result<(Environment, Vec<String>), AviError> {
    let mut problems = Vec::new();
    let mut env = Environment::default();
    exists::<Tenant>(avi, &place.tenant, "tenantName", &mut problems).await?;
    let cloud = exists::<Cloud>(avi, &place.cloud, "cloudName", &mut problems).await?;
    exists::<ServiceEngineGroup>(
        avi,
        &place.se_group,
        "serviceEngineGroupName",
        &mut problems,
    )
    .await?;
    exists::<VrfContext>(avi, &place.vrf, "vrfName", &mut problems).await?;
    if let Some((net, subnet)) = &place.vip_network {
        let found =
            exists::<Network>(avi, net, "vipNetworkList networkName", &mut problems).await?;
        if let Some(n) = found
            && subnet.is_none()
        {
            env.vip_subnet = first_subnet(&n);
        }
    } else {
        problems.push("no VIP network is configured (NetworkSettings.vipNetworkList): VIPs cannot be allocated".into());
    }
    env.license_tier = license_tier(avi).await?;
    if let Some(uuid) = cloud.as_ref().and_then(|c| c.uuid.as_deref()) {
        let mut domains = avi.dns_domains(uuid).await?.domains;
        for d in &mut domains {
            *d = d.trim().trim_matches('.').to_ascii_lowercase();
        }
        domains.retain(|d| !d.is_empty());
        domains.sort();
        domains.dedup();
        env.dns_domains = domains;
    }
    Ok((env, problems))
}

fn first_subnet(n: &Network) -> Option<IpNet> {
    let s = n.configured_subnets.as_ref()?.first()?.prefix.as_ref()?;
    let addr: std::net::IpAddr = s.ip_addr.as_ref()?.addr.as_ref()?.parse().ok()?;
    IpNet::new(addr, s.mask?).ok()
}

/// The delegated subdomains in force: the configured list when given (an override), else the DNS profile's.
pub fn effective_domains(configured: &[String], from_profile: &[String]) -> Vec<String> {
    if configured.is_empty() {
        from_profile.to_vec()
    } else {
        configured.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_domains_override_the_profile() {
        let profile = vec!["avi.jarvis.lab".to_string()];
        assert_eq!(effective_domains(&[], &profile), profile);
        assert_eq!(
            effective_domains(&["x.lab".into()], &profile),
            vec!["x.lab".to_string()]
        );
        assert!(effective_domains(&[], &[]).is_empty());
    }
}
