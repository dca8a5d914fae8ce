//! The fault-injection suite, short form (tests/common/faults.rs says what it does and checks): a fixed seed, a
//! few dozen steps. `scripts/faults.sh` runs the long form and RELIABILITY.md reports it.
//!
//! `AKO_FAULT_SEED` and `AKO_FAULT_STEPS` change the sequence; `AKO_FAULT_REPORT=FILE` writes the report as JSON.

mod common;
#[path = "common/faults.rs"]
mod faults;
#[path = "common/lab.rs"]
mod lab;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_changes_under_random_faults_delete_nothing_claimed_write_only_from_the_leader_and_converge()
 {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let seed = env("AKO_FAULT_SEED", 7);
    let steps = u32::try_from(env("AKO_FAULT_STEPS", 60)).unwrap_or(60);
    let mut suite = faults::Suite::start(seed).await;
    suite.run(steps).await;
    let report = suite.finish().await;
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    println!("{text}");
    if let Ok(path) = std::env::var("AKO_FAULT_REPORT") {
        std::fs::write(&path, &text).expect("report");
    }
    assert!(
        report.violations.is_empty(),
        "invariants violated:\n{}",
        report.violations.join("\n")
    );
    let f = &report.faults;
    let injected = f.avi_5xx_windows
        + f.avi_429_windows
        + f.avi_timeout_windows
        + f.avi_reset_windows
        + f.avi_all_writes_fail_windows
        + f.session_expiries
        + f.rbac_removals
        + f.apiserver_restarts
        + f.ako_kills;
    assert!(
        injected >= 5,
        "too few faults for the run to mean anything: {f:?}"
    );
    // A replica restarted inside such a window starts at the budget's ceiling and needs a few refusals to come
    // down to its floor (2/s): a second of up to about ten refusals is expected there, not a rate that grows.
    assert!(
        report.max_rps_while_failing <= 20,
        "refused requests per second against a controller refusing every write: {}",
        report.max_rps_while_failing
    );
}
