//! Typed errors of the Avi client, classified transient/permanent as in avi-api.md §2.9.

use std::time::Duration;

/// An error talking to the Avi Controller.
#[derive(Debug, thiserror::Error)]
pub enum AviError {
    /// The controller answered with a non-success status.
    #[error("{method} {path}: HTTP {status}: {message}")]
    Status {
        method: String,
        path: String,
        status: u16,
        /// The controller's `error` message, or the plain-text body.
        message: String,
        /// Seconds from a `Retry-After` header, if any.
        retry_after: Option<Duration>,
    },
    /// Connection, TLS or timeout failure before a status was received.
    #[error("{method} {path}: transport error: {source}")]
    Transport {
        method: String,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    /// The response body could not be decoded into the expected type.
    #[error("{method} {path}: unexpected response body: {source}")]
    Decode {
        method: String,
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// Login was refused (bad credentials or token).
    #[error("login failed: HTTP {status}: {message}")]
    Login { status: u16, message: String },
    /// The client configuration is unusable (URL, CA bundle, TLS).
    #[error("invalid Avi client configuration: {0}")]
    Config(String),
    /// An object without uuid was passed where one is required (PUT, PATCH, DELETE).
    #[error("{obj_type} {name:?} has no uuid")]
    MissingUuid {
        obj_type: &'static str,
        name: String,
    },
    /// A create answered 409 but the object could not be read back by name.
    #[error("{obj_type} {name:?} already exists but could not be read back")]
    ConflictNotFound {
        obj_type: &'static str,
        name: String,
    },
    /// An object with this name exists and was not created by this client's creator value, so the client
    /// refuses to adopt it (a 409 on create, or the read-back after an ambiguous create).
    #[error("{}", conflict_text(.obj_type, .name, .uuid.as_deref(), .owner.as_deref(), .expected.as_deref()))]
    Conflict {
        obj_type: &'static str,
        name: String,
        /// uuid of the existing object.
        uuid: Option<String>,
        /// `created_by` of the existing object (`None`: not created by ako).
        owner: Option<String>,
        /// This client's creator value (`ClientConfig::created_by`).
        expected: Option<String>,
    },
    /// The controller asked (429/503 `Retry-After`) to wait longer than the client is willing to hold a
    /// session for; the caller should requeue after `retry_after`.
    #[error(
        "{method} {path}: HTTP {status}: the controller asked to retry after {}s, longer than the client's \
         cap of {}s (ClientConfig::max_retry_after); requeue and retry after that delay ({message})",
        .retry_after.as_secs(), .cap.as_secs()
    )]
    RetryAfterTooLong {
        method: String,
        path: String,
        status: u16,
        message: String,
        /// What the controller asked for.
        retry_after: Duration,
        cap: Duration,
    },
    /// Not sent: the caller's fence (leadership) no longer allows writes.
    #[error("not sent: this replica is no longer the leader")]
    Fenced,
    /// A POST or PATCH failed after it may have reached the controller (transport error once sent, 5xx)
    /// and the client could not learn whether the write was applied, so it did not repeat it.
    #[error(
        "{method} {path}: outcome unknown, the write may or may not have been applied ({reason}); \
         re-read the object before retrying: {source}"
    )]
    OutcomeUnknown {
        method: String,
        path: String,
        reason: String,
        #[source]
        source: Box<AviError>,
    },
}

fn conflict_text(
    obj_type: &str,
    name: &str,
    uuid: Option<&str>,
    owner: Option<&str>,
    expected: Option<&str>,
) -> String {
    let uuid = uuid.map(|u| format!(" ({u})")).unwrap_or_default();
    let owner = match owner {
        Some(o) => format!("owned by created_by {o:?}"),
        None => "not created by ako (no created_by)".to_string(),
    };
    let rule = match expected {
        Some(e) => format!("only objects with created_by {e:?} are adopted"),
        None => {
            "no creator value is configured (ClientConfig::created_by), so no existing object is \
                 adopted"
                .to_string()
        }
    };
    format!(
        "{obj_type} {name:?}{uuid} already exists and is {owner}; refusing to adopt it: {rule}. \
         Rename the object or remove the existing one"
    )
}

