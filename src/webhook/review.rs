//! Reading an admission.k8s.io/v1 AdmissionReview on the hot path.
//!
//! The API server sends the whole object, with `managedFields`, the `oldObject` on UPDATE and the request
//! options. ako needs only the request's identity and the object's name, namespace, annotations,
//! creationTimestamp and spec. [`read`] takes all of that in one pass over the body: the object is read straight
//! into the typed Ingress or Service as it streams by (for the mutating webhook only the class fields of the
//! spec), and everything else, the `kubectl.kubernetes.io/last-applied-configuration` annotation included, is
//! skipped without being built. If that pass fails, the body is read again in two steps (the review with the
//! object kept as raw JSON, then the object) so that the error says which part is wrong and a review around an
//! unreadable object still gets an answer.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::api::networking::v1::{Ingress, IngressSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::core::admission::Operation;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use ako_core::admission::{Mode, Object, ReviewError, ReviewMeta, RuleReview, Subject};

/// The annotation `kubectl apply` writes: a copy of the whole object, never read by ako, so never built.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A review read by [`read`]: the request's identity and its object, typed (or why it could not be read).
#[derive(Debug)]
pub struct Review<'a> {
    pub request: RequestIn<'a>,
    pub object: Result<Object, ReviewError>,
}

/// Why a body is not a review ako can answer at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the AdmissionReview has no request")]
    NoRequest,
    #[error("the body is not an admission.k8s.io/v1 AdmissionReview: {0}")]
    Malformed(serde_json::Error),
    #[error("the body is not UTF-8: {0}")]
    NotUtf8(std::str::Utf8Error),
}

/// Reads a review for the webhook of `mode` in one pass; see the module docs.
pub fn read(body: &[u8], mode: Mode) -> Result<Review<'_>, ReadError> {
    // JSON is UTF-8. Checking the whole body once is cheaper than checking every string as it is read.
    let body = std::str::from_utf8(body).map_err(ReadError::NotUtf8)?;
    let mut de = serde_json::Deserializer::from_str(body);
    let fast = ReviewSeed { mode }
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r));
    match fast {
        Ok(Some(fast)) => {
            let object = match fast.object {
                ObjectIn::Read(o) => Ok(o.fill_namespace(fast.request.namespace.as_deref())),
                // The object came before the request's kind: read it now that the kind is known.
                ObjectIn::Raw(_) => fast.request.object_for(mode),
            };
            Ok(Review {
                request: fast.request,
                object,
            })
        }
        Ok(None) => Err(ReadError::NoRequest),
        Err(_) => {
            let slow: ReviewIn = serde_json::from_str(body).map_err(ReadError::Malformed)?;
            let request = slow.request.ok_or(ReadError::NoRequest)?;
            let object = request.object_for(mode);
            Ok(Review { request, object })
        }
    }
}

/// The parts of an AdmissionReview ako reads, with the object kept as raw JSON (the two-step reader).
#[derive(Debug, Deserialize)]
pub struct ReviewIn<'a> {
    #[serde(borrow, default)]
    pub request: Option<RequestIn<'a>>,
}

/// The parts of an AdmissionRequest ako reads. Strings borrow from the body unless they hold escapes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestIn<'a> {
    #[serde(borrow)]
    pub uid: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: KindIn<'a>,
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
    pub operation: Operation,
    #[serde(borrow, default)]
    pub user_info: UserIn<'a>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(borrow, default)]
    pub object: Option<&'a RawValue>,
}

/// The request's group/version/kind.
#[derive(Debug, Deserialize)]
pub struct KindIn<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
}

/// Who asked.
#[derive(Debug, Default, Deserialize)]
pub struct UserIn<'a> {
    #[serde(borrow, default)]
    pub username: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default, deserialize_with = "annotations_except_last_applied")]
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

