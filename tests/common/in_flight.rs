//! A read held in flight on a shard and handed out of its task undropped,
//! for tests of what happens to it away from that shard.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use ringlane::native::fs::File;

pub type ReadFuture = Pin<Box<dyn Future<Output = std::io::Result<usize>> + Send>>;

/// A read future handed out of the task that started it (a plain future
/// returned from an async block would read as a forgotten `.await`).
pub struct InFlight(pub ReadFuture);

/// A read of the (empty) pipe, polled once on shard 0 so that it is in
/// flight there, then handed back to the caller undropped.
pub fn read_in_flight_on_shard_0(rt: &ringlane::Runtime, reader: &File) -> InFlight {
    read_in_flight(rt, reader, |reader, buf| {
        Box::pin(async move { reader.read(buf).await.0 })
    })
}

/// As `read_in_flight_on_shard_0`, for a read built by `read` from the
/// reader and a 64-byte buffer.
pub fn read_in_flight(
    rt: &ringlane::Runtime,
    reader: &File,
    read: impl FnOnce(File, Vec<u8>) -> ReadFuture + Send + 'static,
) -> InFlight {
    let reader = reader.clone();
    let task = rt.handle().spawn_pinned(0, async move {
        let mut read = read(reader, vec![0u8; 64]);
        let first = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx).is_pending()));
        assert!(first.await, "a read of an empty pipe completed");
        InFlight(read)
    });
    rt.block_on(task.unwrap()).unwrap()
}
