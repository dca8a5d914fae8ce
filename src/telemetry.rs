//! Logging setup: structured tracing, JSON in production, human-readable text for local use.
//!
//! Log lines are appended to an in-memory batch and written by a background thread every 50 ms (or at once when
//! the batch passes 256 KiB), so the admission path never waits on the terminal and never pays a thread wake-up
//! per line. The guard returned by [`init`] flushes what is left at exit.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

const FLUSH_EVERY: Duration = Duration::from_millis(50);
const FLUSH_AT: usize = 256 * 1024;

#[derive(Debug, Default)]
struct Shared {
    buf: Mutex<(Vec<u8>, bool)>,
    wake: Condvar,
}

/// A `MakeWriter` that batches lines for a background writer thread.
#[derive(Debug, Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Flushes and stops the writer thread when dropped.
#[derive(Debug)]
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.buf.lock().1 = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl BatchWriter {
    /// Starts the writer thread over `out`.
    pub fn new<W: Write + Send + 'static>(mut out: W) -> (Self, FlushGuard) {
        let shared = Arc::new(Shared::default());
        let bg = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                // Two buffers trade places, so the loggers append into memory that is already allocated.
                let mut spare = Vec::with_capacity(FLUSH_AT);
                loop {
                    let stop = {
                        let mut g = bg.buf.lock();
                        if g.0.len() < FLUSH_AT && !g.1 {
                            bg.wake.wait_for(&mut g, FLUSH_EVERY);
                        }
                        std::mem::swap(&mut g.0, &mut spare);
                        g.1
                    };
                    if !spare.is_empty() {
                        let _ = out.write_all(&spare);
                        let _ = out.flush();
                        spare.clear();
                    }
                    if stop {
                        return;
                    }
                }
            })
            .ok();
        (
            Self {
                shared: Arc::clone(&shared),
            },
            FlushGuard { shared, thread },
        )
    }
}

impl Write for BatchWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut g = self.shared.buf.lock();
        g.0.extend_from_slice(data);
        if g.0.len() >= FLUSH_AT {
            self.shared.wake.notify_one();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = BatchWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// One JSON object per line: `timestamp`, `level`, `message`, the event's fields, `target`.
///
/// Fields are written straight into the line as they are visited. tracing-subscriber's own JSON format first
/// collects every field into a map of JSON values, which doubled the cost of the webhook's audit line.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

/// Appends `s` as a JSON string literal. Runs of characters that need no escaping are copied whole.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // Every byte matched above is ASCII, so `i` is on a char boundary.
        out.push_str(&s[start..i]);
        if escaped.is_empty() {
            use std::fmt::Write as _;
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends the current UTC time as RFC 3339 with microseconds (`2026-11-26T20:15:52.123456Z`). The part up to
/// the second is formatted once a second per thread.
fn push_timestamp(out: &mut String) {
    use std::cell::RefCell;
    thread_local! {
        static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let now = jiff::Timestamp::now();
    let secs = now.as_second();
    let cached = SECOND.try_with(|second| {
        let mut second = second.borrow_mut();
        if second.0 != secs {
            *second = (secs, now.strftime("%Y-%m-%dT%H:%M:%S").to_string());
        }
        out.push_str(&second.1);
    });
    if cached.is_err() {
        // Logging while this thread's locals are torn down: format in full.
        out.push_str(&format!("{now:.6}"));
        return;
    }
    let micros = now.subsec_microsecond().clamp(0, 999_999);
    let mut digits = [b'0'; 8];
    digits[0] = b'.';
    digits[7] = b'Z';
    let mut m = micros;
    for d in digits[1..7].iter_mut().rev() {
        *d = b'0' + (m % 10) as u8;
        m /= 10;
    }
    out.push_str(std::str::from_utf8(&digits).unwrap_or(".000000Z"));
}

struct JsonFields<'a> {
    out: &'a mut String,
    message: Option<String>,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.out.push(',');
        push_json_str(self.out, field.name());
        self.out.push(':');
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
            return;
        }
        self.key(field);
        push_json_str(self.out, value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.out.push_str(if value { "true" } else { "false" });
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        use std::fmt::Write as _;
        self.key(field);
        let _ = write!(self.out, "{value}");
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        use std::fmt::Write as _;
        self.key(field);
        let _ = write!(self.out, "{value}");
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        use std::fmt::Write as _;
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.out, "{value}");
        } else {
            push_json_str(self.out, &value.to_string());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
            return;
        }
        self.key(field);
        push_json_str(self.out, &text);
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut line = String::with_capacity(384);
        line.push_str("{\"timestamp\":\"");
        push_timestamp(&mut line);
        line.push_str("\",\"level\":\"");
        line.push_str(meta.level().as_str());
        line.push('"');
        let mut fields = JsonFields {
            out: &mut line,
            message: None,
        };
        event.record(&mut fields);
        if let Some(m) = fields.message.take() {
            line.push_str(",\"message\":");
            push_json_str(&mut line, &m);
        }
        push_spans(&mut line, ctx);
        line.push_str(",\"target\":");
        push_json_str(&mut line, meta.target());
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

/// Appends the event's spans, outermost first, as `"spans":[{"name":"pass","pass":7,...},{"name":"group",...}]`:
/// a pass and the group inside it, so one group's (one Service's, one Ingress host's) journey can be followed
/// with `jq 'select(.spans[]?.group == "Service default/web")'`. Span fields are those formatted by
/// [`JsonSpanFields`]; under another field formatter the span names alone are written.
fn push_spans<S, N>(line: &mut String, ctx: &FmtContext<'_, S, N>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let Some(scope) = ctx.event_scope() else {
        return;
    };
    let mut first = true;
    for span in scope.from_root() {
        line.push_str(if first {
            ",\"spans\":[{\"name\":"
        } else {
            ",{\"name\":"
        });
        first = false;
        push_json_str(line, span.name());
        let ext = span.extensions();
        if let Some(fields) = ext.get::<FormattedFields<N>>()
            && fields.fields.starts_with(',')
        {
            line.push_str(&fields.fields);
        }
        line.push('}');
    }
    if !first {
        line.push(']');
    }
}

