//! The vocabulary shared by adapters, the session and upstreams: git services, protocol
//! versions (defined with the wire formats in [`crate::proto`]) and the byte stream type that
//! carries bodies between them.

use std::io;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;

pub use crate::proto::{ProtocolVersion as Protocol, Service};

/// A body flowing through the gateway: chunks of bytes or an I/O error that aborts the transfer.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + 'static>>;
