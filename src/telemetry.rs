//! Logging setup: structured tracing, JSON in production, human-readable text for local use.
//!
//! Log lines are appended to an in-memory batch and written by a background thread every 50 ms (or at once when
//! the batch passes 256 KiB), so the admission path never waits on the terminal and never pays a thread wake-up
//! per line. The guard returned by [`init`] flushes what is left at exit.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

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
                loop {
                    let (batch, stop) = {
                        let mut g = bg.buf.lock();
                        if g.0.len() < FLUSH_AT && !g.1 {
                            bg.wake.wait_for(&mut g, FLUSH_EVERY);
                        }
                        (std::mem::take(&mut g.0), g.1)
                    };
                    if !batch.is_empty() {
                        let _ = out.write_all(&batch);
                        let _ = out.flush();
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

/// Installs the global subscriber writing to stdout. `level` takes AKO's names (INFO, DEBUG, WARN, ERROR) or an
/// env-filter directive; `RUST_LOG` wins when set. Keep the guard alive for the life of the process.
pub fn init(level: &str, format: LogFormat) -> FlushGuard {
    init_with(level, format, std::io::stdout())
}

/// Like [`init`], writing to `out` (benchmarks pass a sink).
pub fn init_with<W: Write + Send + 'static>(level: &str, format: LogFormat, out: W) -> FlushGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let level = match level.to_ascii_uppercase().as_str() {
            "WARNING" => "warn".to_string(),
            other => other.to_ascii_lowercase(),
        };
        EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"))
    });
    let (writer, guard) = BatchWriter::new(out);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
    if let Err(e) = installed {
        eprintln!("logging was already set up: {e}");
    }
    guard
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
