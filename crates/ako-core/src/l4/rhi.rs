//! Route health injection: an AviInfraSetting's `enableRhi` and `bgpPeerLabels` on the objects it places.

use serde_json::{Value, json};

/// Route health injection: `enable_rhi` on the virtual services (sent only when true, as AKO does) and the BGP
/// peers their VIPs are advertised to (`bgp_peer_labels` on the VsVips; empty: every peer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rhi {
    pub enabled: bool,
    pub bgp_peer_labels: Vec<String>,
}

impl Rhi {
    /// `enable_rhi` of a virtual service: true, or unset (null: a PUT leaves it out, the controller's default).
    pub fn vs_field(&self) -> Value {
        if self.enabled {
            json!(true)
        } else {
            Value::Null
        }
    }

    /// `bgp_peer_labels` of a VsVip: the labels, or unset.
    pub fn vsvip_field(&self) -> Value {
        if self.enabled && !self.bgp_peer_labels.is_empty() {
            json!(self.bgp_peer_labels)
        } else {
            Value::Null
        }
    }
}
