//! The cache of ako's Avi objects between passes: identity, compressed body, a VsVip's addresses.

#[allow(clippy::wildcard_imports)]
use super::*;

/// An object ako owns, as kept between passes: its identity, the controller's body as compact JSON text
/// compressed with LZ4 against a dictionary of its kind (a controller's body repeats its field names, defaults
/// and references; it is parsed only when the object is planned: a parsed body costs about seven times its
/// text), and a VsVip's addresses.
#[derive(Clone)]
pub(super) struct Cached {
    pub(super) kind: Kind,
    pub(super) uuid: Box<str>,
    /// Shared with the reconciler's owner text when it is ako's (nearly every cached object).
    pub(super) created_by: Option<Arc<str>>,
    pub(super) json: Box<[u8]>,
    pub(super) vips: Box<[IpAddr]>,
}

impl Cached {
    /// `owner` is ako's `created_by`, shared by the entries of ako's objects.
    pub(super) fn of(e: &Existing, owner: &Arc<str>) -> Self {
        let text = serde_json::to_vec(&e.body).unwrap_or_default();
        let dict = dictionary(e.kind, &text);
        Cached {
            kind: e.kind,
            uuid: e.uuid.as_str().into(),
            created_by: e.created_by.as_deref().map(|c| {
                if c == &**owner {
                    Arc::clone(owner)
                } else {
                    c.into()
                }
            }),
            json: lz4_flex::block::compress_prepend_size_with_dict(&text, dict).into_boxed_slice(),
            vips: if e.kind == Kind::VsVip {
                l4::vips_of(&e.body).into_boxed_slice()
            } else {
                Box::default()
            },
        }
    }

    /// The controller's body as kept (ako's own serialization and compression, so it reads back); `None` if it
    /// does not (memory damage, a bug): the caller must read the object again rather than plan on an empty body,
    /// whose update would drop every field ako does not manage.
    pub(super) fn body(&self) -> Option<Map<String, serde_json::Value>> {
        let dict = dictionary(self.kind, &[]);
        lz4_flex::block::decompress_size_prepended_with_dict(&self.json, dict)
            .ok()
            .and_then(|text| serde_json::from_slice(&text).ok())
    }

    /// The object as the planner reads it; with an empty body if it does not read back (enough for a deletion,
    /// which needs only the uuid).
    pub(super) fn existing(&self, name: &str) -> Existing {
        Existing {
            kind: self.kind,
            uuid: self.uuid.to_string(),
            name: name.to_string(),
            created_by: self.created_by.as_deref().map(String::from),
            body: self.body().unwrap_or_default(),
        }
    }
}

impl std::fmt::Debug for Cached {
    /// Without the body: it may hold a certificate's private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("kind", &self.kind)
            .field("uuid", &self.uuid)
            .field("created_by", &self.created_by)
            .field("body_bytes", &self.json.len())
            .field("vips", &self.vips)
            .finish()
    }
}

/// The LZ4 dictionary of a kind's cached bodies: the text of the first body of that kind this process caches,
/// never changed after, so every body of the kind is compressed and read back with the same one. Bodies of one
/// kind share most of their text (field names, the controller's defaults, tenant and cloud references), so
/// against it a body compresses several times better than alone.
pub(super) fn dictionary(kind: Kind, first: &[u8]) -> &'static [u8] {
    static DICTIONARIES: [std::sync::OnceLock<Box<[u8]>>; Kind::ALL.len()] =
        [const { std::sync::OnceLock::new() }; Kind::ALL.len()];
    // LZ4 refers back at most 64 KiB: a longer first body only contributes its end.
    DICTIONARIES[kind as usize].get_or_init(|| first[first.len().saturating_sub(1 << 16)..].into())
}