impl AviError {
    /// The HTTP status, when the controller answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. }
            | Self::Login { status, .. }
            | Self::RetryAfterTooLong { status, .. } => Some(*status),
            Self::Conflict { .. } => Some(409),
            _ => None,
        }
    }

    /// The controller's error message, when it answered.
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Status { message, .. }
            | Self::Login { message, .. }
            | Self::RetryAfterTooLong { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The delay a `Retry-After` header asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            Self::RetryAfterTooLong { retry_after, .. } => Some(*retry_after),
            Self::OutcomeUnknown { source, .. } => source.retry_after(),
            _ => None,
        }
    }

    /// True when the outcome of a POST/PATCH is unknown (see [`AviError::OutcomeUnknown`]).
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Self::OutcomeUnknown { .. })
    }

    /// True for 404 (object or endpoint not found).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// True for 409 (duplicate name).
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// Whether retrying the same request later may succeed (avi-api.md §2.9): transport errors, 408, 429,
    /// 412 (concurrent modification: re-read and retry), 5xx, and the 400/403 messages the controller uses
    /// for temporary conditions (IPAM exhausted, VRF not yet there, upgrade in progress).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. }
            | Self::RetryAfterTooLong { .. }
            | Self::OutcomeUnknown { .. }
            | Self::Fenced => true,
            Self::Status {
                status, message, ..
            } => classify_transient(*status, message),
            _ => false,
        }
    }

    /// Whether the client retries this error by itself (backoff): transport, 408, 429 and 5xx (for POST and
    /// PATCH only when the write is known not to have happened). Other transient errors (412, IPAM
    /// exhaustion, a `Retry-After` over the cap, an unknown write outcome, …) need the caller to re-read,
    /// requeue or wait for a change.
    pub fn is_retryable_by_client(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Status { status, .. } => matches!(*status, 408 | 429 | 500..=599),
            _ => false,
        }
    }
}

/// Transient/permanent classification of a controller answer.
pub fn classify_transient(status: u16, message: &str) -> bool {
    match status {
        408 | 412 | 429 | 500..=599 => true,
        400 => {
            message.contains("No available free IPs")
                || message.contains("VrfContext not found")
                || message.contains("VrfContext object not found")
        }
        403 => message.contains("Configuration is disallowed during upgrade"),
        _ => false,
    }
}

/// Extracts the controller's message from a response body: `{"error": "..."}` or plain text.
/// Capped at [`MAX_MESSAGE`] bytes, whatever its form: it is copied into errors, logs and Events.
pub fn controller_message(body: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(serde_json::Value::String(msg)) = map.get("error") {
            return capped(msg.trim());
        }
        if let Some(value) = map.get("error") {
            return capped(&value.to_string());
        }
    }
    capped(String::from_utf8_lossy(body).trim())
}

/// The longest controller message kept.
pub const MAX_MESSAGE: usize = 512;

fn capped(text: &str) -> String {
    if text.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &text[..end])
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_classification_follows_the_status_table() {
        let cases: &[(u16, &str, bool)] = &[
            (500, "record not found", true),
            (502, "", true),
            (503, "", true),
            (408, "", true),
            (429, "", true),
            (412, "Need to reload object data VsVip", true),
            (400, "No available free IPs", true),
            (400, "VrfContext object not found!", true),
            (400, "Invalid field", false),
            (403, "Configuration is disallowed during upgrade", true),
            (403, "Forbidden", false),
            (404, "Pool object not found!", false),
            (
                409,
                "Pool with this Name, Tenant ref and Cloud ref already exists.",
                false,
            ),
            (401, "CSRF token missing or incorrect.", false),
        ];
        for (status, message, want) in cases {
            assert_eq!(
                classify_transient(*status, message),
                *want,
                "{status} {message}"
            );
        }
    }

    #[test]
    fn controller_message_reads_json_error_or_plain_text() {
        let cases: &[(&[u8], &str)] = &[
            (
                br#"{"error": "Invalid credentials"}"#,
                "Invalid credentials",
            ),
            (
                b"CSRF token missing or incorrect.",
                "CSRF token missing or incorrect.",
            ),
            (br#"{"error": {"field": "bad"}}"#, r#"{"field":"bad"}"#),
            (b"  \n", ""),
        ];
        let long = format!("{{\"error\": \"{}\"}}", "é".repeat(2000));
        let got = controller_message(long.as_bytes());
        assert!(
            got.len() <= MAX_MESSAGE + "…".len(),
            "a JSON error is capped too: {}",
            got.len()
        );
        assert!(got.ends_with('…'));
        for (body, want) in cases {
            assert_eq!(controller_message(body), *want);
        }
    }
}
