//! Putting the owned halves of a compat stream back together, as Tokio's
//! `OwnedReadHalf::reunite`.

use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use super::stream::{CompatStream, OwnedReadHalf, OwnedWriteHalf};

/// The halves given to `reunite` came from two different streams; both are
/// handed back unchanged.
///
/// # Examples
///
/// ```
/// use ringlane::compat::UnixStream;
/// let (a, b) = UnixStream::pair().unwrap();
/// let (ra, _wa) = a.into_split();
/// let (_rb, wb) = b.into_split();
/// let err = ra.reunite(wb).unwrap_err();
/// assert!(err.to_string().contains("not from the same stream"));
/// ```
pub struct ReuniteError<S: CompatStream>(pub OwnedReadHalf<S>, pub OwnedWriteHalf<S>);

impl<S: CompatStream> fmt::Debug for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl<S: CompatStream> fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same stream")
    }
}

impl<S: CompatStream> std::error::Error for ReuniteError<S> {}

impl<S: CompatStream> OwnedReadHalf<S> {
    /// The stream these halves were split from, if `other` is its write
    /// half. Its write side is not shut down: the stream goes on as before
    /// the split.
    ///
    /// # Errors
    ///
    /// [`ReuniteError`], holding both halves, if they come from different
    /// streams.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// use ringlane::compat::UnixStream;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let (a, mut b) = UnixStream::pair()?;
    ///     let (r, w) = a.into_split();
    ///     let mut a = r.reunite(w).expect("halves of one stream");
    ///     a.write_all(b"still open").await?;
    ///     let mut got = [0u8; 10];
    ///     b.read_exact(&mut got).await?;
    ///     Ok::<_, std::io::Error>(got)
    /// }).unwrap();
    /// assert_eq!(&rt.block_on(j).unwrap().unwrap(), b"still open");
    /// ```
    pub fn reunite(self, other: OwnedWriteHalf<S>) -> Result<S, ReuniteError<S>> {
        reunite(self, other)
    }
}

impl<S: CompatStream> OwnedWriteHalf<S> {
    /// The stream these halves were split from, if `other` is its read half
    /// (see [`OwnedReadHalf::reunite`]).
    ///
    /// # Errors
    ///
    /// [`ReuniteError`], holding both halves, if they come from different
    /// streams.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::UnixStream;
    /// let (a, _b) = UnixStream::pair().unwrap();
    /// let (r, w) = a.into_split();
    /// assert!(w.reunite(r).is_ok());
    /// ```
    pub fn reunite(self, other: OwnedReadHalf<S>) -> Result<S, ReuniteError<S>> {
        reunite(other, self)
    }
}

fn reunite<S: CompatStream>(
    read: OwnedReadHalf<S>,
    write: OwnedWriteHalf<S>,
) -> Result<S, ReuniteError<S>> {
    if !Arc::ptr_eq(&read.0, &write.0) {
        return Err(ReuniteError(read, write));
    }
    // The write half's drop would shut the write side down: take its `Arc`
    // out without running it.
    let write = ManuallyDrop::new(write);
    // SAFETY: `write` is never used or dropped after this read, so its
    // `Arc` is moved out exactly once and its count stays right.
    let shared = unsafe { std::ptr::read(&write.0) };
    drop(shared);
    // The two halves held the only references (`into_split` made them, and
    // neither lends its `Arc` out).
    Ok(Arc::try_unwrap(read.0)
        .unwrap_or_else(|_| unreachable!("a half of a split stream was cloned")))
}
