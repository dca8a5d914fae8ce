//! The request journal: every API request the emulator answered (admin endpoints aside), in order, with the
//! object it named, the status it got and who sent it (`User-Agent`: ako puts its pod name there). Tests and the
//! fault-injection runs read it (`GET /admin/requests?since=N`) to check invariants after the fact: which object
//! was deleted when, by which replica, how many requests a second reached a failing controller.
//!
//! Kept in memory (the newest [`CAPACITY`] records) and, with `--request-log FILE`, appended to a JSON-lines file.

use std::collections::VecDeque;
use std::io::Write;

use serde::{Deserialize, Serialize};

/// Records kept in memory.
pub const CAPACITY: usize = 1_000_000;

/// One answered request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Position in the journal, from 0.
    pub seq: u64,
    /// Milliseconds since the Unix epoch when the answer was ready.
    pub at_ms: u64,
    pub method: String,
    /// The object type (`vsvip`, `virtualservice`, ...), `login`, or the first path segment.
    pub kind: String,
    /// The object's uuid when the path names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// The object's name: from the body of a create, from the store for a request naming a uuid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub status: u16,
    /// The `User-Agent` header.
    #[serde(default)]
    pub agent: String,
}

impl RequestRecord {
    /// Whether the request changes configuration (any method but GET/HEAD, login aside).
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD")
            && self.kind != "login"
            && self.kind != "logout"
    }
}

/// The journal.
#[derive(Debug, Default)]
pub struct Requests {
    records: VecDeque<RequestRecord>,
    next: u64,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl Requests {
    /// Also appends every record to `path` (JSON lines).
    pub fn with_file(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file: Some(std::io::BufWriter::new(file)),
            ..Self::default()
        })
    }

    pub fn push(&mut self, mut r: RequestRecord) {
        r.seq = self.next;
        self.next += 1;
        if let Some(f) = &mut self.file
            && let Ok(line) = serde_json::to_string(&r)
        {
            // Flushed per record: a run killed at any moment keeps what it answered.
            let _ = writeln!(f, "{line}").and_then(|()| f.flush());
        }
        if self.records.len() == CAPACITY {
            self.records.pop_front();
        }
        self.records.push_back(r);
    }

    /// The records from `since` on (at most `limit`).
    pub fn since(&self, since: u64, limit: usize) -> Vec<RequestRecord> {
        let first = self.records.front().map_or(0, |r| r.seq);
        let skip = usize::try_from(since.saturating_sub(first)).unwrap_or(usize::MAX);
        self.records
            .iter()
            .skip(skip)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(method: &str, kind: &str) -> RequestRecord {
        RequestRecord {
            seq: 0,
            at_ms: 1,
            method: method.into(),
            kind: kind.into(),
            uuid: None,
            name: None,
            status: 200,
            agent: String::new(),
        }
    }

    #[test]
    fn records_are_numbered_and_read_from_a_position() {
        let mut r = Requests::default();
        for m in ["POST", "GET", "DELETE"] {
            r.push(rec(m, "pool"));
        }
        let got: Vec<(u64, String)> = r
            .since(1, 10)
            .into_iter()
            .map(|x| (x.seq, x.method))
            .collect();
        assert_eq!(got, [(1, "GET".to_string()), (2, "DELETE".to_string())]);
        assert_eq!(r.next_seq(), 3);
        assert!(rec("DELETE", "pool").is_write());
        assert!(!rec("GET", "pool").is_write());
        assert!(!rec("POST", "login").is_write());
    }
}
