//! The deployment packaging against the code it packages: the Dockerfile, `deploy/compose.yaml`
//! with `deploy/prometheus.yml` and `deploy/prism.toml`, and the Helm chart in
//! `deploy/helm/prism`. The configurations they ship pass `prism check-config`; every port they
//! name is the port those configurations listen on; the probe and scrape paths are routes the
//! server answers; the configuration key the chart derives `terminationGracePeriodSeconds` from
//! is a key the configuration really has. Text checks only (no Docker, no Helm), so it is fast;
//! renaming a route, a key or a port on one side only makes it fail.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PRISM: &str = env!("CARGO_BIN_EXE_prism");

/// The config key of the graceful-shutdown grace period, in `[timeouts]`.
const GRACE_KEY: &str = "shutdown_grace_ms";

/// Environment for the chart's configuration: every variable it references without a default.
const CHART_ENV: [(&str, &str); 5] = [
    ("PRISM_CLIENT_KEY_SHA256", "abababababababababababababababababababababababababababababababab"),
    ("OPENAI_API_KEY", "sk-test"),
    ("ANTHROPIC_API_KEY", "sk-ant-test"),
    ("PRISM_REDIS_HOST", "prism-redis-master"),
    ("REDIS_PASSWORD", "secret"),
];

/// Environment for the compose configuration (everything else has a default).
const COMPOSE_ENV: [(&str, &str); 1] = [("PRISM_CLIENT_KEY", "sk-prism-compose-dev-key")];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn chart(rel: &str) -> String {
    read(&format!("deploy/helm/prism/{rel}"))
}

/// Runs `prism check-config FILE` with exactly `env` as the environment.
fn check_config(file: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(PRISM);
    cmd.env_clear().arg("check-config").arg(file);
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.output().unwrap_or_else(|e| panic!("running {PRISM}: {e}"))
}

/// `check-config` must pass; returns the listen address it resolved.
fn checked_listen(file: &Path, env: &[(&str, &str)]) -> SocketAddr {
    let out = check_config(file, env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "prism check-config {}\nstdout: {stdout}\nstderr: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // `FILE: ok (listen ADDR, N keys, …)`
    let addr = stdout
        .split("(listen ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no listen address in {stdout:?}"));
    addr.parse().unwrap_or_else(|e| panic!("listen {addr:?}: {e}"))
}

/// A scratch file for a derived configuration, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("prism-deploy-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The chart's configuration with Redis enabled: what templates/configmap.yaml renders.
fn chart_config_with_redis() -> String {
    format!("{}\n{}", chart("files/prism.toml"), chart("files/cache-redis.toml"))
}

fn compose_listen() -> SocketAddr {
    checked_listen(&root().join("deploy/prism.toml"), &COMPOSE_ENV)
}

fn chart_listen() -> SocketAddr {
    checked_listen(&root().join("deploy/helm/prism/files/prism.toml"), &CHART_ENV)
}

/// The value after `key:` on the first line of `text` that starts (after indentation) with it.
fn yaml_scalar<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix(key)?.strip_prefix(':')?;
        Some(rest.split(" #").next().unwrap_or_default().trim().trim_matches('"'))
    })
}

/// `services.<name>` → the container side of each of its `ports:` mappings, from compose.yaml's
/// text (two-space indentation, `- "HOST:CONTAINER"` entries).
fn compose_port_mappings(text: &str) -> Vec<(String, u16, u16)> {
    let mut out = Vec::new();
    let mut in_services = false;
    let mut service = String::new();
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() && !line.starts_with('#') {
            in_services = line.trim_end() == "services:";
            continue;
        }
        if !in_services {
            continue;
        }
        if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
            && !name.starts_with(' ')
        {
            service = name.to_owned();
            continue;
        }
        let item = line.trim_start();
        let Some(mapping) = item.strip_prefix("- \"").and_then(|m| m.strip_suffix('"')) else {
            continue;
        };
        let parts: Vec<&str> = mapping.split(':').collect();
        if let [host, container] = parts[..]
            && let (Ok(h), Ok(c)) = (host.parse(), container.parse())
        {
            out.push((service.clone(), h, c));
        }
    }
    out
}

