//! Output form of stored objects: `url` first, refs absolute, `#name` suffixes when asked.

use serde_json::{Map, Value};

use super::refs::is_ref_key;
use super::{Obj, Store};

impl Store {
    /// Renders an object for output: `url` first, refs absolute, `#name` when `include_name`.
    pub fn render(&self, obj: &Obj, host: &str, include_name: bool) -> Map<String, Value> {
        let mut out = Map::with_capacity(obj.body.len() + 1);
        let mut url = format!("https://{host}/api/{}/{}", obj.obj_type, obj.uuid);
        if include_name {
            url.push('#');
            url.push_str(&obj.name);
        }
        out.insert("url".into(), Value::String(url));
        out.insert("uuid".into(), Value::String(obj.uuid.clone()));
        out.insert("name".into(), Value::String(obj.name.clone()));
        for (k, v) in &obj.body {
            if k == "uuid" || k == "name" {
                continue;
            }
            let mut v = v.clone();
            self.render_refs(&mut v, Some(k), host, include_name);
            out.insert(k.clone(), v);
        }
        out
    }

    fn render_refs(&self, value: &mut Value, key: Option<&str>, host: &str, include_name: bool) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    self.render_refs(v, Some(k), host, include_name);
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.render_refs(v, key, host, include_name);
                }
            }
            Value::String(s) if key.is_some_and(is_ref_key) && s.starts_with("/api/") => {
                let mut url = format!("https://{host}{s}");
                if include_name
                    && let Some(u) = s.rsplit('/').next()
                    && let Some(target) = self.objects.get(u)
                {
                    url.push('#');
                    url.push_str(&target.name);
                }
                *s = url;
            }
            _ => {}
        }
    }
}
