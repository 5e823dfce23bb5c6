//! Rewriting a ref listing as it streams from the upstream to the client. Two rewrites use it:
//! [`AdvertisementFilter`] (capabilities that would let a client fetch objects from elsewhere
//! are dropped — v2 `bundle-uri`, `packfile-uris` — and the v0/v1 capability list is edited) and
//! the hidden-refs filter of [`super::refs`].

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;

use crate::git::ByteStream;
use crate::proto::{AdvertisementFilter, CapabilityEdit, ProtoError};

/// A rewrite fed chunk by chunk.
pub(crate) trait Rewrite: Send + Unpin + 'static {
    /// Feeds a chunk; appends what to relay to `out`.
    fn feed(&mut self, chunk: &[u8], out: &mut BytesMut) -> Result<(), ProtoError>;
    /// Errors when the input stopped before the part that needed rewriting ended.
    fn finish(&self) -> Result<(), ProtoError>;
}

impl Rewrite for AdvertisementFilter {
    fn feed(&mut self, chunk: &[u8], out: &mut BytesMut) -> Result<(), ProtoError> {
        AdvertisementFilter::feed(self, chunk, out)
    }

    fn finish(&self) -> Result<(), ProtoError> {
        AdvertisementFilter::finish(self)
    }
}

/// `upstream` rewritten by a filter applying `edit`.
pub(crate) fn filter_stream(upstream: ByteStream, edit: CapabilityEdit) -> ByteStream {
    rewrite(upstream, AdvertisementFilter::new(edit))
}

/// `inner` rewritten by `filter`; malformed input ends the stream with an error (the client
/// sees a broken answer rather than a silently altered one).
pub(crate) fn rewrite(inner: ByteStream, filter: impl Rewrite) -> ByteStream {
    Box::pin(Rewritten {
        inner,
        filter,
        done: false,
    })
}

struct Rewritten<F> {
    inner: ByteStream,
    filter: F,
    done: bool,
}

impl<F: Rewrite> Stream for Rewritten<F> {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is Unpin (the inner stream is boxed).
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(chunk))) => {
                    let mut out = BytesMut::with_capacity(chunk.len());
                    if let Err(e) = this.filter.feed(&chunk, &mut out) {
                        this.done = true;
                        return Poll::Ready(Some(Err(std::io::Error::other(format!(
                            "malformed ref listing from upstream: {e}"
                        )))));
                    }
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out.freeze())));
                    }
                }
                Poll::Ready(None) => {
                    this.done = true;
                    if let Err(e) = this.filter.finish() {
                        return Poll::Ready(Some(Err(std::io::Error::other(format!(
                            "truncated ref listing from upstream: {e}"
                        )))));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}
