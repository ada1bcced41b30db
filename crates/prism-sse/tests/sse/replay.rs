//! Replays the recorded provider streams in `/work/shared/reference-streams` (read-only, when
//! present): each `*.raw.sse` must decode cleanly, identically at every split, and identically
//! with its line endings rewritten.

use std::path::{Path, PathBuf};

use prism_sse::{Decoder, Frame};

use crate::support::{assert_split_invariant, decode_whole};

fn reference_streams() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference-streams")
}

fn raw_sse_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            raw_sse_files(&path, found);
        } else if path.to_string_lossy().ends_with(".raw.sse") {
            found.push(path);
        }
    }
}

/// Rewrites every line ending (CRLF, CR, LF) to `ending`.
fn with_line_endings(input: &[u8], ending: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut bytes = input.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        match byte {
            b'\r' => {
                bytes.next_if_eq(&b'\n');
                out.extend_from_slice(ending);
            }
            b'\n' => out.extend_from_slice(ending),
            _ => out.push(byte),
        }
    }
    out
}

#[test]
fn recorded_streams_decode_identically_at_every_split() {
    let mut files = Vec::new();
    raw_sse_files(&reference_streams(), &mut files);
    if files.is_empty() {
        eprintln!("no reference streams at {}; skipping", reference_streams().display());
        return;
    }
    files.sort();
    for file in files {
        let input = std::fs::read(&file).unwrap();
        let make = || Decoder::new().emit_unknown_lines(true);
        let outcome = assert_split_invariant(make, &input);
        let name = file.display();
        assert!(!outcome.failed, "{name}");
        assert_eq!(outcome.dropped, 0, "{name} ends on an event boundary");
        assert!(!outcome.frames.is_empty(), "{name}");
        for frame in &outcome.frames {
            match frame {
                Frame::Event(event) => assert!(!event.data.is_empty(), "{name}: {event:?}"),
                Frame::Comment(_) => {}
                Frame::Unknown(line) => panic!("{name}: unexpected non-SSE line {line:?}"),
            }
        }
        for ending in [&b"\n"[..], b"\r", b"\r\n"] {
            let rewritten = with_line_endings(&input, ending);
            assert_eq!(decode_whole(make(), &rewritten), outcome, "{name} with {ending:?}");
        }
        eprintln!("{name}: {} frames", outcome.frames.len());
    }
}
