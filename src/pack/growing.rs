//! [`Growing`]: a spool file that is still being written, read by pass 1 as it grows.
//!
//! The writer (the task receiving the push) appends to the file and calls [`Growing::advance`]
//! with the total it has written; at the end it calls [`Growing::finish`] or [`Growing::fail`].
//! The reader ([`GrowingReader`], used by [`index_growing`](crate::pack::index_growing) on a
//! blocking thread) reads the same file through its own descriptor and, when it reaches the written
//! length, waits on a condition variable until more is written, the writer finishes (end of file)
//! or fails (an error), or the indexing deadline passes (an error). The writer never waits for the
//! reader: `advance` only takes a lock to store a number and wake the reader.

use std::fs::File;
use std::io::Read;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::pack::PackError;

/// A pack file being written by one party while [`index_growing`](crate::pack::index_growing)
/// reads it; see the module docs. Cheap to clone: clones share the state.
///
/// The writer must end with [`finish`](Growing::finish) or [`fail`](Growing::fail) (also on its
/// error paths); until then the reader waits for more bytes, at most until
/// [`Options::max_duration`](crate::pack::Options::max_duration) is used up.
#[derive(Debug, Clone, Default)]
pub struct Growing {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default, Clone, Copy)]
struct State {
    /// Bytes of the file that the writer has written (and that a reader may read).
    written: u64,
    end: End,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum End {
    /// More may come.
    #[default]
    Open,
    /// The file is complete: `written` is its length.
    Finished,
    /// The writer gave up: the file is incomplete.
    Failed,
}

/// What a waiting reader learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Bytes up to this total are written (more than the reader has).
    Data(u64),
    /// The file is complete at this length (the reader has all of it).
    Finished(u64),
    /// The writer failed, after announcing this many bytes.
    Failed(u64),
    /// The deadline passed first.
    TimedOut,
}

impl Growing {
    /// A file with nothing written yet.
    pub fn new() -> Self {
        Growing::default()
    }

    /// The writer has written `total` bytes to the file since it was created (a running total, not
    /// an increment: smaller values than before are ignored). Call it only once those bytes are in
    /// the file: after the write returned, and with buffered writers after a flush. In particular
    /// `tokio::fs::File::write_all` returns before its write is done (it is finished on a blocking
    /// thread): `flush().await` first. A reader that finds fewer bytes than announced fails with
    /// [`PackError::Io`]. Never blocks on the reader.
    pub fn advance(&self, total: u64) {
        let mut state = self.lock();
        if state.end == End::Open && total > state.written {
            state.written = total;
            drop(state);
            self.shared.changed.notify_all();
        }
    }

    /// The writer is done: the file holds exactly the bytes announced with
    /// [`advance`](Growing::advance). The reader sees the end of the file there.
    pub fn finish(&self) {
        self.end(End::Finished);
    }

    /// The writer gave up (the client went away, a limit, a write error): the reader stops with an
    /// error ([`PackError::Io`]) as soon as it has nothing else to read, instead of waiting.
    pub fn fail(&self) {
        self.end(End::Failed);
    }

    /// Bytes announced so far.
    pub fn written(&self) -> u64 {
        self.lock().written
    }

    /// The file's length once the writer has finished it; `None` while it may still grow (or
    /// after a failure). Does not wait.
    pub(crate) fn finished_len(&self) -> Option<u64> {
        let state = self.lock();
        (state.end == End::Finished).then_some(state.written)
    }

    fn end(&self, end: End) {
        let mut state = self.lock();
        if state.end == End::Open {
            state.end = end;
        }
        drop(state);
        self.shared.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is two plain values, valid whatever a panicking holder was doing.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until more than `have` bytes are written, the writer ends, or `deadline` passes.
    /// A failed writer is reported even if unread bytes remain: what follows cannot be trusted to
    /// be complete, and stopping early is what the writer asked for.
    pub(crate) fn wait(&self, have: u64, deadline: Option<Instant>) -> Wait {
        let mut state = self.lock();
        loop {
            match state.end {
                End::Failed => return Wait::Failed(state.written),
                _ if state.written > have => return Wait::Data(state.written),
                End::Finished => return Wait::Finished(state.written),
                End::Open => {}
            }
            let timeout = match deadline {
                Some(at) => match at.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return Wait::TimedOut,
                },
                // No deadline (an unlimited budget): wake up now and then all the same.
                None => Duration::from_secs(3600),
            };
            state = self
                .shared
                .changed
                .wait_timeout(state, timeout)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Reads a [`Growing`] file from the start, blocking at its written length; see the module docs.
///
/// Errors that are pack refusals or limits ([`PackError::PackTooLarge`],
/// [`PackError::TimeLimitExceeded`]) travel inside the `io::Error` as a [`PackError`];
/// [`into_pack_error`] takes them out again.
#[derive(Debug)]
pub(crate) struct GrowingReader {
    file: File,
    growing: Growing,
    /// Bytes read so far (the file's own cursor).
    at: u64,
    max_pack_bytes: u64,
    deadline: Option<Instant>,
    max_duration: Duration,
}

impl GrowingReader {
    /// Reads `file` (opened at its start) as `growing` announces its bytes. More than
    /// `max_pack_bytes` written is an error as soon as it is announced.
    pub(crate) fn new(
        file: File,
        growing: Growing,
        max_pack_bytes: u64,
        deadline: Option<Instant>,
        max_duration: Duration,
    ) -> Self {
        GrowingReader {
            file,
            growing,
            at: 0,
            max_pack_bytes,
            deadline,
            max_duration,
        }
    }
}

impl Read for GrowingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let written = match self.growing.wait(self.at, self.deadline) {
            Wait::Data(written) => written,
            Wait::Finished(_) => return Ok(0),
            // Too large is too large, whether or not the writer went on.
            Wait::Failed(written) if written > self.max_pack_bytes => written,
            Wait::Failed(_) => return Err(writer_failed()),
            Wait::TimedOut => {
                return Err(std::io::Error::other(PackError::TimeLimitExceeded {
                    limit: self.max_duration,
                }))
            }
        };
        if written > self.max_pack_bytes {
            return Err(std::io::Error::other(PackError::PackTooLarge {
                size: written,
                limit: self.max_pack_bytes,
            }));
        }
        let available = usize::try_from(written - self.at).unwrap_or(usize::MAX);
        let want = buf.len().min(available);
        let got = self.file.read(buf.get_mut(..want).unwrap_or_default())?;
        if got == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the pack file is shorter than its writer announced",
            ));
        }
        self.at += got as u64;
        Ok(got)
    }
}

/// The error a reader gets when the writer failed.
pub(crate) fn writer_failed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the pack's writer stopped before the end of the pack",
    )
}

/// The [`PackError`] an `io::Error` carries (from [`GrowingReader`]), or [`PackError::Io`].
pub(crate) fn into_pack_error(path: &std::path::Path, err: std::io::Error) -> PackError {
    if err.get_ref().is_some_and(|inner| inner.is::<PackError>()) {
        if let Some(inner) = err.into_inner() {
            return match inner.downcast::<PackError>() {
                Ok(pack) => *pack,
                Err(other) => PackError::io(path, std::io::Error::other(other)),
            };
        }
        return PackError::Internal {
            detail: "a read error lost its cause".into(),
        };
    }
    PackError::io(path, err)
}
