//! Collection filters (avi-api.md §2.2): name forms, uuid, cloud, refers_to/referred_by and plain
//! field equality (an object without the field never matches).

use serde_json::Value;

use super::refs::is_ref_key;
use super::{Obj, Store, TenantSel};
use ako_core::refs::ref_uuid;

impl Store {
    /// Collection filtering (avi-api.md §2.2). Paging and output parameters are not filters; any other
    /// parameter is a field equality filter that an object without the field does not match.
    pub fn matches(&self, obj: &Obj, filters: &[(String, Option<String>)]) -> bool {
        filters.iter().all(|(k, v)| {
            let v = v.as_deref().unwrap_or("");
            match k.as_str() {
                "name" => obj.name == v,
                "name.contains" => obj.name.contains(v),
                "name.icontains" => obj.name.to_lowercase().contains(&v.to_lowercase()),
                "name.in" => v.split(',').any(|n| n == obj.name),
                "uuid" => obj.uuid == v,
                "uuid.in" => v.split(',').any(|n| n == obj.uuid),
                "cloud_ref.name" => obj
                    .cloud
                    .as_deref()
                    .and_then(|c| self.objects.get(c))
                    .is_some_and(|c| c.name == v),
                "cloud_ref.uuid" | "cloud_uuid" => {
                    obj.cloud.as_deref() == Some(v) || obj.obj_type == "cloud" && obj.uuid == v
                }
                "refers_to" => {
                    let target = v.rsplit(':').next().unwrap_or(v);
                    obj.refs.iter().any(|r| r == target)
                }
                "referred_by" => {
                    let source = v.rsplit(':').next().unwrap_or(v);
                    self.objects
                        .get(source)
                        .is_some_and(|s| s.refs.contains(&obj.uuid))
                }
                "page" | "page_size" | "include_name" | "fields" | "skip_default"
                | "join_subresources" | "sort" | "include" | "step" | "limit" | "exclude"
                | "limit_by" | "search" | "isearch" => true,
                // A field filter matches only objects that have the field with that value
                // (AKO finds its own objects with `created_by=ako-<cluster>`; seed objects without
                // `created_by` must not show up).
                field => match obj.body.get(field) {
                    Some(Value::String(s)) if is_ref_key(field) => {
                        s == v
                            || ref_uuid(s)
                                .is_some_and(|u| ref_uuid(v).as_deref() == Some(u.as_str()))
                    }
                    Some(Value::String(s)) => s == v,
                    Some(Value::Bool(b)) => b.to_string() == v,
                    Some(Value::Number(n)) => n.to_string() == v,
                    _ => false,
                },
            }
        })
    }

    /// Objects of `obj_type` visible to `sel` and matching `filters`, in creation order.
    pub fn query<'a>(
        &'a self,
        obj_type: &str,
        sel: &'a TenantSel,
        filters: &'a [(String, Option<String>)],
    ) -> Vec<&'a Obj> {
        // `name=` is the hot path (AKO reads by name): use the index.
        if let Some((_, Some(name))) = filters.iter().find(|(k, _)| k == "name") {
            let mut v: Vec<&Obj> = self
                .names
                .get(&(obj_type.to_string(), name.clone()))
                .into_iter()
                .flatten()
                .filter_map(|u| self.objects.get(u))
                .filter(|o| sel.sees(o) && self.matches(o, filters))
                .collect();
            v.sort_by_key(|o| o.seq);
            return v;
        }
        self.iter_type(obj_type)
            .filter(|o| sel.sees(o) && self.matches(o, filters))
            .collect()
    }
}
