//! Reading an admission.k8s.io/v1 AdmissionReview on the hot path.
//!
//! The API server sends the whole object, with `managedFields`, the `oldObject` on UPDATE and the request
//! options. ako needs only the request's identity and the object's name, namespace, annotations,
//! creationTimestamp and spec. So the review is read with the object kept as raw JSON, and the object is then read
//! straight into the typed Ingress or Service. Everything else is skipped without being built. The response uses
//! kube's `AdmissionResponse`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::api::networking::v1::{Ingress, IngressSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::core::GroupVersionKind;
use kube::core::admission::Operation;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::admission::{Mode, Object, ReviewError, ReviewMeta, Subject};

/// The parts of an AdmissionReview ako reads.
#[derive(Debug, Deserialize)]
pub struct ReviewIn<'a> {
    #[serde(borrow, default)]
    pub request: Option<RequestIn<'a>>,
}

/// The parts of an AdmissionRequest ako reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestIn<'a> {
    pub uid: String,
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub operation: Operation,
    #[serde(default)]
    pub user_info: UserIn,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(borrow, default)]
    pub object: Option<&'a RawValue>,
}

/// Who asked.
#[derive(Debug, Default, Deserialize)]
pub struct UserIn {
    #[serde(default)]
    pub username: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    creation_timestamp: Option<Time>,
}

#[derive(Debug, Deserialize)]
struct LeanObject<S> {
    #[serde(default)]
    metadata: LeanMeta,
    #[serde(default = "none")]
    spec: Option<S>,
}

/// The part of an Ingress spec mutation reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClassOnly {
    #[serde(default)]
    ingress_class_name: Option<String>,
}

/// The part of a Service spec mutation reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LbOnly {
    #[serde(default, rename = "type")]
    type_: Option<String>,
    #[serde(default)]
    load_balancer_class: Option<String>,
}

fn none<S>() -> Option<S> {
    None
}

fn meta(m: LeanMeta, request_namespace: &Option<String>) -> ObjectMeta {
    ObjectMeta {
        name: m.name,
        // The object may arrive without namespace on CREATE; the request carries it.
        namespace: m.namespace.or_else(|| request_namespace.clone()),
        annotations: m.annotations,
        creation_timestamp: m.creation_timestamp,
        ..ObjectMeta::default()
    }
}

