//! Apply: the only step that writes to the controller. Each [`Step`] of a plan becomes one REST call through the
//! Avi client (which owns sessions, retries of idempotent calls, 429 handling and safe adoption on 409), and what
//! the controller answered becomes the new cached state of the object.
//!
//! Objects travel as JSON (the plan's bodies) in thin typed envelopes, one per object type, so nothing the
//! controller or another tool set on an object is lost on the way through a typed model.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use ako_avi::models::AviObject;
use ako_avi::{AviApi, AviError, ListQuery};
use ako_core::ownership::Identity;
use ako_core::plan::{Existing, Kind, Step};

macro_rules! json_object {
    ($ty:ident, $obj_type:literal, $model:literal) => {
        json_object!($ty, $obj_type, $model, true);
    };
    ($ty:ident, $obj_type:literal, $model:literal, $has_created_by:literal) => {
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(transparent)]
        struct $ty(Map<String, Value>);

        impl AviObject for $ty {
            const OBJ_TYPE: &'static str = $obj_type;
            const MODEL: &'static str = $model;
            const HAS_CREATED_BY: bool = $has_created_by;
            fn name(&self) -> &str {
                self.0
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            }
            fn uuid(&self) -> Option<&str> {
                self.0.get("uuid").and_then(Value::as_str)
            }
            fn created_by(&self) -> Option<&str> {
                self.0.get("created_by").and_then(Value::as_str)
            }
        }

        impl From<$ty> for Map<String, Value> {
            fn from(o: $ty) -> Self {
                o.0
            }
        }
    };
}

json_object!(VsVipJson, "vsvip", "VsVip", false);
json_object!(SslJson, "sslkeyandcertificate", "SSLKeyAndCertificate");
json_object!(PkiProfileJson, "pkiprofile", "PKIProfile");
json_object!(PoolJson, "pool", "Pool");
json_object!(PoolGroupJson, "poolgroup", "PoolGroup");
json_object!(L4PolicySetJson, "l4policyset", "L4PolicySet");
json_object!(HttpPolicySetJson, "httppolicyset", "HTTPPolicySet");
json_object!(VirtualServiceJson, "virtualservice", "VirtualService");

/// What a write did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// The object as the controller now holds it.
    Stored(Existing),
    /// Deleted (or already gone).
    Deleted,
}

/// The kind of a virtual service read from the controller: an SNI child or any other.
pub fn vs_kind(body: &Map<String, Value>) -> Kind {
    match body.get("type").and_then(Value::as_str) {
        Some("VS_TYPE_VH_CHILD") => Kind::VirtualServiceChild,
        _ => Kind::VirtualService,
    }
}

/// Builds the cached form of an object read from the controller; its owner as [`Identity::owner_of`] decides.
pub fn existing(kind: Kind, body: Map<String, Value>, identity: &Identity) -> Option<Existing> {
    let uuid = body.get("uuid").and_then(Value::as_str)?.to_string();
    let name = body.get("name").and_then(Value::as_str)?.to_string();
    let created_by = identity.owner_of(kind == Kind::VsVip, &name, &body);
    let kind = if kind.obj_type() == "virtualservice" {
        vs_kind(&body)
    } else {
        kind
    };
    Some(Existing {
        kind,
        uuid,
        name,
        created_by,
        body,
    })
}

/// The body as sent: a VsVip never carries `created_by` (its schema has none; an update's body may have it from
/// what an older ako wrote).
fn outgoing(kind: Kind, body: &Map<String, Value>) -> Map<String, Value> {
    let mut body = body.clone();
    if kind == Kind::VsVip {
        body.remove("created_by");
    }
    body
}

async fn write<A: AviApi, T: AviObject + Into<Map<String, Value>>>(
    avi: &A,
    step: &Step,
    identity: &Identity,
    wrap: fn(Map<String, Value>) -> T,
) -> Result<Applied, AviError> {
    match step {
        Step::Create { kind, body, .. } => {
            let created = avi.create(&wrap(outgoing(*kind, body))).await?;
            stored(*kind, as_read(*kind, created.object.into(), body), identity)
        }
        Step::Update { kind, body, .. } => {
            let updated = avi.update(&wrap(outgoing(*kind, body))).await?;
            stored(*kind, as_read(*kind, updated.into(), body), identity)
        }
        Step::Delete { uuid, .. } => {
            avi.delete::<T>(uuid).await?;
            Ok(Applied::Deleted)
        }
        Step::Conflict { .. } | Step::Blocked { .. } => Ok(Applied::Deleted),
    }
}

