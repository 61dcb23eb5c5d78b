//! Collects a child's output stream in the background, keeping at most a fixed number of
//! bytes and noting how much was dropped.

use std::io::Read;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};

/// Most bytes kept per output stream.
pub const MAX_STREAM_BYTES: usize = 16 << 20;

#[derive(Default)]
struct Buffer {
    kept: Vec<u8>,
    total: u64,
}

/// Output being drained from one pipe by a background thread.
pub struct Collector {
    buffer: Arc<Mutex<Buffer>>,
    done: Receiver<()>,
}

impl Collector {
    /// Starts draining `reader` until end of stream; fails if no thread can be started.
    pub fn start(mut reader: impl Read + Send + 'static, limit: usize) -> std::io::Result<Collector> {
        let buffer = Arc::new(Mutex::new(Buffer::default()));
        let (tx, done) = mpsc::channel();
        let shared = Arc::clone(&buffer);
        std::thread::Builder::new().name("output".into()).spawn(move || {
            let mut chunk = vec![0u8; 64 << 10];
            loop {
                match reader.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        let mut b = shared.lock().expect("output buffer poisoned");
                        let room = limit.saturating_sub(b.kept.len()).min(n);
                        b.kept.extend_from_slice(&chunk[..room]);
                        b.total += n as u64;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let _ = tx.send(());
        })?;
        Ok(Collector { buffer, done })
    }

    /// Waits up to `grace` for the stream to end (a background process may hold it open),
    /// then returns what was collected as text, with a note if output was dropped.
    pub fn finish(self, grace: std::time::Duration) -> String {
        let _ = self.done.recv_timeout(grace);
        let b = self.buffer.lock().expect("output buffer poisoned");
        render(&b.kept, b.total)
    }
}

/// Lossy UTF-8 text of `kept`, with a truncation note when `total` exceeds it.
pub fn render(kept: &[u8], total: u64) -> String {
    let mut text = String::from_utf8_lossy(kept).into_owned();
    if total > kept.len() as u64 {
        text.push_str(&format!(
            "\n[sandpool: output truncated after {} of {} bytes]\n",
            kept.len(),
            total
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn output_beyond_the_limit_is_dropped_with_a_note() {
        let c = Collector::start(std::io::Cursor::new(vec![b'a'; 100]), 10).unwrap();
        let text = c.finish(Duration::from_secs(5));
        assert!(text.starts_with("aaaaaaaaaa\n[sandpool: output truncated after 10 of 100 bytes]"));
    }

    #[test]
    fn short_output_is_kept_whole() {
        let c = Collector::start(std::io::Cursor::new(b"hi\n".to_vec()), 10).unwrap();
        assert_eq!(c.finish(Duration::from_secs(5)), "hi\n");
    }
}
