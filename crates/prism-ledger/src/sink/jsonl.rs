//! JSON lines: one record per line, to stdout or appended to a file.

use tokio::io::AsyncWriteExt as _;

use super::Sink;
use crate::LedgerError;
use crate::record::UsageRecord;

/// Where the lines go.
#[derive(Debug)]
pub(crate) enum JsonlSink {
    Stdout,
    File { path: String, file: Option<tokio::fs::File> },
}

impl JsonlSink {
    pub(crate) fn new(path: &str) -> Self {
        if path == "-" || path == "stdout" {
            JsonlSink::Stdout
        } else {
            JsonlSink::File { path: path.to_owned(), file: None }
        }
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    async fn write(&mut self, batch: &[std::sync::Arc<UsageRecord>]) -> Result<(), LedgerError> {
        let mut lines = Vec::with_capacity(batch.len() * 400);
        for record in batch {
            serde_json::to_writer(&mut lines, record.as_ref())
                .map_err(|e| LedgerError::Sink { sink: "jsonl", source: Box::new(e) })?;
            lines.push(b'\n');
        }
        let io = |e: std::io::Error| LedgerError::Sink { sink: "jsonl", source: Box::new(e) };
        match self {
            JsonlSink::Stdout => {
                let mut out = tokio::io::stdout();
                out.write_all(&lines).await.map_err(io)?;
                out.flush().await.map_err(io)
            }
            JsonlSink::File { path, file } => {
                if file.is_none() {
                    let opened = tokio::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&*path)
                        .await
                        .map_err(io)?;
                    *file = Some(opened);
                }
                let Some(f) = file.as_mut() else { return Ok(()) };
                let written = async {
                    f.write_all(&lines).await?;
                    f.flush().await
                }
                .await;
                if written.is_err() {
                    // Reopen next time: the file may have been rotated or the disk replaced.
                    *file = None;
                }
                written.map_err(io)
            }
        }
    }
}
