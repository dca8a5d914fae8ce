//! Persistence: an append-only JSON-lines journal with per-line checksums and group commit (one write +
//! fsync per batch, then every waiter is acknowledged). Compacted to one record per object at start.
//! A torn final line (crash mid-append, never acknowledged) is dropped with a warning; any other damage
//! is a startup error, never a silent reset.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

/// The journal file inside the state directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// One journal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op")]
pub enum Record {
    #[serde(rename = "put")]
    Put { t: String, o: Map<String, Value> },
    #[serde(rename = "del")]
    Delete { t: String, u: String },
}

/// Startup and write errors of the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: line {line} is corrupt ({reason}); refusing to start. Move the file away to start from the seed"
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// FNV-1a 64 of a line's JSON: detects bit rot and hand edits.
pub fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A record by reference: the write path journals a stored body without cloning it. Serializes to
/// exactly the bytes of the matching [`Record`].
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "op")]
pub enum RecordRef<'a> {
    #[serde(rename = "put")]
    Put {
        t: &'a str,
        o: &'a Map<String, Value>,
    },
    #[serde(rename = "del")]
    Delete { t: &'a str, u: &'a str },
}

impl<'a> From<&'a Record> for RecordRef<'a> {
    fn from(r: &'a Record) -> Self {
        match r {
            Record::Put { t, o } => Self::Put { t, o },
            Record::Delete { t, u } => Self::Delete { t, u },
        }
    }
}

/// Encodes a record as one journal line.
pub fn encode(record: &Record) -> Vec<u8> {
    encode_ref(RecordRef::from(record))
}

/// Encodes a record as one journal line: `<fnv64 hex> <json>\n`, serialized once into one buffer.
pub fn encode_ref(record: RecordRef<'_>) -> Vec<u8> {
    const HEAD: usize = 17;
    let mut line = Vec::with_capacity(512);
    line.extend_from_slice(&[b'0'; HEAD]);
    line[HEAD - 1] = b' ';
    if serde_json::to_writer(&mut line, &record).is_err() {
        line.truncate(HEAD);
    }
    let sum = checksum(&line[HEAD..]);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in line[..HEAD - 1].iter_mut().enumerate() {
        *b = HEX[((sum >> (60 - 4 * i)) & 0xf) as usize];
    }
    line.push(b'\n');
    line
}

fn decode_line(line: &[u8]) -> Result<Record, String> {
    if line.len() < 18 || line[16] != b' ' {
        return Err("missing checksum".into());
    }
    let want = std::str::from_utf8(&line[..16])
        .ok()
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or("bad checksum field")?;
    let json = &line[17..];
    if checksum(json) != want {
        return Err("checksum mismatch".into());
    }
    serde_json::from_slice(json).map_err(|e| format!("bad record: {e}"))
}

/// Reads the journal of `dir`: `None` when there is none yet.
pub fn load(dir: &Path) -> Result<Option<Vec<Record>>, JournalError> {
    let path = dir.join(JOURNAL_FILE);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let complete = match data.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        None => 0,
    };
    if complete < data.len() {
        tracing::warn!(
            path = %path.display(),
            bytes = data.len() - complete,
            "dropping a torn final journal line (crash during an unacknowledged write)"
        );
    }
    let mut records = Vec::new();
    for (i, line) in data[..complete].split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let record = decode_line(line).map_err(|reason| JournalError::Corrupt {
            path: path.clone(),
            line: i + 1,
            reason,
        })?;
        records.push(record);
    }
    Ok(Some(records))
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Rewrites the journal as `records` (atomically: temp file, fsync, rename, fsync of the directory).
pub fn compact(dir: &Path, records: impl IntoIterator<Item = Record>) -> Result<(), JournalError> {
    let path = dir.join(JOURNAL_FILE);
    let tmp = dir.join(format!("{JOURNAL_FILE}.tmp"));
    {
        let mut file = open_private(&tmp, true)?;
        let mut buf = Vec::with_capacity(1 << 20);
        for r in records {
            buf.extend_from_slice(&encode(&r));
            if buf.len() > (1 << 20) {
                file.write_all(&buf).map_err(io_err(&tmp))?;
                buf.clear();
            }
        }
        file.write_all(&buf).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir)
}

fn open_private(path: &Path, truncate: bool) -> Result<File, JournalError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = OpenOptions::new();
    opts.create(true).mode(0o600);
    if truncate {
        opts.write(true).truncate(true);
    } else {
        opts.append(true);
    }
    opts.open(path).map_err(io_err(path))
}

struct Pending {
    line: Vec<u8>,
    ack: oneshot::Sender<Result<(), String>>,
}

/// The appending writer: a thread that batches pending records (group commit).
#[derive(Debug)]
pub struct Journal {
    tx: Option<mpsc::UnboundedSender<Pending>>,
    thread: Option<std::thread::JoinHandle<()>>,
    failed: Arc<AtomicBool>,
}

/// Waits for a record to be durable.
pub type Ack = oneshot::Receiver<Result<(), String>>;

