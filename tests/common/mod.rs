//! Test harness: a real etcd + kube-apiserver 1.20.2 on loopback (scripts/cluster.sh), the `ako` binary as a
//! webhook registered with the API server, and real `kubectl`. Nothing is skipped: if a piece cannot start,
//! the test fails with the reason.
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running control plane; stopped when the test process exits (watchdog in scripts/cluster.sh).
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Cluster {
    pub fn start() -> Cluster {
        Self::start_with(&[])
    }

    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", &self.kubeconfig).args(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// `kubectl apply -f -` with `yaml`; returns (success, stdout, stderr).
    pub fn apply(&self, yaml: &str, extra: &[&str]) -> (bool, String, String) {
        let mut args = vec!["apply", "-f", "-"];
        args.extend_from_slice(extra);
        let out = self.kubectl(&args, Some(yaml));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// `kubectl apply` that must succeed; returns what kubectl printed on stderr (admission warnings).
    pub fn admitted(&self, yaml: &str, extra: &[&str]) -> String {
        let (ok, out, err) = self.apply(yaml, extra);
        assert!(ok, "kubectl apply was refused: {out}{err}");
        err
    }

    pub fn must(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into()
    }

    pub fn namespace(&self, name: &str) {
        let _ = self.kubectl(&["create", "namespace", name], None);
    }
}

/// Control planes with more than the API server, and stopping one before the test process ends.
impl Cluster {
    /// Like [`Cluster::start`], with the real kube-controller-manager 1.20.2 running too: Endpoints and
    /// EndpointSlices, namespace deletion and garbage collection happen for real.
    pub fn start_with_controller_manager() -> Cluster {
        Self::start_with(&["--controller-manager"])
    }

    /// Starts a control plane with extra arguments of `scripts/cluster.sh start`.
    pub fn start_with(extra: &[&str]) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("ako-cluster-")
            .tempdir()
            .expect("tempdir");
        let out = Command::new(repo().join("scripts/cluster.sh"))
            .arg("start")
            .arg(dir.path())
            .arg("--watch-pid")
            .arg(std::process::id().to_string())
            .args(extra)
            .output()
            .expect("running scripts/cluster.sh");
        assert!(
            out.status.success(),
            "the control plane did not start (run scripts/install-cluster.sh first):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let kubeconfig = dir.path().join("kubeconfig");
        Cluster { dir, kubeconfig }
    }

    /// Stops the control plane now (instead of when the test process exits).
    pub fn stop(&self) {
        let _ = Command::new(repo().join("scripts/cluster.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A running `ako webhook` registered with the cluster.
pub struct Webhook {
    pub https_port: u16,
    pub health_port: u16,
    pub certs: PathBuf,
    /// The run-while.sh wrapper; it stops ako when the test process exits.
    process: std::process::Child,
}

impl Webhook {
    /// Starts `ako webhook` with `args` and registers webhook-config/webhooks.yaml pointing at it.
    pub fn start(cluster: &Cluster, args: &[&str]) -> Webhook {
        let certs = cluster.dir.path().join("webhook-certs");
        let ako = env!("CARGO_BIN_EXE_ako");
        let status = Command::new(ako)
            .args(["certs", "--out-dir"])
            .arg(&certs)
            .stdout(Stdio::null())
            .status()
            .expect("ako certs");
        assert!(status.success(), "ako certs failed");
        // A port picked free can be taken by another test's process before ako binds it: then ako exits with
        // "Address already in use" and is started again on other ports.
        let mut attempts = 0;
        let hook = loop {
            attempts += 1;
            let https_port = free_port();
            let health_port = free_port();
            let log =
                std::fs::File::create(cluster.dir.path().join("webhook.log")).expect("log file");
            let process = Command::new(repo().join("scripts/run-while.sh"))
                .arg(std::process::id().to_string())
                .arg(ako)
                .arg("webhook")
                .arg(format!("--listen=127.0.0.1:{https_port}"))
                .arg(format!("--health-listen=127.0.0.1:{health_port}"))
                .arg("--tls-cert")
                .arg(certs.join("tls.crt"))
                .arg("--tls-key")
                .arg(certs.join("tls.key"))
                .args(args)
                .env("KUBECONFIG", &cluster.kubeconfig)
                .env("LOG_LEVEL", "INFO")
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("spawning ako webhook");
            let mut hook = Webhook {
                https_port,
                health_port,
                certs: certs.clone(),
                process,
            };
            match hook.wait_ready(cluster) {
                Ok(()) => break hook,
                Err(log) if attempts < 3 && log.contains("Address already in use") => continue,
                Err(log) => panic!("ako webhook did not start; log:\n{log}"),
            }
        };
        let rendered = Command::new(ako)
            .args(["certs", "--out-dir"])
            .arg(&certs)
            .arg("--render")
            .arg(repo().join("webhook-config/webhooks.yaml"))
            .arg("--webhook-url")
            .arg(format!("https://127.0.0.1:{}", hook.https_port))
            .output()
            .expect("ako certs --render");
        assert!(
            rendered.status.success(),
            "render: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        cluster.must(
            &["apply", "-f", "-"],
            Some(&String::from_utf8_lossy(&rendered.stdout)),
        );
        cluster.must(
            &[
                "apply",
                "-f",
                repo()
                    .join("webhook-config/ingressclass.yaml")
                    .to_str()
                    .expect("path"),
            ],
            None,
        );
        hook
    }

    /// Waits until ako answers ready; its log if it exited first.
    fn wait_ready(&mut self, cluster: &Cluster) -> Result<(), String> {
        let log =
            || std::fs::read_to_string(cluster.dir.path().join("webhook.log")).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(body) = self.health_get("/readyz")
                && body.starts_with("ready")
            {
                return Ok(());
            }
            if matches!(self.process.try_wait(), Ok(Some(_))) {
                return Err(log());
            }
            assert!(
                Instant::now() < deadline,
                "ako webhook not ready after 60 s; log:\n{}",
                log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The wrapper's process id (for tests that stop the webhook).
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Stops ako webhook (SIGTERM to the wrapper, which stops ako) and waits for it.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.process.id().to_string())
            .status();
        let _ = self.process.wait();
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.health_get("/healthz").is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A plain GET on the health port.
    pub fn health_get(&self, path: &str) -> std::io::Result<String> {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.health_port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        Ok(buf
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default())
    }

    /// Waits until the webhook's index lists `ingress` (ns/name) as a claimant of `host`.
    pub fn wait_claim(&self, host: &str, ingress: &str) {
        self.wait_body(&format!("/claims?host={host}"), &format!("\"{ingress}\""));
    }

    /// Waits until the index has seen `service` (ns/name) ask for `vip`.
    pub fn wait_vip_claim(&self, vip: &str, service: &str) {
        self.wait_body(&format!("/claims?vip={vip}"), &format!("\"{service}\""));
    }

    /// Waits until the health port's `path` answers with a body containing `needle`.
    pub fn wait_body(&self, path: &str, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.health_get(path).is_ok_and(|b| b.contains(needle)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the webhook never showed {needle} at {path}");
    }
}