/// Formats span fields as JSON members (`,"group":"Service default/web","writes":3`), which [`JsonLines`] copies
/// into each event's `spans`. Fields recorded later (`outcome`) are appended.
struct JsonSpanFields;

impl<'w> FormatFields<'w> for JsonSpanFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        let mut out = String::new();
        let mut visit = JsonFields {
            out: &mut out,
            message: None,
        };
        fields.record(&mut visit);
        if let Some(m) = visit.message.take() {
            out.push_str(",\"message\":");
            push_json_str(&mut out, &m);
        }
        writer.write_str(&out)
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> std::fmt::Result {
        self.format_fields(current.as_writer(), fields)
    }
}

/// Installs the global subscriber writing to stdout. `level` takes AKO's names (INFO, DEBUG, WARN, ERROR) or an
/// env-filter directive; `RUST_LOG` wins when set. Keep the guard alive for the life of the process.
pub fn init(level: &str, format: LogFormat) -> FlushGuard {
    init_with(level, format, std::io::stdout())
}

/// Like [`init`], writing to `out` (benchmarks pass a sink).
pub fn init_with<W: Write + Send + 'static>(level: &str, format: LogFormat, out: W) -> FlushGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| filter_for(level));
    let (writer, guard) = BatchWriter::new(out);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Json => {
            let b = builder
                .fmt_fields(JsonSpanFields)
                .event_format(JsonLines)
                .with_filter_reloading();
            let handle = b.reload_handle();
            remember_reloader(move |f| handle.reload(f).map_err(|e| e.to_string()));
            b.try_init()
        }
        LogFormat::Text => {
            let b = builder.with_target(false).with_filter_reloading();
            let handle = b.reload_handle();
            remember_reloader(move |f| handle.reload(f).map_err(|e| e.to_string()));
            b.try_init()
        }
    };
    if let Err(e) = installed {
        eprintln!("logging was already set up: {e}");
    }
    guard
}

/// The filter for one of AKO's level names (INFO, DEBUG, WARN/WARNING, ERROR) or an env-filter directive.
fn filter_for(level: &str) -> EnvFilter {
    let level = match level.to_ascii_uppercase().as_str() {
        "WARNING" => "warn".to_string(),
        other => other.to_ascii_lowercase(),
    };
    EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"))
}

