//! Per virtual service analytics: requests and connections, response classes, latency percentiles (time to the
//! response headers, over the last samples) and bytes; and the read-only HTML page that shows them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde_json::{Value, json};

/// Latency samples kept per virtual service.
const SAMPLES: usize = 8192;

#[derive(Debug, Default)]
pub struct VsStats {
    pub requests: AtomicU64,
    pub connections: AtomicU64,
    /// 1xx..5xx.
    pub classes: [AtomicU64; 5],
    /// Requests that got no response from a server (no server up, connection failed).
    pub errors: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    latencies: Mutex<(Vec<u32>, usize)>,
}

impl VsStats {
    pub fn record(&self, status: u16, latency: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.classes.get(usize::from(status / 100).wrapping_sub(1)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        let mut l = self.latencies.lock();
        let (samples, next) = &mut *l;
        if samples.len() < SAMPLES {
            samples.push(us);
        } else {
            samples[*next] = us;
        }
        *next = (*next + 1) % SAMPLES;
    }

    /// p50, p90, p99 in milliseconds.
    pub fn percentiles(&self) -> Option<[f64; 3]> {
        let mut v = self.latencies.lock().0.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let at = |q: f64| {
            let idx = ((v.len() as f64 - 1.0) * q).round() as usize;
            f64::from(v[idx.min(v.len() - 1)]) / 1000.0
        };
        Some([at(0.5), at(0.9), at(0.99)])
    }

    pub fn to_json(&self) -> Value {
        let c = |i: usize| self.classes[i].load(Ordering::Relaxed);
        let p = self.percentiles();
        json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "connections": self.connections.load(Ordering::Relaxed),
            "responses": {"1xx": c(0), "2xx": c(1), "3xx": c(2), "4xx": c(3), "5xx": c(4)},
            "errors": self.errors.load(Ordering::Relaxed),
            "latency_ms": p.map_or(Value::Null, |[p50, p90, p99]| json!({"p50": p50, "p90": p90, "p99": p99})),
            "bytes_in": self.bytes_in.load(Ordering::Relaxed),
            "bytes_out": self.bytes_out.load(Ordering::Relaxed),
        })
    }
}

/// Statistics of every virtual service, by uuid.
#[derive(Debug, Default)]
pub struct Analytics {
    by_vs: RwLock<HashMap<String, Arc<VsStats>>>,
}

impl Analytics {
    pub fn of(&self, vs: &str) -> Arc<VsStats> {
        if let Some(s) = self.by_vs.read().get(vs) {
            return Arc::clone(s);
        }
        Arc::clone(self.by_vs.write().entry(vs.to_string()).or_default())
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => esc(s),
        Value::Null => "-".into(),
        other => esc(&other.to_string()),
    }
}

/// The analytics page, from the runtime view ([`super::Plane::runtime`]).
pub fn page(runtime: &Value) -> String {
    let mut rows = String::new();
    for vs in runtime["virtualservices"].as_array().into_iter().flatten() {
        let state = vs["oper_status"]["state"]
            .as_str()
            .unwrap_or("OPER_UNKNOWN");
        let class = if state == "OPER_UP" { "up" } else { "down" };
        let list = |key: &str| {
            vs[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let a = &vs["analytics"];
        let lat = &a["latency_ms"];
        let mut members = String::new();
        for p in vs["pools"].as_array().into_iter().flatten() {
            for s in p["servers"].as_array().into_iter().flatten() {
                let st = s["oper_status"]["state"].as_str().unwrap_or("OPER_UNKNOWN");
                let c = if st == "OPER_UP" { "up" } else { "down" };
                members.push_str(&format!(
                    "<div class=\"{c}\">{} {}:{} {}</div>",
                    text(&p["name"]),
                    text(&s["ip"]["addr"]),
                    text(&s["port"]),
                    esc(st)
                ));
            }
        }
        let reasons = vs["oper_status"]["reason"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect::<Vec<_>>()
            .join("<br>");
        rows.push_str(&format!(
            "<tr><td><b>{name}</b><div class=\"small\">{reasons}</div></td><td class=\"{class}\">{state}</td>\
             <td>{listeners}</td><td>{fqdns}</td><td>{members}</td><td class=\"n\">{req}</td>\
             <td class=\"n\">{c2}</td><td class=\"n\">{c3}</td><td class=\"n\">{c4}</td><td class=\"n\">{c5}</td>\
             <td class=\"n\">{p50}</td><td class=\"n\">{p90}</td><td class=\"n\">{p99}</td>\
             <td class=\"n\">{bin}</td><td class=\"n\">{bout}</td></tr>\n",
            name = text(&vs["name"]),
            state = esc(state),
            listeners = list("listeners"),
            fqdns = list("fqdns"),
            req = text(&a["requests"]),
            c2 = text(&a["responses"]["2xx"]),
            c3 = text(&a["responses"]["3xx"]),
            c4 = text(&a["responses"]["4xx"]),
            c5 = text(&a["responses"]["5xx"]),
            p50 = text(&lat["p50"]),
            p90 = text(&lat["p90"]),
            p99 = text(&lat["p99"]),
            bin = text(&a["bytes_in"]),
            bout = text(&a["bytes_out"]),
        ));
    }
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>ako emulator: virtual services</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
h1 {{ font-size: 1.3em; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 6px; vertical-align: top; }}
th {{ background: #20435c; color: #fff; }}
.up {{ color: #137333; font-weight: bold; }}
.down {{ color: #b3261e; font-weight: bold; }}
.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
.small {{ font-size: 0.8em; color: #666; }}
</style></head>
<body>
<h1 id="title">Virtual services (generation {generation})</h1>
<table id="vs">
<tr><th>Virtual service</th><th>State</th><th>VIP:port</th><th>FQDN</th><th>Pool members</th><th>Requests</th>
<th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>Bytes in</th><th>Bytes out</th></tr>
{rows}</table>
<p class="small">Read-only. JSON: /admin/dataplane and /api/analytics/metrics/virtualservice/&lt;uuid&gt;.</p>
</body></html>
"#,
        generation = text(&runtime["generation"]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_classes_follow_the_recorded_requests() {
        let s = VsStats::default();
        for i in 1..=100u64 {
            s.record(
                if i % 10 == 0 { 503 } else { 200 },
                Duration::from_millis(i),
            );
        }
        let [p50, p90, p99] = s.percentiles().expect("samples");
        assert!((p50 - 50.0).abs() <= 1.0, "{p50}");
        assert!((p90 - 90.0).abs() <= 1.0, "{p90}");
        assert!((p99 - 99.0).abs() <= 1.0, "{p99}");
        let j = s.to_json();
        assert_eq!(j["responses"]["2xx"], json!(90));
        assert_eq!(j["responses"]["5xx"], json!(10));
    }

    #[test]
    fn the_page_escapes_names() {
        let html = page(&json!({"generation": 1, "virtualservices": [
            {"name": "<script>", "oper_status": {"state": "OPER_UP", "reason": []}, "analytics": {}}]}));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
    }
}
