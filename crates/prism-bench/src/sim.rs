//! The simulated upstream, in a child process of its own (this same binary, `prism-bench sim`):
//! its sockets then do not count against the harness's open-file limit, and its CPU time is read
//! apart from the load generator's. The parent talks to it over stdin/stdout lines.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use prism_simulator::{Reply, SimConfig, Simulator};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::procfs;

/// The default answer of one simulator: every request gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub(crate) struct SimSpec {
    /// Text deltas per answer (`"w0 "`, `"w1 "`, …).
    #[arg(long)]
    pub(crate) deltas: usize,
    /// Pause between stream events, in microseconds.
    #[arg(long, default_value_t = 0)]
    pub(crate) delay_us: u64,
    /// Write each event on its own even without a delay.
    #[arg(long)]
    pub(crate) flush_each_event: bool,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: usize,
}

impl SimSpec {
    pub(crate) fn reply(&self) -> Reply {
        Reply::with_n_deltas(self.deltas)
            .delay(Duration::from_micros(self.delay_us))
            .flush_each_event(self.flush_each_event)
    }
}

/// `prism-bench sim`: serves until stdin closes. Prints `READY <base url>`, then answers
/// `open` with `OPEN <n>` and `requests` with `REQUESTS <n>`.
pub(crate) fn serve(spec: SimSpec) -> anyhow::Result<()> {
    procfs::raise_nofile_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(spec.threads.max(1))
        .enable_all()
        .build()
        .context("starting the simulator runtime")?;
    runtime.block_on(async move {
        let config = SimConfig::default().with_default(spec.reply()).with_history(0);
        let sim = Simulator::start_with(config).await.context("starting the simulator")?;
        let mut out = tokio::io::stdout();
        out.write_all(format!("READY {}\n", sim.addr()).as_bytes()).await?;
        out.flush().await?;
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines.next_line().await? {
            let answer = match line.trim() {
                "open" => format!("OPEN {}\n", sim.open_connections()),
                "requests" => format!("REQUESTS {}\n", sim.requests()),
                other => format!("ERR unknown command {other:?}\n"),
            };
            out.write_all(answer.as_bytes()).await?;
            out.flush().await?;
        }
        sim.shutdown().await;
        Ok(())
    })
}

/// `prism-bench proxy`: a TCP proxy that only copies bytes both ways, on its own process and
/// runtime like a gateway. The TTFT it adds is what any separate gateway process pays on this
/// machine (loopback hops, waking an idle process) before doing any work. Serves until stdin
/// closes; prints `READY <addr>`.
pub(crate) fn serve_proxy(to: SocketAddr) -> anyhow::Result<()> {
    procfs::raise_nofile_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the proxy runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let mut out = tokio::io::stdout();
        out.write_all(format!("READY {}\n", listener.local_addr()?).as_bytes()).await?;
        out.flush().await?;
        let accept = async {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                tokio::spawn(async move {
                    let _ = inbound.set_nodelay(true);
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await else { return };
                    let _ = outbound.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        };
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        tokio::select! {
            () = accept => {}
            _ = async { while let Ok(Some(_)) = lines.next_line().await {} } => {}
        }
        anyhow::Ok(())
    })
}

/// A running simulator (or proxy) child.
#[derive(Debug)]
pub(crate) struct SimProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    pub(crate) addr: SocketAddr,
    pid: u32,
}

impl SimProcess {
    /// Starts `exe sim …` and waits (up to 20 s) for it to listen.
    pub(crate) async fn spawn(exe: &Path, spec: SimSpec) -> anyhow::Result<SimProcess> {
        let mut cmd = Command::new(exe);
        cmd.arg("sim")
            .arg("--deltas")
            .arg(spec.deltas.to_string())
            .arg("--delay-us")
            .arg(spec.delay_us.to_string())
            .arg("--threads")
            .arg(spec.threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if spec.flush_each_event {
            cmd.arg("--flush-each-event");
        }
        Self::start(cmd).await
    }

    /// Starts `exe proxy --to <to>`: the null gateway (see [`serve_proxy`]).
    pub(crate) async fn spawn_proxy(exe: &Path, to: SocketAddr) -> anyhow::Result<SimProcess> {
        let mut cmd = Command::new(exe);
        cmd.arg("proxy")
            .arg("--to")
            .arg(to.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        Self::start(cmd).await
    }

    async fn start(mut cmd: Command) -> anyhow::Result<SimProcess> {
        let mut child = cmd.spawn().context("starting a prism-bench child")?;
        let pid = child.id().context("simulator exited at once")?;
        let stdin = child.stdin.take().context("simulator stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().context("simulator stdout")?).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
            .await
            .context("simulator did not start within 20 s")??
            .context("simulator exited before listening")?;
        let addr = line
            .strip_prefix("READY ")
            .and_then(|a| a.trim().parse().ok())
            .with_context(|| format!("unexpected simulator line {line:?}"))?;
        Ok(SimProcess { child, stdin, stdout, addr, pid })
    }

    async fn ask(&mut self, command: &str, prefix: &str) -> anyhow::Result<usize> {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        let line = tokio::time::timeout(Duration::from_secs(10), self.stdout.next_line())
            .await
            .context("simulator did not answer within 10 s")??
            .context("simulator exited")?;
        match line.strip_prefix(prefix).and_then(|n| n.trim().parse().ok()) {
            Some(n) => Ok(n),
            None => bail!("unexpected simulator answer {line:?}"),
        }
    }

    /// TCP connections the simulator has open now.
    pub(crate) async fn open_connections(&mut self) -> anyhow::Result<usize> {
        self.ask("open", "OPEN ").await
    }

    /// Requests the simulator has received.
    pub(crate) async fn requests(&mut self) -> anyhow::Result<usize> {
        self.ask("requests", "REQUESTS ").await
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Closes its stdin (it shuts down) and waits up to 5 s, then kills it.
    pub(crate) async fn stop(self) {
        let SimProcess { mut child, stdin, .. } = self;
        drop(stdin);
        if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
}
