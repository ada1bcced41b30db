//! The helper processes `prism-bench run` starts: the simulator (`sim`) and the byte-copying
//! proxy (`proxy`), driven over their stdin/stdout protocol as the harness drives them.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

struct Helper {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Helper {
    fn start(args: &[&str]) -> (Helper, SocketAddr) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_prism-bench"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let addr = Self::line(&mut stdout).strip_prefix("READY ").unwrap().trim().parse().unwrap();
        (Helper { child, stdin, stdout }, addr)
    }

    fn line(stdout: &mut BufReader<ChildStdout>) -> String {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        line
    }

    fn ask(&mut self, command: &str) -> String {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{command}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
        Self::line(&mut self.stdout).trim().to_owned()
    }

    /// Closing stdin stops the helper; it must exit on its own, promptly.
    fn stop(mut self) {
        drop(self.stdin.take());
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("helper did not exit within 5 s of its stdin closing");
    }
}

fn stream_via(addr: SocketAddr) -> String {
    let body = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    conn.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn simulator_and_proxy_children_serve_and_report() {
    let (mut sim, sim_addr) = Helper::start(&["sim", "--deltas", "3", "--threads", "1"]);
    assert_eq!(sim.ask("open"), "OPEN 0");
    assert_eq!(sim.ask("requests"), "REQUESTS 0");
    assert!(sim.ask("bogus").starts_with("ERR"));

    let direct = stream_via(sim_addr);
    assert!(direct.starts_with("HTTP/1.1 200"), "{direct}");
    assert!(direct.contains(r#""content":"w2 ""#) && direct.contains("data: [DONE]"), "{direct}");

    let sim_proxy = sim_addr.to_string();
    let (proxy, proxy_addr) = Helper::start(&["proxy", "--to", &sim_proxy]);
    let proxied = stream_via(proxy_addr);
    let body = |r: &str| r.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap();
    assert_eq!(body(&proxied), body(&direct), "the proxy copies the bytes unchanged");
    assert_eq!(sim.ask("requests"), "REQUESTS 2");
    proxy.stop();
    sim.stop();
}
