//! Live settings: the `avi-k8s-config` ConfigMap (mounted as a directory, which the kubelet updates in place) is
//! re-read periodically, and the switches AKO applies without a restart take effect at once: `deleteConfig`
//! (remove every object ako owns / rebuild them), `logLevel`, and here also `namespaceSelector` and
//! `blockedNamespaceList`.
//!
//! An unreadable or invalid ConfigMap keeps the last good settings: it is never taken as `deleteConfig: true`
//! (AKO did that, and mass deletions followed).

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use crate::cli::ConfigArgs;
use crate::cli::ControllerArgs;
use ako_core::settings::Scope;

/// The settings that change without a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Live {
    pub delete_all: bool,
    pub scope: Scope,
    pub log_level: String,
    /// `releaseHeldDeletions`: the hold to let proceed.
    pub release_held: Option<String>,
    /// `deletionGuardMaxObjects`, `deletionGuardMaxPercent`.
    pub guard: ako_core::safety::GuardLimits,
}

/// Reads the live settings from the configuration source (flags and env win, as at start).
pub fn read(
    path: &std::path::Path,
    config: &ConfigArgs,
    controller: &ControllerArgs,
) -> Result<Live, String> {
    let cfg = config.resolve().map_err(|e| e.to_string())?;
    let s = controller.resolve(Some(path)).map_err(|e| e.to_string())?;
    Ok(Live {
        delete_all: s.delete_config,
        scope: s.scope,
        log_level: cfg.log_level,
        release_held: s.release_held,
        guard: s.deletion_guard,
    })
}

/// Polls `path` every `every` and publishes changed live settings on `tx`. Runs until aborted.
pub fn spawn(
    path: PathBuf,
    config: ConfigArgs,
    controller: ControllerArgs,
    every: Duration,
    tx: watch::Sender<Live>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_error: Option<String> = None;
        loop {
            tokio::time::sleep(every).await;
            let read = {
                let (p, c, a) = (path.clone(), config.clone(), controller.clone());
                tokio::task::spawn_blocking(move || read(&p, &c, &a)).await
            };
            match read {
                Ok(Ok(live)) => {
                    last_error = None;
                    if *tx.borrow() != live {
                        let before = tx.borrow().clone();
                        if before.log_level != live.log_level {
                            match crate::telemetry::set_level(&live.log_level) {
                                Ok(()) => {
                                    tracing::warn!(level = %live.log_level, "logLevel changed")
                                }
                                Err(error) => tracing::warn!(%error, "logLevel not applied"),
                            }
                        }
                        if before.delete_all != live.delete_all {
                            tracing::warn!(delete_config = live.delete_all, "deleteConfig changed");
                        }
                        if before.scope != live.scope {
                            tracing::warn!(scope = ?live.scope, "namespace scope changed");
                        }
                        if before.release_held != live.release_held {
                            tracing::warn!(release = ?live.release_held, "releaseHeldDeletions changed");
                        }
                        if tx.send(live).is_err() {
                            return;
                        }
                    }
                }
                Ok(Err(error)) => {
                    if last_error.as_ref() != Some(&error) {
                        tracing::error!(%error, "the configuration cannot be used; the last good settings stay in force");
                        last_error = Some(error);
                    }
                }
                Err(error) => tracing::error!(%error, "configuration reader failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_settings_follow_the_file_and_a_broken_file_is_an_error_not_a_deletion() {
        let dir = tempfile::tempdir().expect("tmp");
        let cm = dir.path().join("cm");
        std::fs::create_dir(&cm).expect("dir");
        let write = |k: &str, v: &str| std::fs::write(cm.join(k), v).expect("write");
        write("controllerIP", "ctrl");
        write("deleteConfig", "false");
        write("logLevel", "INFO");
        let config = ConfigArgs {
            config_file: Some(cm.clone()),
            ..ConfigArgs::default()
        };
        let controller = ControllerArgs {
            avi_username: Some("admin".into()),
            avi_password: Some(ako_core::settings::Redacted("pw".into())),
            ..ControllerArgs::default()
        };
        let first = read(&cm, &config, &controller).expect("valid");
        assert!(!first.delete_all);
        write("deleteConfig", "true");
        write("blockedNamespaceList", "[\"kube-system\"]");
        let second = read(&cm, &config, &controller).expect("valid");
        assert!(second.delete_all);
        assert_eq!(second.scope.blocked, ["kube-system"]);
        write("deleteConfig", "maybe");
        assert!(
            read(&cm, &config, &controller).is_err(),
            "an invalid value is an error, the caller keeps the last good"
        );
    }
}