/// The `host:port` entries of prometheus.yml's static targets.
fn prometheus_targets(text: &str) -> Vec<(String, u16)> {
    text.lines()
        .filter_map(|line| {
            let item = line.trim_start().strip_prefix("- ")?;
            let (host, port) = item.trim().rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
}

#[test]
fn compose_config_passes_check_config_and_listens_on_all_interfaces() {
    let listen = compose_listen();
    assert!(listen.ip().is_unspecified(), "deploy/prism.toml listens on {listen}");
    assert_eq!(listen.port(), 8080);
    // It is the Redis-cached configuration the compose file is about, pointed at the compose
    // services by name.
    let text = read("deploy/prism.toml");
    assert!(text.contains("backend = \"redis\""), "deploy/prism.toml uses the Redis cache");
    assert!(text.contains("redis://redis:6379"), "Redis URL names the compose service");
    assert!(text.contains("http://simulator:9090"), "providers point at the simulator");
    let compose = read("deploy/compose.yaml");
    for service in ["redis", "simulator", "prism-1", "prism-2", "prometheus"] {
        assert!(compose.contains(&format!("\n  {service}:\n")), "compose has no {service}");
    }
    assert!(
        compose.contains(r#"["simulate", "--listen", "0.0.0.0:9090""#),
        "the simulator listens where deploy/prism.toml's providers point"
    );
}

#[test]
fn chart_config_passes_check_config_with_and_without_redis() {
    let listen = chart_listen();
    assert!(listen.ip().is_unspecified(), "chart config listens on {listen}");
    let with_redis = TempFile::new("chart-redis.toml", &chart_config_with_redis());
    assert_eq!(checked_listen(&with_redis.0, &CHART_ENV), listen);
    // Redis without auth: REDIS_PASSWORD is not set at all.
    let no_password: Vec<_> =
        CHART_ENV.iter().copied().filter(|(name, _)| *name != "REDIS_PASSWORD").collect();
    assert_eq!(checked_listen(&with_redis.0, &no_password), listen);
    // Every variable the chart's configuration needs is one the chart documents.
    let values = chart("values.yaml");
    for (name, _) in CHART_ENV {
        let documented = values.contains(name) || chart("templates/deployment.yaml").contains(name);
        assert!(documented, "{name} is neither in values.yaml nor set by deployment.yaml");
    }
}

#[test]
fn every_port_is_the_listen_port() {
    let port = compose_listen().port();
    assert_eq!(chart_listen().port(), port, "chart and compose configs listen on one port");

    // Dockerfile: EXPOSE and the embedded default's --listen.
    let dockerfile = read("Dockerfile");
    let expose = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .unwrap_or_else(|| panic!("Dockerfile has no EXPOSE"));
    assert_eq!(expose.trim(), port.to_string(), "Dockerfile EXPOSE");
    let cmd = dockerfile
        .lines()
        .find(|l| l.starts_with("CMD "))
        .unwrap_or_else(|| panic!("Dockerfile has no CMD"));
    assert!(cmd.contains(&format!("\"--listen\", \"0.0.0.0:{port}\"")), "Dockerfile {cmd}");

    // Chart: containerPort in values.yaml; the Deployment names it `http`, and the Service,
    // the probes and the ServiceMonitor refer to it by that name.
    let values = chart("values.yaml");
    assert_eq!(yaml_scalar(&values, "containerPort"), Some(port.to_string().as_str()));
    let deployment = chart("templates/deployment.yaml");
    assert!(
        deployment
            .contains("- name: http\n              containerPort: {{ .Values.containerPort }}")
    );
    assert_eq!(deployment.matches("port: http").count(), 2, "both probes use the http port");
    assert_eq!(yaml_scalar(&chart("templates/service.yaml"), "targetPort"), Some("http"));
    assert_eq!(yaml_scalar(&chart("templates/servicemonitor.yaml"), "- port"), Some("http"));
    // The chart refuses to render when the configuration's listen port is not containerPort.
    assert!(chart("templates/configmap.yaml").contains("include \"prism.checkListen\""));

    // Compose: each gateway maps its container port to a distinct host port.
    let mappings = compose_port_mappings(&read("deploy/compose.yaml"));
    let gateways: Vec<_> = mappings.iter().filter(|(s, ..)| s.starts_with("prism-")).collect();
    assert_eq!(gateways.len(), 2, "two gateway port mappings in {mappings:?}");
    for (service, _, container) in &gateways {
        assert_eq!(*container, port, "{service}'s container port");
    }
    assert_ne!(gateways[0].1, gateways[1].1, "host ports of the two gateways");

    // Prometheus scrapes both gateways on that port.
    let targets = prometheus_targets(&read("deploy/prometheus.yml"));
    let hosts: Vec<&str> = targets.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(hosts, ["prism-1", "prism-2"]);
    for (host, target_port) in &targets {
        assert_eq!(*target_port, port, "scrape target {host}");
    }
}

#[test]
fn probe_and_scrape_paths_are_server_routes() {
    let routes = read("crates/prism-server/src/routes.rs");
    let deployment = chart("templates/deployment.yaml");
    // The path under each probe, in order.
    let probe_path = |probe: &str| {
        let at = deployment.find(&format!("{probe}:")).unwrap_or_else(|| panic!("no {probe}"));
        yaml_scalar(&deployment[at..], "path").map(str::to_owned)
    };
    assert_eq!(probe_path("readinessProbe").as_deref(), Some("/ready"));
    assert_eq!(probe_path("livenessProbe").as_deref(), Some("/health"));
    let scrape = [
        yaml_scalar(&chart("templates/servicemonitor.yaml"), "path").map(str::to_owned),
        yaml_scalar(&read("deploy/prometheus.yml"), "metrics_path").map(str::to_owned),
    ];
    assert_eq!(scrape, [Some("/metrics".to_owned()), Some("/metrics".to_owned())]);
    for path in ["/ready", "/health", "/metrics"] {
        assert!(routes.contains(&format!("\"{path}\"")), "routes.rs does not route {path}");
    }
    // /ready is the route that reports the shutdown (what the preStop comment relies on).
    assert!(routes.contains("\"shutting_down\""), "/ready no longer reports shutting_down");
}

#[test]
fn grace_period_key_is_a_real_config_key() {
    // The chart reads it from the configuration; the code defines it in [timeouts].
    let helpers = chart("templates/_helpers.tpl");
    assert!(helpers.contains(&format!("(timeouts\\\\.)?{GRACE_KEY}[ \\\\t]*=")), "_helpers.tpl");
    let raw = read("crates/prism-server/src/config/raw.rs");
    let timeouts = raw
        .split("pub(super) struct RawTimeouts")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .unwrap_or_else(|| panic!("no RawTimeouts in raw.rs"));
    assert!(timeouts.contains(&format!("pub(super) {GRACE_KEY}: Option<u64>")), "{timeouts}");
    // Both configurations set it under [timeouts].
    for rel in ["deploy/helm/prism/files/prism.toml", "deploy/prism.toml"] {
        let text = read(rel);
        let section = text
            .split("\n[timeouts]\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{rel} has no [timeouts]"));
        let section = format!("\n{}", section.split("\n[").next().unwrap_or_default());
        assert!(section.contains(&format!("\n{GRACE_KEY} = ")), "{rel} sets {GRACE_KEY}");
    }
    // And the binary agrees: the same configuration with the key misspelt is rejected.
    let misspelt = chart("files/prism.toml").replace(GRACE_KEY, "shutdown_grace_msec");
    let file = TempFile::new("chart-misspelt.toml", &misspelt);
    let out = check_config(&file.0, &CHART_ENV);
    assert!(!out.status.success(), "a misspelt key passed check-config");
    assert!(String::from_utf8_lossy(&out.stderr).contains("shutdown_grace_msec"));

    // Compose waits longer than the configuration's grace before SIGKILL.
    let compose = read("deploy/compose.yaml");
    let stop = yaml_scalar(&compose, "stop_grace_period")
        .and_then(|v| v.strip_suffix('s'))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("compose.yaml: no stop_grace_period in seconds"));
    let grace_ms = read("deploy/prism.toml")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{GRACE_KEY} = ")))
        .and_then(|v| v.trim().replace('_', "").parse::<u64>().ok())
        .unwrap_or_else(|| panic!("deploy/prism.toml: no {GRACE_KEY}"));
    assert!(stop * 1000 > grace_ms, "stop_grace_period {stop}s <= {GRACE_KEY} {grace_ms}");
}

#[test]
fn docker_context_keeps_what_the_build_needs() {
    // `cargo build --locked` needs every workspace member's manifest; prism-simulator embeds
    // fixtures/ with include_bytes!.
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(|l| l.trim().trim_start_matches("./").trim_end_matches('/').to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["crates", "xtask", "fixtures", "Cargo.toml", "Cargo.lock", ".cargo", "*"] {
        assert!(!ignored.iter().any(|l| l == needed), ".dockerignore excludes {needed}");
    }
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("cargo build --release --locked -p prism"));
    assert!(dockerfile.contains("FROM gcr.io/distroless/cc-debian12:nonroot"));
}