impl Journal {
    /// Opens the journal of `dir` for appending.
    pub fn open(dir: &Path, fsync: bool) -> Result<Self, JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let mut file = open_private(&path, false)?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Pending>();
        let failed = Arc::new(AtomicBool::new(false));
        let failed_w = Arc::clone(&failed);
        let thread = std::thread::Builder::new()
            .name("emulator-journal".into())
            .spawn(move || {
                let mut buf = Vec::with_capacity(1 << 16);
                while let Some(first) = rx.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < 8192 {
                        match rx.try_recv() {
                            Ok(p) => batch.push(p),
                            Err(_) => break,
                        }
                    }
                    buf.clear();
                    for p in &batch {
                        buf.extend_from_slice(&p.line);
                    }
                    let result = if failed_w.load(Ordering::Acquire) {
                        Err("the journal failed earlier; refusing further writes".to_string())
                    } else {
                        file.write_all(&buf)
                            .and_then(|()| if fsync { file.sync_data() } else { Ok(()) })
                            .map_err(|e| format!("{}: {e}", path.display()))
                    };
                    if let Err(error) = &result {
                        tracing::error!(%error, "emulator journal write failed");
                        failed_w.store(true, Ordering::Release);
                    }
                    for p in batch {
                        let _ = p.ack.send(result.clone());
                    }
                }
            })
            .map_err(io_err(dir))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            failed,
        })
    }

    /// Queues a record; the returned receiver resolves once it is durable. Call under the store lock so
    /// the journal order is the mutation order.
    pub fn submit(&self, record: &Record) -> Ack {
        self.submit_ref(RecordRef::from(record))
    }

    /// [`Journal::submit`] of a borrowed record.
    pub fn submit_ref(&self, record: RecordRef<'_>) -> Ack {
        let (ack, rx) = oneshot::channel();
        let pending = Pending {
            line: encode_ref(record),
            ack,
        };
        match &self.tx {
            Some(tx) => {
                if let Err(mpsc::error::SendError(p)) = tx.send(pending) {
                    let _ = p.ack.send(Err("journal closed".into()));
                }
            }
            None => {
                let _ = pending.ack.send(Err("journal closed".into()));
            }
        }
        rx
    }

    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Flushes pending records and stops the writer.
    pub fn close(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(name: &str) -> Record {
        let o = serde_json::json!({"uuid": format!("pool-{name}"), "name": name});
        Record::Put {
            t: "pool".into(),
            o: o.as_object().cloned().expect("object"),
        }
    }

    #[test]
    fn borrowed_encoding_is_byte_identical_to_the_original_line_format() {
        for r in [
            put("a"),
            Record::Delete {
                t: "pool".into(),
                u: "pool-a".into(),
            },
        ] {
            let json = serde_json::to_vec(&r).expect("json");
            let mut want = format!("{:016x} ", checksum(&json)).into_bytes();
            want.extend_from_slice(&json);
            want.push(b'\n');
            assert_eq!(encode(&r), want);
        }
    }

    #[test]
    fn lines_round_trip_and_damage_is_detected() {
        let line = encode(&put("a"));
        assert_eq!(decode_line(&line[..line.len() - 1]), Ok(put("a")));
        let mut flipped = line.clone();
        flipped[30] ^= 0x01;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (flipped, "checksum mismatch"),
            (b"{\"op\":\"put\"}".to_vec(), "missing checksum"),
            (b"zzzzzzzzzzzzzzzz {}".to_vec(), "bad checksum field"),
        ];
        for (input, want) in cases {
            assert_eq!(decode_line(&input).expect_err("damaged"), want);
        }
    }

    #[test]
    fn load_drops_a_torn_tail_but_fails_on_a_damaged_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(load(dir.path()).expect("no journal").is_none());
        compact(dir.path(), vec![put("a"), put("b")]).expect("compact");
        let path = dir.path().join(JOURNAL_FILE);
        let mut data = std::fs::read(&path).expect("read");
        data.extend_from_slice(b"0123456789abcdef {\"op\":\"pu");
        std::fs::write(&path, &data).expect("write");
        assert_eq!(
            load(dir.path()).expect("torn tail tolerated"),
            Some(vec![put("a"), put("b")])
        );
        let pos = data.iter().position(|b| *b == b'"').expect("quote");
        data[pos + 1] ^= 0x20;
        std::fs::write(&path, &data).expect("write");
        let err = load(dir.path()).expect_err("corrupt");
        assert!(
            matches!(err, JournalError::Corrupt { line: 1, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn group_commit_acknowledges_every_record_once_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        compact(dir.path(), Vec::new()).expect("create");
        let mut journal = Journal::open(dir.path(), true).expect("open");
        let acks: Vec<Ack> = (0..50)
            .map(|i| journal.submit(&put(&i.to_string())))
            .collect();
        for ack in acks {
            ack.await.expect("ack").expect("durable");
        }
        journal.close();
        let records = load(dir.path()).expect("load").expect("journal");
        assert_eq!(records.len(), 50);
        assert_eq!(records[49], put("49"));
    }
}
