//! Real services for integration tests: a `redis-server` and a PostgreSQL server, each a child
//! process on a free local port, stopped on drop. No mock stands in for either.
//!
//! When a server is not installed the helpers print `SKIPPED: …` and return `None`, so the
//! README's test command passes on a machine without them — unless `PRISM_REQUIRE_REDIS=1` or
//! `PRISM_REQUIRE_POSTGRES=1` is set (CI sets both), which turns the skip into a failure.
#![expect(clippy::expect_used, clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether `var` asks for the service to be required.
fn required(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| v != "0")
}

fn skip(var: &str, what: &str, install: &str) {
    assert!(!required(var), "{what} is not installed and {var} is set");
    eprintln!("SKIPPED: {what} is not installed; tests that need it did not run ({install})");
}

/// A `redis-server` child process, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts one on a free port, or `None` when `redis-server` is not on `PATH`.
    pub fn start() -> Option<RedisServer> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            skip("PRISM_REQUIRE_REDIS", "redis-server", "apt-get install -y redis-server");
            return None;
        }
        // The port is free when picked but may be taken before redis-server binds it.
        for _ in 0..5 {
            if let Some(server) = RedisServer::start_on(free_port()) {
                return Some(server);
            }
        }
        panic!("redis-server did not come up after 5 attempts");
    }

    /// Starts one on `port` (to bring a killed server back where clients expect it); `None`
    /// when it did not come up.
    pub fn start_on(port: u16) -> Option<RedisServer> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let mut server = RedisServer { child: Some(child), port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if redis_ping(port) {
                return Some(server);
            }
            if let Some(child) = server.child.as_mut()
                && child.try_wait().expect("try_wait").is_some()
            {
                return None; // exited: most likely the port was taken
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server now (the port stays reserved for nobody).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a Redis server answers `PING` on `port`.
pub fn redis_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// A throwaway PostgreSQL cluster (`initdb` into a temporary directory, trust authentication,
/// no fsync), its server a child process; stopped and deleted on drop. Run as root, both run
/// as the `postgres` user, since PostgreSQL refuses to run as root.
#[derive(Debug)]
pub struct PostgresServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
    as_root: bool,
}

impl PostgresServer {
    /// Starts one, or `None` when no PostgreSQL server is installed.
    pub fn start() -> Option<PostgresServer> {
        let Some(bin) = postgres_bin_dir() else {
            skip(
                "PRISM_REQUIRE_POSTGRES",
                "PostgreSQL (initdb, postgres)",
                "apt-get install -y postgresql",
            );
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("prism-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the PostgreSQL directory");
        let as_root = is_root();
        if as_root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown the PostgreSQL directory");
            assert!(status.success(), "chown postgres {}", dir.display());
        }
        let data = dir.join("data");
        let out = run_as(as_root, &bin.join("initdb"))
            .args(["-A", "trust", "-U", "prism", "--no-sync", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        for _ in 0..5 {
            let port = free_port();
            let child = run_as(as_root, &bin.join("postgres"))
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string(), "-k"])
                .arg(&dir)
                .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
                .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn postgres");
            let mut server = PostgresServer {
                child: Some(child),
                port,
                dir: dir.clone(),
                bin: bin.clone(),
                as_root,
            };
            if server.wait_ready(&bin) {
                return Some(server);
            }
            server.stop_child();
        }
        panic!("PostgreSQL did not come up after 5 attempts");
    }

    fn wait_ready(&mut self, bin: &Path) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "prism"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return true;
            }
            if let Some(child) = self.child.as_mut()
                && child.try_wait().expect("try_wait").is_some()
            {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// `postgres://prism@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://prism@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs SQL with `psql` and returns its unaligned, tuples-only output.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "prism",
                "-d",
                "postgres",
            ])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("run psql");
        assert!(out.status.success(), "psql failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn stop_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            // As root the child is `runuser`: killing it would orphan the server, so ask the
            // server itself to stop (immediate mode: nothing here needs to survive).
            let _ = run_as(self.as_root, &self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["stop", "-m", "immediate", "-w", "-t", "10"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop_child();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory with `initdb` and `postgres`: `PRISM_POSTGRES_BIN`, Debian's
/// `/usr/lib/postgresql/<newest>/bin`, or wherever `PATH` has `initdb`.
fn postgres_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PRISM_POSTGRES_BIN") {
        return Some(PathBuf::from(dir));
    }
    let debian = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let version: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .max_by_key(|(v, _)| *v)
            .map(|(_, bin)| bin)
    });
    debian.or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .find(|p| p.join("initdb").exists() && p.join("postgres").exists())
        })
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program`, run as the `postgres` user when we are root.
fn run_as(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// A child process (a `prism serve`, a `prism simulate`) killed and reaped when dropped,
/// however the test ends.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Starts `cmd` with stdout piped and returns it with the first `http://…` word its stdout
    /// prints (the listening banner). The rest of stdout is drained on a thread, so the child
    /// never blocks on a full pipe. Stderr is left as the caller set it.
    pub fn spawn_with_url(cmd: &mut Command) -> (ChildGuard, String) {
        use std::io::BufRead as _;
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn the child");
        let stdout = child.stdout.take().expect("piped stdout");
        let guard = ChildGuard(child);
        let mut lines = std::io::BufReader::new(stdout).lines();
        let url = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| {
                l.split_whitespace().find(|w| w.starts_with("http://")).map(str::to_owned)
            })
            .expect("a listening URL on stdout");
        std::thread::spawn(move || for _ in lines {});
        (guard, url)
    }

    /// Sends `signal` (`-TERM`, `-HUP`) with `kill`.
    pub fn signal(&self, signal: &str) {
        let pid = self.0.id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().expect("run kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Sends SIGTERM (a graceful shutdown) and waits up to 30 s for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the child did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