impl RequestIn<'_> {
    pub fn subject(&self) -> Subject {
        Subject::of(&self.kind.group, &self.kind.kind)
    }

    pub fn meta(&self) -> ReviewMeta {
        ReviewMeta {
            operation: self.operation.clone(),
            subject: self.subject(),
        }
    }

    /// Reads the object for `mode`. Mutation looks only at the class fields, so for the mutating webhook only
    /// those are read from the spec (validation reads all of it and reports any malformed part). Kinds ako
    /// does not handle are not read at all.
    pub fn object_for(&self, mode: Mode) -> Result<Object, ReviewError> {
        let Some(raw) = self.object else {
            return Ok(Object::None);
        };
        let class_only = mode == Mode::Mutate;
        Ok(match self.subject() {
            Subject::Ingress => {
                let (metadata, spec) = if class_only {
                    self.read(raw, |c: ClassOnly| IngressSpec {
                        ingress_class_name: c.ingress_class_name,
                        ..IngressSpec::default()
                    })?
                } else {
                    self.read(raw, |s: IngressSpec| s)?
                };
                Object::Ingress(Box::new(Ingress {
                    metadata,
                    spec,
                    status: None,
                }))
            }
            Subject::Service => {
                let (metadata, spec) = if class_only {
                    self.read(raw, |l: LbOnly| ServiceSpec {
                        type_: l.type_,
                        load_balancer_class: l.load_balancer_class,
                        ..ServiceSpec::default()
                    })?
                } else {
                    self.read(raw, |s: ServiceSpec| s)?
                };
                Object::Service(Box::new(Service {
                    metadata,
                    spec,
                    status: None,
                }))
            }
            Subject::Other => Object::Other,
        })
    }

    /// Reads the whole object (as validation does).
    pub fn object(&self) -> Result<Object, ReviewError> {
        self.object_for(Mode::Validate)
    }

    /// Reads metadata and a spec of type `S`, converted by `to_spec`.
    fn read<S: serde::de::DeserializeOwned, T>(
        &self,
        raw: &RawValue,
        to_spec: impl FnOnce(S) -> T,
    ) -> Result<(ObjectMeta, Option<T>), ReviewError> {
        let o: LeanObject<S> =
            serde_json::from_str(raw.get()).map_err(|source| ReviewError::Object {
                kind: self.subject().as_str(),
                source,
            })?;
        Ok((meta(o.metadata, &self.namespace), o.spec.map(to_spec)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_api_server_review_reads_the_fields_ako_uses_and_skips_the_rest() {
        let body = r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{
            "uid":"u-1","kind":{"group":"networking.k8s.io","version":"v1","kind":"Ingress"},
            "resource":{"group":"networking.k8s.io","version":"v1","resource":"ingresses"},
            "requestKind":{"group":"networking.k8s.io","version":"v1","kind":"Ingress"},
            "name":"web","namespace":"shop","operation":"UPDATE",
            "userInfo":{"username":"alice","groups":["dev"],"extra":{"k":["v"]}},
            "object":{"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"web",
              "namespace":"shop","uid":"x","resourceVersion":"7","creationTimestamp":"2026-01-01T00:00:00Z",
              "annotations":{"kubernetes.io/ingress.class":"avi"},
              "managedFields":[{"manager":"kubectl","operation":"Update","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{}}}]},
              "spec":{"rules":[{"host":"web.avi.jarvis.lab"}]},"status":{"loadBalancer":{}}},
            "oldObject":{"kind":"Ingress","metadata":{"name":"web"},"spec":{"rules":[]}},
            "dryRun":true,"options":{"kind":"UpdateOptions","apiVersion":"meta.k8s.io/v1"}}}"#;
        let review: ReviewIn = serde_json::from_str(body).expect("review");
        let req = review.request.expect("request");
        assert_eq!(req.uid, "u-1");
        assert_eq!(req.operation, Operation::Update);
        assert!(req.dry_run);
        assert_eq!(req.user_info.username.as_deref(), Some("alice"));
        let Object::Ingress(ing) = req.object().expect("object") else {
            panic!("not an Ingress")
        };
        assert_eq!(ing.metadata.name.as_deref(), Some("web"));
        assert_eq!(ing.metadata.namespace.as_deref(), Some("shop"));
        assert!(
            ing.metadata.managed_fields.is_none(),
            "managedFields are skipped"
        );
        assert_eq!(ing.metadata.annotations.as_ref().map(|a| a.len()), Some(1));
        assert!(ing.metadata.creation_timestamp.is_some());
        let host = ing
            .spec
            .as_ref()
            .and_then(|s| s.rules.as_ref())
            .map(|r| r[0].host.clone());
        assert_eq!(host, Some(Some("web.avi.jarvis.lab".to_string())));
    }

    #[test]
    fn the_request_namespace_fills_an_object_without_one_and_other_kinds_are_not_read() {
        let body = r#"{"request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Service"},
            "namespace":"n","operation":"CREATE","object":{"metadata":{"name":"s"},"spec":{"type":"LoadBalancer"}}}}"#;
        let review: ReviewIn = serde_json::from_str(body).expect("review");
        let req = review.request.expect("request");
        let Object::Service(svc) = req.object().expect("object") else {
            panic!("not a Service")
        };
        assert_eq!(svc.metadata.namespace.as_deref(), Some("n"));
        let other = r#"{"request":{"uid":"u","kind":{"group":"apps","version":"v1","kind":"Deployment"},
            "operation":"CREATE","object":{"spec":"anything at all"}}}"#;
        let review: ReviewIn = serde_json::from_str(other).expect("review");
        assert!(matches!(
            review.request.expect("request").object(),
            Ok(Object::Other)
        ));
    }

    #[test]
    fn mutation_reads_only_the_class_fields_and_decides_as_on_the_full_object() {
        use crate::admission::{Mode, decide};
        use crate::config::Config;
        use crate::index::Snapshot;
        let cfg = Config {
            dns_domains: vec!["avi.jarvis.lab".into()],
            ..Config::default()
        };
        let snap = Snapshot::default();
        let cases = [
            (
                r#"{"kind":"Ingress"}"#,
                r#"{"metadata":{"name":"a","annotations":{"kubernetes.io/ingress.class":"avi"}},"spec":{"rules":[{"host":"a.avi.jarvis.lab"}]}}"#,
            ),
            (
                r#"{"kind":"Ingress"}"#,
                r#"{"metadata":{"name":"a","annotations":{"kubernetes.io/ingress.class":"avi"}}}"#,
            ),
            (
                r#"{"kind":"Ingress"}"#,
                r#"{"metadata":{"name":"a"},"spec":{"ingressClassName":"avi-lb","rules":[]}}"#,
            ),
            (
                r#"{"kind":"Service","group":""}"#,
                r#"{"metadata":{"name":"s"},"spec":{"type":"LoadBalancer","ports":[{"port":80}]}}"#,
            ),
            (
                r#"{"kind":"Service","group":""}"#,
                r#"{"metadata":{"name":"s"},"spec":{"type":"LoadBalancer","loadBalancerClass":"x"}}"#,
            ),
        ];
        for (kind, object) in cases {
            let group = if kind.contains("Service") {
                ""
            } else {
                "networking.k8s.io"
            };
            let k = if kind.contains("Service") {
                "Service"
            } else {
                "Ingress"
            };
            let body = format!(
                r#"{{"request":{{"uid":"u","kind":{{"group":"{group}","version":"v1","kind":"{k}"}},"namespace":"n","operation":"CREATE","object":{object}}}}}"#
            );
            let review: ReviewIn = serde_json::from_str(&body).expect("review");
            let req = review.request.expect("request");
            let lean = decide(
                &req.meta(),
                req.object_for(Mode::Mutate).expect("lean"),
                Mode::Mutate,
                &cfg,
                &snap,
            );
            let full = decide(
                &req.meta(),
                req.object().expect("full"),
                Mode::Mutate,
                &cfg,
                &snap,
            );
            assert_eq!(lean, full, "{object}");
        }
    }

    #[test]
    fn a_malformed_spec_is_an_error_naming_the_kind() {
        let body = r#"{"request":{"uid":"u","kind":{"group":"networking.k8s.io","version":"v1","kind":"Ingress"},
            "operation":"CREATE","object":{"metadata":{"name":"x"},"spec":{"rules":"no"}}}}"#;
        let review: ReviewIn = serde_json::from_str(body).expect("review");
        let e = review
            .request
            .expect("request")
            .object()
            .expect_err("malformed");
        assert!(
            e.to_string()
                .starts_with("the Ingress in the request cannot be read"),
            "{e}"
        );
    }
}
