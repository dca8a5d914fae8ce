//! Rebuilding the store from journal records (never stricter than the write path: a record the
//! journal holds is kept, or skipped with a warning, but never stops the start) and loading the seed.

use std::net::Ipv4Addr;

use serde_json::{Map, Value};

use super::refs::{collect_refs_map, uuid_of_ref};
use super::{ApiError, Obj, Store, TenantSel, type_info};
use ako_core::refs::{RefTarget, parse_ref};

impl Store {
    /// Rebuilds an object from its persisted body (journal replay). The body is trusted: the write
    /// path validated it when it was acknowledged, and rules may have tightened since, so nothing here
    /// re-validates. `Err` means the record cannot be indexed at all (no uuid) and is skipped; the
    /// caller logs it and goes on. Never logs the body (it may hold a private key).
    pub fn restore(&mut self, obj_type: &str, body: Map<String, Value>) -> Result<(), String> {
        let uuid = body
            .get("uuid")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| format!("{obj_type} record without uuid"))?
            .to_string();
        let name = match body.get("name").and_then(Value::as_str) {
            Some(n) => n.to_string(),
            None => {
                tracing::warn!(obj_type, uuid, "journal record without name, kept");
                String::new()
            }
        };
        let tenant = uuid_of_ref(body.get("tenant_ref")).unwrap_or_else(|| "admin".into());
        let cloud = uuid_of_ref(body.get("cloud_ref"));
        let mut refs = Vec::new();
        collect_refs_map(&body, &mut refs);
        refs.retain(|r| *r != uuid);
        refs.sort();
        refs.dedup();
        let mut ips = Vec::new();
        if obj_type == "vsvip" {
            let vrf = uuid_of_ref(body.get("vrf_context_ref")).unwrap_or_default();
            for vip in body
                .get("vip")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                // IPAM tracks IPv4 only; V6/DNS addresses (and anything unparsable an older
                // version let through) are kept in the object but reserve nothing.
                let Some(addr) = vip
                    .get("ip_address")
                    .and_then(|a| a.get("addr"))
                    .and_then(Value::as_str)
                else {
                    continue;
                };
                match addr.parse::<Ipv4Addr>() {
                    Ok(ip) => ips.push((vrf.clone(), ip)),
                    Err(_) if addr.parse::<std::net::Ipv6Addr>().is_ok() => {}
                    Err(_) => tracing::warn!(
                        uuid,
                        addr,
                        "journal VsVip address is not an IP address; kept, not reserved"
                    ),
                }
            }
        }
        self.insert_indexed(Obj {
            obj_type: obj_type.to_string(),
            uuid,
            name,
            tenant,
            cloud,
            body,
            seq: 0,
            refs,
            ips,
        });
        Ok(())
    }

    /// Removes an object during journal replay.
    pub fn restore_delete(&mut self, uuid: &str) {
        if let Some(obj) = self.objects.remove(uuid) {
            self.unindex(&obj);
        }
    }

    /// Loads seed objects (through the write path's validation): all are registered first, so refs between them resolve in any order.
    pub fn load_seed(
        &mut self,
        entries: Vec<(String, Map<String, Value>)>,
    ) -> Result<Vec<String>, ApiError> {
        let mut placed = Vec::new();
        for (obj_type, body) in &entries {
            type_info(obj_type).ok_or_else(|| {
                ApiError::new(400, format!("seed: unknown object type {obj_type}"))
            })?;
            let name = body
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let uuid = match body.get("uuid").and_then(Value::as_str) {
                Some(u) => u.to_string(),
                None => format!("{obj_type}-{}", uuid::Uuid::new_v4()),
            };
            let tenant = body
                .get("tenant_ref")
                .and_then(Value::as_str)
                .and_then(parse_ref)
                .and_then(|p| match p.target {
                    RefTarget::Name(n) => self.tenant_by_name(&n).map(|t| t.uuid.clone()),
                    RefTarget::Uuid(u) => Some(u),
                })
                .unwrap_or_else(|| "admin".into());
            let mut stub = Map::new();
            stub.insert("uuid".into(), Value::String(uuid.clone()));
            stub.insert("name".into(), Value::String(name.clone()));
            self.insert_indexed(Obj {
                obj_type: obj_type.clone(),
                uuid: uuid.clone(),
                name,
                tenant,
                cloud: None,
                body: stub,
                seq: 0,
                refs: Vec::new(),
                ips: Vec::new(),
            });
            placed.push(uuid);
        }
        // Clouds first, so cloud-scoped names (VRF `global`) resolve per cloud.
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| usize::from(entries[i].0 != "cloud"));
        for i in order {
            let (obj_type, body) = &entries[i];
            let body = &seed_certificate(obj_type, body)?;
            let uuid = &placed[i];
            let existing = self.objects.get(uuid).cloned();
            let sel = TenantSel::One(
                existing
                    .as_ref()
                    .map_or_else(|| "admin".into(), |e| e.tenant.clone()),
            );
            let obj = self
                .prepare(obj_type, body.clone(), uuid, &sel, existing.as_ref())
                .map_err(|e| {
                    ApiError::new(
                        e.status,
                        format!(
                            "seed {obj_type} {}: {}",
                            body.get("name").unwrap_or(&Value::Null),
                            e.message
                        ),
                    )
                })?;
            self.commit(obj);
        }
        // The built-in `admin` tenant shows only url, uuid, name and local (recorded, cassette
        // test_timeout): it was never written through the API, and its settings live in the
        // system configuration's `global_tenant_config`.
        if let Some(admin) = self
            .objects
            .get_mut("admin")
            .filter(|o| o.obj_type == "tenant")
        {
            admin
                .body
                .retain(|k, _| matches!(k.as_str(), "uuid" | "name" | "local"));
        }
        Ok(placed)
    }
}

/// A seed certificate without PEM content (the system certificates) gets a generated self-signed
/// certificate and key, as a controller generates its own at installation: stored certificates are
/// always real ones, so the write path's certificate rules hold for the seed too.
fn seed_certificate(
    obj_type: &str,
    body: &Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let has_pem = body
        .get("certificate")
        .and_then(|c| c.get("certificate"))
        .is_some_and(|c| c.as_str().is_some_and(|s| !s.is_empty()));
    if obj_type != "sslkeyandcertificate" || has_pem {
        return Ok(body.clone());
    }
    let name = body.get("name").and_then(Value::as_str).unwrap_or("seed");
    let generated = ako_certs::generate_ca(name, 3650)
        .map_err(|e| ApiError::new(500, format!("seed certificate {name}: {e}")))?;
    let mut body = body.clone();
    body.insert(
        "certificate".into(),
        serde_json::json!({"certificate": generated.cert_pem}),
    );
    body.insert("key".into(), Value::String(generated.key_pem.clone()));
    Ok(body)
}