type Reloader = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;
static RELOADER: std::sync::OnceLock<Reloader> = std::sync::OnceLock::new();

fn remember_reloader(f: impl Fn(EnvFilter) -> Result<(), String> + Send + Sync + 'static) {
    let _ = RELOADER.set(Box::new(f));
}

/// Changes the log level of the running process (AKO's `logLevel` is live). Ignored when `RUST_LOG` is set.
pub fn set_level(level: &str) -> Result<(), String> {
    if std::env::var_os("RUST_LOG").is_some() {
        return Ok(());
    }
    match RELOADER.get() {
        Some(reload) => reload(filter_for(level)),
        None => Err("logging is not initialised".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl Write for Capture {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_are_valid_json_with_every_field() {
        use tracing_subscriber::layer::SubscriberExt;
        let out = Capture::default();
        let (writer, guard) = BatchWriter::new(out.clone());
        let layer = tracing_subscriber::fmt::layer()
            .event_format(JsonLines)
            .with_writer(writer);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                target: "audit",
                uid = "u-1",
                reasons = "host \"a\\b\" is\toutside\n",
                allowed = false,
                latency_us = 12u64,
                delta = -3i64,
                ratio = 0.5f64,
                list = ?vec!["x"],
                "admission decision"
            );
        });
        drop(guard);
        let text = String::from_utf8(out.0.lock().clone()).expect("utf8");
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).expect("one JSON object");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], "audit");
        assert_eq!(v["message"], "admission decision");
        assert_eq!(v["uid"], "u-1");
        assert_eq!(v["reasons"], "host \"a\\b\" is\toutside\n");
        assert_eq!(v["allowed"], false);
        assert_eq!(v["latency_us"], 12);
        assert_eq!(v["delta"], -3);
        assert_eq!(v["ratio"], 0.5);
        assert_eq!(v["list"], "[\"x\"]");
        assert!(v["timestamp"].as_str().expect("ts").ends_with('Z'));
    }

    #[test]
    fn json_lines_carry_their_spans_outermost_first_with_fields_recorded_later() {
        use tracing_subscriber::layer::SubscriberExt;
        let out = Capture::default();
        let (writer, guard) = BatchWriter::new(out.clone());
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(JsonSpanFields)
            .event_format(JsonLines)
            .with_writer(writer);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let pass = tracing::info_span!("pass", pass = 7u64, unexplained = false);
            let _p = pass.enter();
            let group = tracing::info_span!(
                "group",
                group = "Service default/web",
                outcome = tracing::field::Empty
            );
            let _g = group.enter();
            group.record("outcome", "applied");
            tracing::info!(kind = "pool", "write");
        });
        drop(guard);
        let text = String::from_utf8(out.0.lock().clone()).expect("utf8");
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).expect("one JSON object");
        assert_eq!(v["message"], "write");
        assert_eq!(v["kind"], "pool");
        assert_eq!(
            v["spans"],
            serde_json::json!([
                {"name": "pass", "pass": 7, "unexplained": false},
                {"name": "group", "group": "Service default/web", "outcome": "applied"}
            ])
        );
    }

    #[test]
    fn batched_lines_are_all_written_by_the_time_the_guard_drops() {
        let out = Capture::default();
        let (mut w, guard) = BatchWriter::new(out.clone());
        for i in 0..1000 {
            w.write_all(format!("line {i}\n").as_bytes())
                .expect("write");
        }
        drop(guard);
        let text = String::from_utf8(out.0.lock().clone()).expect("utf8");
        assert_eq!(text.lines().count(), 1000);
        assert!(text.ends_with("line 999\n"));
    }

    #[test]
    fn lines_are_written_without_waiting_for_exit() {
        let out = Capture::default();
        let (mut w, _guard) = BatchWriter::new(out.clone());
        w.write_all(b"hello\n").expect("write");
        let mut seen = false;
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(10));
            if !out.0.lock().is_empty() {
                seen = true;
                break;
            }
        }
        assert!(seen, "the batch was not flushed within a second");
    }
}
