//! The two directions of an SSH session channel as the pipeline sees them: the client's data
//! as a [`ByteStream`] (ending at the client's EOF), and [`Out`] for stdout, stderr and the
//! exit status.
//!
//! Backpressure both ways: russh stops reading the socket while the channel's message queue is
//! full (`channel_buffer_size`), so a client cannot push faster than the session consumes; and
//! [`Out`] waits for the client's window before each packet, so an upstream's answer is pulled
//! only as fast as the client takes it.

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use russh::server::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use crate::git::ByteStream;
use crate::proto::advertisement::encode_error_line;

/// The client's data until it sends EOF or closes the channel.
pub fn input(read: ChannelReadHalf) -> ByteStream {
    Box::pin(stream::unfold(Some(read), |read| async move {
        let mut read = read?;
        loop {
            match read.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    if data.is_empty() {
                        continue;
                    }
                    return Some((Ok(data), Some(read)));
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return None,
                // Requests (env, exec...) were answered by the handler; stderr from a client
                // means nothing to git.
                Some(_) => continue,
            }
        }
    }))
}

/// The client went away (or the connection broke) while the gateway was writing.
#[derive(Debug, thiserror::Error)]
#[error("the client went away")]
pub struct ClientGone;

/// Why relaying an answer stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The client went away.
    #[error(transparent)]
    Client(#[from] ClientGone),
    /// The answer stream failed (the upstream broke off, a rewrite found bad input).
    #[error("{0}")]
    Source(std::io::Error),
}

/// The gateway's side of the channel.
pub struct Out {
    write: ChannelWriteHalf<Msg>,
    sent: u64,
}

impl Out {
    /// Wraps the write half.
    pub fn new(write: ChannelWriteHalf<Msg>) -> Out {
        Out { write, sent: 0 }
    }

    /// Bytes sent on stdout so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Sends `data` on stdout, waiting for the client's window.
    pub async fn data(&mut self, data: Bytes) -> Result<(), ClientGone> {
        if data.is_empty() {
            return Ok(());
        }
        let len = data.len() as u64;
        self.write.data_bytes(data).await.map_err(|_| ClientGone)?;
        self.sent += len;
        Ok(())
    }

    /// Sends a whole stream on stdout, chunk by chunk.
    pub async fn relay(&mut self, mut body: ByteStream) -> Result<(), RelayError> {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(RelayError::Source)?;
            self.data(chunk).await?;
        }
        Ok(())
    }

    /// Sends `ERR <message>` on stdout: git stops with `fatal: remote error: <message>`.
    pub async fn error_line(&mut self, message: &str) -> Result<(), ClientGone> {
        let mut line = bytes::BytesMut::new();
        encode_error_line(&mut line, message);
        self.data(line.freeze()).await
    }

    /// Writes `text` (one line is added a newline) on stderr, which ssh shows as is.
    pub async fn stderr(&mut self, text: &str) -> Result<(), ClientGone> {
        let mut text = text.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        self.write
            .extended_data_bytes(1, Bytes::from(text))
            .await
            .map_err(|_| ClientGone)
    }

    /// Ends the channel: exit status, EOF, close. Errors are ignored: the client may be gone.
    pub async fn finish(&mut self, status: u32) {
        let _ = self.write.exit_status(status).await;
        let _ = self.write.eof().await;
        let _ = self.write.close().await;
    }
}
