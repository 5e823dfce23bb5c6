//! One structured log line and one set of metrics per operation, emitted when the answer has
//! been fully streamed (or abandoned).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::Stream;

use crate::admin::metrics::{BytesLabels, Metrics, OperationLabels, ServiceLabels, UpstreamLabels};
use crate::git::ByteStream;
use crate::session::{RejectKind, Session};

/// An operation in flight: counts bytes, logs and measures once when it ends.
pub(crate) struct Operation {
    /// This operation's id (the record's `id`).
    pub(crate) id: String,
    session: Session,
    phase: &'static str,
    started: Instant,
    /// Wall-clock start, for the record.
    pub(crate) started_at: std::time::SystemTime,
    metrics: Arc<Metrics>,
    /// Bytes of the request relayed upstream; shared with the request stream's counter.
    pub(crate) bytes_in: Arc<AtomicU64>,
    bytes_out: u64,
    finished: bool,
}

impl Operation {
    pub(crate) fn start(session: &Session, phase: &'static str, metrics: &Arc<Metrics>) -> Self {
        metrics.active.inc();
        Operation {
            id: crate::session::new_id(),
            session: session.clone(),
            phase,
            started: Instant::now(),
            started_at: std::time::SystemTime::now(),
            metrics: metrics.clone(),
            bytes_in: Arc::new(AtomicU64::new(0)),
            bytes_out: 0,
            finished: false,
        }
    }

    /// Ends the operation with `result` (`ok`, or a [`RejectKind`] label).
    pub(crate) fn finish(&mut self, result: &str, detail: Option<&str>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.metrics.active.dec();
        let service = self.session.service.as_str().to_string();
        let elapsed = self.started.elapsed();
        let bytes_in = self.bytes_in.load(Ordering::Relaxed);
        self.metrics
            .operations
            .get_or_create(&OperationLabels {
                service: service.clone(),
                phase: self.phase.into(),
                result: result.into(),
            })
            .inc();
        self.metrics
            .durations
            .get_or_create(&ServiceLabels {
                service: service.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.metrics
            .bytes
            .get_or_create(&BytesLabels {
                service: service.clone(),
                direction: "to_client".into(),
            })
            .inc_by(self.bytes_out);
        self.metrics
            .bytes
            .get_or_create(&BytesLabels {
                service,
                direction: "to_upstream".into(),
            })
            .inc_by(bytes_in);
        if result == RejectKind::Upstream.as_str() {
            self.metrics
                .upstream_errors
                .get_or_create(&UpstreamLabels {
                    upstream: self.session.repo.upstream.name().to_string(),
                })
                .inc();
        }
        let s = &self.session;
        tracing::info!(
            target: "gitgate::operation",
            op = %self.id,
            session = %s.id,
            identity = %s.identity.name,
            auth = s.identity.method.as_str(),
            transport = s.transport.as_str(),
            peer = ?s.peer,
            repo = %s.repo.name,
            service = %s.service,
            phase = self.phase,
            protocol = s.protocol.number(),
            bytes_in,
            bytes_out = self.bytes_out,
            duration_ms = elapsed.as_millis() as u64,
            result,
            detail = detail.unwrap_or(""),
            "operation"
        );
    }

    /// Wraps the answer so the operation ends when it has been streamed completely
    /// (`ok`), failed (`upstream_error`) or was dropped by the client (`aborted`).
    pub(crate) fn meter(self, inner: ByteStream) -> ByteStream {
        Box::pin(Metered { inner, op: self })
    }
}

impl Drop for Operation {
    fn drop(&mut self) {
        self.finish("aborted", None);
    }
}

struct Metered {
    inner: ByteStream,
    op: Operation,
}

impl Stream for Metered {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = this.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => this.op.bytes_out += chunk.len() as u64,
            Poll::Ready(Some(Err(e))) => {
                let detail = e.to_string();
                this.op.finish(RejectKind::Upstream.as_str(), Some(&detail));
            }
            Poll::Ready(None) => this.op.finish("ok", None),
            Poll::Pending => {}
        }
        polled
    }
}

/// Counts the bytes of a request body as they are relayed.
pub(crate) fn count(inner: ByteStream, counter: Arc<AtomicU64>) -> ByteStream {
    Box::pin(Counted { inner, counter })
}

struct Counted {
    inner: ByteStream,
    counter: Arc<AtomicU64>,
}

impl Stream for Counted {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            self.counter
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        polled
    }
}
