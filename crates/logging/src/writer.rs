//! An in-memory destination for log lines, for tests.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tracing_subscriber::fmt::MakeWriter;

/// Collects everything written to it, shared between clones.
///
/// Give it to [`Logging::writer`](crate::Logging::writer) to read back the
/// exact lines an output produces.
#[derive(Debug, Clone, Default)]
pub struct MemoryWriter {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl MemoryWriter {
    /// An empty buffer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything written so far, with invalid UTF-8 replaced.
    #[must_use]
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }

    /// Everything written so far, one entry per line, without line ends.
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        self.contents().lines().map(str::to_owned).collect()
    }

    /// Forgets everything written so far.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic elsewhere while writing leaves whole bytes behind: keep them.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl io::Write for MemoryWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for MemoryWriter {
    type Writer = MemoryWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn clones_share_one_buffer() {
        let writer = MemoryWriter::new();
        let mut clone = writer.make_writer();
        clone.write_all(b"one\ntwo\n").expect("memory never fails");
        clone.flush().expect("memory never fails");
        assert_eq!(writer.contents(), "one\ntwo\n");
        assert_eq!(writer.lines(), vec!["one".to_owned(), "two".to_owned()]);
    }

    #[test]
    fn a_cleared_buffer_is_empty() {
        let writer = MemoryWriter::new();
        writer
            .make_writer()
            .write_all(b"line\n")
            .expect("memory never fails");
        writer.clear();
        assert_eq!(writer.contents(), "");
    }
}