/// A write's answer as a later read would show it. The controller answers a write of an SSLKeyAndCertificate
/// without the key and without the PEM texts (recorded), where a read masks the key and shows the certificate:
/// without this, every later comparison would see a changed certificate and write it again.
fn as_read(
    kind: Kind,
    mut answer: Map<String, Value>,
    sent: &Map<String, Value>,
) -> Map<String, Value> {
    if kind != Kind::SslKeyAndCertificate {
        return answer;
    }
    if sent.contains_key("key") && !answer.contains_key("key") {
        answer.insert("key".into(), Value::String(SENSITIVE.into()));
    }
    if let Some(pem) = sent
        .get("certificate")
        .and_then(|c| c.get("certificate"))
        .cloned()
        && let Some(c) = answer.get_mut("certificate").and_then(Value::as_object_mut)
    {
        c.entry("certificate").or_insert(pem);
    }
    answer
}

/// What the controller shows in place of a write-only secret.
const SENSITIVE: &str = "<sensitive>";

fn stored(kind: Kind, body: Map<String, Value>, identity: &Identity) -> Result<Applied, AviError> {
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    existing(kind, body, identity)
        .map(Applied::Stored)
        .ok_or(AviError::MissingUuid {
            obj_type: kind.obj_type(),
            name,
        })
}

/// Executes one step.
pub async fn execute<A: AviApi>(
    avi: &A,
    step: &Step,
    identity: &Identity,
) -> Result<Applied, AviError> {
    match step.kind() {
        Kind::VsVip => write(avi, step, identity, VsVipJson).await,
        Kind::SslKeyAndCertificate => write(avi, step, identity, SslJson).await,
        Kind::PkiProfile => write(avi, step, identity, PkiProfileJson).await,
        Kind::Pool => write(avi, step, identity, PoolJson).await,
        Kind::PoolGroup => write(avi, step, identity, PoolGroupJson).await,
        Kind::L4PolicySet => write(avi, step, identity, L4PolicySetJson).await,
        Kind::HttpPolicySet => write(avi, step, identity, HttpPolicySetJson).await,
        Kind::VirtualService | Kind::VirtualServiceChild => {
            write(avi, step, identity, VirtualServiceJson).await
        }
    }
}

async fn read_kind<A: AviApi, T: AviObject + Into<Map<String, Value>>>(
    avi: &A,
    kind: Kind,
    uuid: &str,
    identity: &Identity,
) -> Result<Option<Existing>, AviError> {
    Ok(avi
        .get::<T>(uuid)
        .await?
        .and_then(|o| existing(kind, o.into(), identity)))
}

/// Reads one object by uuid (`None`: it is gone).
pub async fn read<A: AviApi>(
    avi: &A,
    kind: Kind,
    uuid: &str,
    identity: &Identity,
) -> Result<Option<Existing>, AviError> {
    match kind {
        Kind::VsVip => read_kind::<A, VsVipJson>(avi, kind, uuid, identity).await,
        Kind::SslKeyAndCertificate => read_kind::<A, SslJson>(avi, kind, uuid, identity).await,
        Kind::PkiProfile => read_kind::<A, PkiProfileJson>(avi, kind, uuid, identity).await,
        Kind::Pool => read_kind::<A, PoolJson>(avi, kind, uuid, identity).await,
        Kind::PoolGroup => read_kind::<A, PoolGroupJson>(avi, kind, uuid, identity).await,
        Kind::L4PolicySet => read_kind::<A, L4PolicySetJson>(avi, kind, uuid, identity).await,
        Kind::HttpPolicySet => read_kind::<A, HttpPolicySetJson>(avi, kind, uuid, identity).await,
        Kind::VirtualService | Kind::VirtualServiceChild => {
            read_kind::<A, VirtualServiceJson>(avi, kind, uuid, identity).await
        }
    }
}