/// Annotations, without [`LAST_APPLIED`] (skipped, not unescaped).
fn annotations_except_last_applied<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    struct Annotations(BTreeMap<String, String>);
    impl<'de> Deserialize<'de> for Annotations {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(Annotations(BTreeMap::new()))
        }
    }
    impl<'de> Visitor<'de> for Annotations {
        type Value = Annotations;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of annotations")
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self, A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                if key == LAST_APPLIED {
                    map.next_value::<IgnoredAny>()?;
                } else {
                    let value = map.next_value::<String>()?;
                    self.0.insert(key, value);
                }
            }
            Ok(self)
        }
    }
    Ok(Option::<Annotations>::deserialize(d)?.map(|a| a.0))
}

fn meta(m: LeanMeta) -> ObjectMeta {
    ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        annotations: m.annotations,
        creation_timestamp: m.creation_timestamp,
        ..ObjectMeta::default()
    }
}

/// Reads the object of `subject` for `mode` from any deserializer (the body as it streams, or a raw value).
/// Mutation looks only at the class fields, so for the mutating webhook only those are read from the spec
/// (validation reads all of it and reports any malformed part). Kinds ako does not handle are not read at all.
#[derive(Clone, Copy)]
struct ObjectSeed {
    subject: Subject,
    mode: Mode,
}

impl ObjectSeed {
    fn read<'de, D: Deserializer<'de>, S: Deserialize<'de>, T>(
        d: D,
        to_spec: impl FnOnce(S) -> T,
    ) -> Result<Option<(ObjectMeta, Option<T>)>, D::Error> {
        let o = Option::<LeanObject<S>>::deserialize(d)?;
        Ok(o.map(|o| (meta(o.metadata), o.spec.map(to_spec))))
    }
}

impl<'de> DeserializeSeed<'de> for ObjectSeed {
    type Value = Object;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Object, D::Error> {
        let class_only = self.mode == Mode::Mutate;
        let ingress = |(metadata, spec)| {
            Object::Ingress(Box::new(Ingress {
                metadata,
                spec,
                status: None,
            }))
        };
        let service = |(metadata, spec)| {
            Object::Service(Box::new(Service {
                metadata,
                spec,
                status: None,
            }))
        };
        let read = match (self.subject, class_only) {
            (Subject::Ingress, true) => Self::read(d, |c: ClassOnly| IngressSpec {
                ingress_class_name: c.ingress_class_name,
                ..IngressSpec::default()
            })?
            .map(ingress),
            (Subject::Ingress, false) => Self::read(d, |s: IngressSpec| s)?.map(ingress),
            (Subject::Service, true) => Self::read(d, |l: LbOnly| ServiceSpec {
                type_: l.type_,
                load_balancer_class: l.load_balancer_class,
                ..ServiceSpec::default()
            })?
            .map(service),
            (Subject::Service, false) => Self::read(d, |s: ServiceSpec| s)?.map(service),
            (Subject::Rule(kind), _) => {
                Self::read(d, |s: serde_json::Value| s)?.map(|(m, spec)| {
                    Object::Rule(Box::new(RuleReview {
                        kind,
                        created: m.creation_timestamp.as_ref().map(|t| t.0.as_second()),
                        key: ako_core::index::ObjKey::of(&m),
                        spec: spec.unwrap_or(serde_json::Value::Null),
                    }))
                })
            }
            (Subject::Other, _) => Option::<IgnoredAny>::deserialize(d)?.map(|_| Object::Other),
        };
        Ok(read.unwrap_or(Object::None))
    }
}

/// The object as the one-pass reader met it.
enum ObjectIn<'a> {
    Read(Object),
    /// Met before the request's kind; read after the pass.
    Raw(Option<&'a RawValue>),
}

struct FastReview<'a> {
    request: RequestIn<'a>,
    object: ObjectIn<'a>,
}

struct ReviewSeed {
    mode: Mode,
}

