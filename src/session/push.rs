//! receive-pack (push): read the commands, spool the pack to disk, inspect, decide, record,
//! approve, then relay what is allowed.

use futures_util::{stream, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::io::{ReaderStream, StreamReader};

use super::fetch::fail;
use super::oplog::{self, Operation};
use super::{Gateway, Rejection, Session, SessionError};
use crate::git::{ByteStream, Service};
use crate::proto::pktline::PktReader;
use crate::proto::receive::{self, UpdateRequest};

impl Gateway {
    /// One push. The whole request is read (the pack spooled under `state_dir/spool`) before
    /// anything is relayed or answered: git expects the server to consume the body first, and
    /// the gateway must see every ref update and object before deciding.
    pub async fn receive_pack(
        &self,
        session: &Session,
        body: ByteStream,
    ) -> Result<ByteStream, Rejection> {
        debug_assert_eq!(session.service, Service::ReceivePack);
        let mut op = Operation::start(session, "rpc", self.metrics());
        let result = self.receive_pack_inner(session, body, &op).await;
        match result {
            Ok(body) => Ok(op.meter(body)),
            Err(e) => Err(fail(&mut op, &e)),
        }
    }

    async fn receive_pack_inner(
        &self,
        session: &Session,
        body: ByteStream,
        op: &Operation,
    ) -> Result<ByteStream, SessionError> {
        let limits = &self.config().limits;
        let mut reader = PktReader::new(StreamReader::new(body));
        let request = receive::read_update_request(&mut reader, &self.proto_limits()).await?;
        let (rest, buffered) = reader.into_parts();
        let spool = self
            .spool_pack(&buffered, rest, limits.max_push_bytes)
            .await?;

        // Seams, in order (each is a later issue): inspect the pack and ref updates, decide per
        // ref, record the operation, hold for approval. Today every update is relayed.
        let relayed: UpdateRequest = request;

        let file = spool
            .reopen()
            .map_err(|e| SessionError::Internal(format!("reopening the spooled pack: {e}")))?;
        let mut head = bytes::BytesMut::new();
        relayed.encode(&mut head)?;
        let head = head.freeze();
        let pack = ReaderStream::new(tokio::fs::File::from_std(file));
        let body: ByteStream = Box::pin(stream::once(async move { Ok(head) }).chain(pack));
        let body = oplog::count(body, op.bytes_in.clone());
        let answer = session
            .repo
            .upstream
            .rpc(
                &session.repo.path,
                Service::ReceivePack,
                session.protocol,
                body,
            )
            .await?;
        // The spool file lives until the answer has been streamed (then it is deleted).
        Ok(Box::pin(answer.map(move |chunk| {
            let _keep = &spool;
            chunk
        })))
    }

    fn proto_limits(&self) -> receive::Limits {
        let limits = &self.config().limits;
        receive::Limits {
            max_commands: limits.max_ref_updates,
            ..receive::Limits::default()
        }
    }

    /// Copies the pack (what follows the commands) to a spool file, refusing more than `limit`
    /// bytes. The file is deleted when the returned handle is dropped.
    async fn spool_pack(
        &self,
        buffered: &[u8],
        rest: impl AsyncRead + Unpin,
        limit: u64,
    ) -> Result<tempfile::NamedTempFile, SessionError> {
        let internal =
            |e: std::io::Error| SessionError::Internal(format!("spooling the pack: {e}"));
        let spool = tempfile::Builder::new()
            .prefix("push-")
            .suffix(".pack")
            .tempfile_in(&self.spool_dir)
            .map_err(internal)?;
        let std_file = spool.reopen().map_err(internal)?;
        let mut file = tokio::fs::File::from_std(std_file);
        if buffered.len() as u64 > limit {
            return Err(SessionError::TooLarge {
                what: "the pushed pack",
                limit,
            });
        }
        file.write_all(buffered).await.map_err(internal)?;
        let remaining = limit - buffered.len() as u64;
        let mut limited = rest.take(remaining + 1);
        let copied = copy_body(&mut limited, &mut file).await?;
        if copied > remaining {
            return Err(SessionError::TooLarge {
                what: "the pushed pack",
                limit,
            });
        }
        file.flush().await.map_err(internal)?;
        Ok(spool)
    }
}

/// Copies the request body to the spool: read errors are the client's, write errors ours.
async fn copy_body(
    reader: &mut (impl AsyncRead + Unpin),
    file: &mut tokio::fs::File,
) -> Result<u64, SessionError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).await.map_err(SessionError::Body)?;
        if n == 0 {
            return Ok(total);
        }
        let chunk = buf.get(..n).unwrap_or_default();
        file.write_all(chunk)
            .await
            .map_err(|e| SessionError::Internal(format!("spooling the pack: {e}")))?;
        total += n as u64;
    }
}