async fn list_kind<A: AviApi, T: AviObject + Into<Map<String, Value>>>(
    avi: &A,
    kind: Kind,
    identity: &Identity,
    f: &mut (impl FnMut(Existing) + Send),
) -> Result<(), AviError> {
    // VsVips have no created_by: found, as AKO finds them, by their name prefix, and kept when their markers
    // make them ako's ([`Identity::owner_of`]).
    let query = if kind == Kind::VsVip {
        ListQuery {
            include_name: true,
            extra: vec![("name.contains".into(), format!("{}--", identity.cluster))],
            ..ListQuery::default()
        }
    } else {
        ListQuery {
            created_by: Some(identity.created_by.clone()),
            include_name: true,
            ..ListQuery::default()
        }
    };
    avi.list_each(&query, |o: T| {
        if let Some(e) = existing(kind, o.into(), identity) {
            f(e);
        }
    })
    .await
}

/// Reads every object of ako's (`created_by`, or for VsVips the name prefix), of every type ako writes (all
/// pages), handing each to `f` as its page arrives (so a caller keeping a compact form never holds more than a
/// page of parsed objects). An object whose owner is not ako's after all ([`Identity::owner_of`]: another
/// cluster's, a VsVip without ako's marker) is handed over too, with its owner: it is never adopted. An error
/// means the observation is incomplete, and the caller must not delete anything on its basis.
pub async fn for_each_owned<A: AviApi>(
    avi: &A,
    identity: &Identity,
    mut f: impl FnMut(Existing) + Send,
) -> Result<(), AviError> {
    list_kind::<A, VsVipJson>(avi, Kind::VsVip, identity, &mut f).await?;
    list_kind::<A, SslJson>(avi, Kind::SslKeyAndCertificate, identity, &mut f).await?;
    list_kind::<A, PkiProfileJson>(avi, Kind::PkiProfile, identity, &mut f).await?;
    list_kind::<A, PoolJson>(avi, Kind::Pool, identity, &mut f).await?;
    list_kind::<A, PoolGroupJson>(avi, Kind::PoolGroup, identity, &mut f).await?;
    list_kind::<A, L4PolicySetJson>(avi, Kind::L4PolicySet, identity, &mut f).await?;
    list_kind::<A, HttpPolicySetJson>(avi, Kind::HttpPolicySet, identity, &mut f).await?;
    list_kind::<A, VirtualServiceJson>(avi, Kind::VirtualService, identity, &mut f).await?;
    Ok(())
}

/// Every object of ako's, of every type ako writes (all pages); see [`for_each_owned`].
pub async fn list_owned<A: AviApi>(
    avi: &A,
    identity: &Identity,
) -> Result<Vec<Existing>, AviError> {
    let mut out = Vec::new();
    for_each_owned(avi, identity, |e| out.push(e)).await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_certificate_write_answer_is_cached_as_a_read_shows_it() {
        let sent =
            json!({"name": "c--h", "key": "PEM KEY", "certificate": {"certificate": "PEM CERT"}});
        let answer = json!({"uuid": "sslkeyandcertificate-1", "name": "c--h", "certificate": {"subject": {}}});
        let (Value::Object(sent), Value::Object(answer)) = (sent, answer) else {
            panic!("objects")
        };
        let cached = as_read(Kind::SslKeyAndCertificate, answer.clone(), &sent);
        assert_eq!(cached["key"], "<sensitive>");
        assert_eq!(cached["certificate"]["certificate"], "PEM CERT");
        assert!(ako_core::plan::converged(&sent, &cached));
        assert_eq!(as_read(Kind::Pool, answer.clone(), &sent), answer);
    }

    #[test]
    fn cached_form_reads_identity_and_child_kind() {
        let body = json!({"uuid": "virtualservice-1", "name": "c--host", "type": "VS_TYPE_VH_CHILD", "created_by": "ako-c"});
        let e = existing(
            Kind::VirtualService,
            body.as_object().cloned().unwrap_or_default(),
            &Identity::new("c", None),
        )
        .expect("existing");
        assert_eq!(e.kind, Kind::VirtualServiceChild);
        assert_eq!(e.created_by.as_deref(), Some("ako-c"));
        assert!(
            existing(Kind::Pool, Map::new(), &Identity::new("c", None)).is_none(),
            "an answer without uuid is not an object"
        );
    }
}