impl<'de> DeserializeSeed<'de> for ReviewSeed {
    type Value = Option<FastReview<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ReviewSeed {
    type Value = Option<FastReview<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an AdmissionReview")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut request = None;
        while let Some(key) = map.next_key::<ReviewField>()? {
            match key {
                ReviewField::Request => {
                    request =
                        map.next_value_seed(OptionalRequest(RequestSeed { mode: self.mode }))?
                }
                ReviewField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(request)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum ReviewField {
    Request,
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(field_identifier, rename_all = "camelCase")]
enum RequestField {
    Uid,
    Kind,
    Name,
    Namespace,
    Operation,
    UserInfo,
    DryRun,
    Object,
    #[serde(other)]
    Other,
}

struct OptionalRequest(RequestSeed);

impl<'de> DeserializeSeed<'de> for OptionalRequest {
    type Value = Option<FastReview<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalRequest {
    type Value = Option<FastReview<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an AdmissionRequest")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self.0).map(Some)
    }
}

/// A string borrowed from the body when it holds no escapes.
#[derive(Deserialize)]
struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);

struct RequestSeed {
    mode: Mode,
}

impl<'de> Visitor<'de> for RequestSeed {
    type Value = FastReview<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an AdmissionRequest")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error;
        let (mut uid, mut kind, mut operation) = (None, None, None);
        let (mut name, mut namespace) = (Cow::Borrowed(""), None);
        let (mut user_info, mut dry_run) = (UserIn::default(), false);
        let mut object = ObjectIn::Raw(None);
        // A field given twice is an error here, as in the two-step reader (which then says which field).
        let mut seen = 0u16;
        while let Some(key) = map.next_key::<RequestField>()? {
            let bit = 1u16 << (key as u16);
            if key != RequestField::Other && seen & bit != 0 {
                return Err(A::Error::custom("duplicate field in the request"));
            }
            seen |= bit;
            match key {
                RequestField::Uid => uid = Some(map.next_value::<Borrowed<'de>>()?.0),
                RequestField::Kind => kind = Some(map.next_value::<KindIn<'de>>()?),
                RequestField::Name => {
                    name = map
                        .next_value::<Option<Borrowed<'de>>>()?
                        .map(|b| b.0)
                        .unwrap_or_default()
                }
                RequestField::Namespace => {
                    namespace = map.next_value::<Option<Borrowed<'de>>>()?.map(|b| b.0)
                }
                RequestField::Operation => operation = Some(map.next_value::<Operation>()?),
                RequestField::UserInfo => {
                    user_info = map.next_value::<Option<UserIn<'de>>>()?.unwrap_or_default()
                }
                RequestField::DryRun => {
                    dry_run = map.next_value::<Option<bool>>()?.unwrap_or(false)
                }
                RequestField::Object => {
                    object = match &kind {
                        Some(k) => ObjectIn::Read(map.next_value_seed(ObjectSeed {
                            subject: Subject::of(&k.group, &k.kind),
                            mode: self.mode,
                        })?),
                        None => ObjectIn::Raw(map.next_value::<Option<&'de RawValue>>()?),
                    }
                }
                RequestField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let raw = match &object {
            ObjectIn::Raw(raw) => *raw,
            ObjectIn::Read(_) => None,
        };
        Ok(FastReview {
            request: RequestIn {
                uid: uid.ok_or_else(|| A::Error::missing_field("uid"))?,
                kind: kind.ok_or_else(|| A::Error::missing_field("kind"))?,
                name,
                namespace,
                operation: operation.ok_or_else(|| A::Error::missing_field("operation"))?,
                user_info,
                dry_run,
                object: raw,
            },
            object,
        })
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

    /// Reads the raw object for `mode`: for the mutating webhook only the class fields of the spec.
    pub fn object_for(&self, mode: Mode) -> Result<Object, ReviewError> {
        let Some(raw) = self.object else {
            return Ok(Object::None);
        };
        let seed = ObjectSeed {
            subject: self.subject(),
            mode,
        };
        let mut de = serde_json::Deserializer::from_str(raw.get());
        seed.deserialize(&mut de)
            .map(|o| o.fill_namespace(self.namespace.as_deref()))
            .map_err(|source| ReviewError::Object {
                kind: self.subject().as_str(),
                source,
            })
    }

    /// Reads the whole object (as validation does).
    pub fn object(&self) -> Result<Object, ReviewError> {
        self.object_for(Mode::Validate)
    }
}

#[cfg(test)]
mod tests;
