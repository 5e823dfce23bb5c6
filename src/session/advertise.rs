//! The advertisement as it streams from the upstream to the client, rewritten on the way by
//! [`AdvertisementFilter`]: capabilities that would let a client fetch objects from elsewhere
//! are dropped (v2 `bundle-uri`, `packfile-uris`), and the v0/v1 capability list is edited.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;

use crate::git::ByteStream;
use crate::proto::{AdvertisementFilter, CapabilityEdit};

/// `upstream` rewritten by a filter applying `edit`; a malformed advertisement ends the stream
/// with an error (the client sees a broken answer rather than a silently altered one).
pub(crate) fn filter_stream(upstream: ByteStream, edit: CapabilityEdit) -> ByteStream {
    Box::pin(Filtered {
        inner: upstream,
        filter: AdvertisementFilter::new(edit),
        done: false,
    })
}

struct Filtered {
    inner: ByteStream,
    filter: AdvertisementFilter,
    done: bool,
}

impl Stream for Filtered {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
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
                            "malformed advertisement from upstream: {e}"
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
                            "truncated advertisement from upstream: {e}"
                        )))));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}
