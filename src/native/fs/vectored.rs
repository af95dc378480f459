//! Vectored reads and writes (`IORING_OP_READV`/`WRITEV`) on a `File`.

use io_uring::opcode;
use std::io;

use super::File;
use super::fixed::Keep;
use crate::native::{IoBuf, IoBufMut, os_result};
use crate::op::Inline;

/// A vectored op's resources: the buffers and the iovecs pointing at them.
struct VecRes<B> {
    bufs: Vec<B>,
    iovecs: Vec<libc::iovec>,
    _file: Keep,
}

// SAFETY: the iovecs point only into the buffers this struct owns (heap
// bytes that do not move), so moving the struct moves what they point at
// with it; `B` is `Send`.
unsafe impl<B: Send> Send for VecRes<B> {}

impl File {
    /// The resources of a vectored op on this file (built before any
    /// `await`: the iovecs alone are not `Send`).
    fn vec_res<B>(&self, bufs: Vec<B>, iovecs: Vec<libc::iovec>) -> VecRes<B> {
        VecRes {
            bufs,
            iovecs,
            _file: self.keep(),
        }
    }

    async fn vectored<B: Send + 'static>(
        &self,
        res: VecRes<B>,
        offset: u64,
        write: bool,
    ) -> (io::Result<usize>, Vec<B>) {
        let invalid = |why| Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        if offset > i64::MAX as u64 {
            return (invalid("offset beyond i64::MAX"), res.bufs);
        }
        if res.iovecs.iter().all(|v| v.iov_len == 0) {
            return (invalid("zero-length buffers"), res.bufs);
        }
        if res.iovecs.len() > libc::UIO_MAXIOV as usize {
            return (invalid("more buffers than IOV_MAX"), res.bufs);
        }
        if let Err(e) = self
            .seekable
            .check(std::os::fd::AsRawFd::as_raw_fd(&*self.fd))
        {
            return (Err(e), res.bufs);
        }
        let op = self.submit(res, move |fd, r| {
            let (ptr, n) = (r.iovecs.as_ptr(), r.iovecs.len() as u32);
            if write {
                opcode::Writev::new(fd, ptr, n).offset(offset).build()
            } else {
                opcode::Readv::new(fd, ptr, n).offset(offset).build()
            }
        });
        // Positioned: tried inline, as `rw_op`'s (op invariant 13).
        let kind = if write { Inline::Write } else { Inline::Read };
        match op.inline(kind).await {
            Ok((n, r)) => (os_result(n), r.bufs),
            Err((e, r)) => (Err(e), r.bufs),
        }
    }

    /// Reads from `offset` into the buffers in order (each up to its
    /// capacity) with one `readv`; returns the total byte count.
    ///
    /// # Errors
    ///
    /// `preadv(2)` errors (`ESPIPE` on a pipe or socket); `InvalidInput` if every
    /// buffer has zero capacity or there are more than `IOV_MAX` (1,024) buffers.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let f = ringlane::native::fs::File::open("/proc/self/stat").await.unwrap();
    ///     let (n, bufs) = f.read_vectored_at(vec![Vec::with_capacity(4), Vec::with_capacity(4)], 0).await;
    ///     (n.unwrap(), bufs[0].len(), bufs[1].len())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), (8, 4, 4));
    /// ```
    pub async fn read_vectored_at<B: IoBufMut>(
        &self,
        mut bufs: Vec<B>,
        offset: u64,
    ) -> (io::Result<usize>, Vec<B>) {
        let iovecs = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.stable_mut_ptr().cast(),
                iov_len: b.bytes_total(),
            })
            .collect();
        let res = self.vec_res(bufs, iovecs);
        let (n, mut bufs) = self.vectored(res, offset, false).await;
        if let Ok(mut left) = n {
            for b in &mut bufs {
                let here = left.min(b.bytes_total());
                // SAFETY: the kernel filled the buffers in order: this one's
                // first `here` bytes are initialized.
                unsafe { b.set_init(here) };
                left -= here;
            }
        }
        (n, bufs)
    }

    /// Writes the buffers' initialized bytes, in order, at `offset` with one
    /// `writev`; returns the total written (possibly fewer).
    ///
    /// # Errors
    ///
    /// `pwritev(2)` errors (`ESPIPE` on a pipe or socket); `InvalidInput` if every
    /// buffer is empty or there are more than `IOV_MAX` (1,024) buffers.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-wv-{}", std::process::id()));
    /// let p = path.clone();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let f = ringlane::native::fs::File::create(&p).await.unwrap();
    ///     f.write_vectored_at(vec![b"ab".to_vec(), b"cd".to_vec()], 0).await.0.unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 4);
    /// assert_eq!(std::fs::read(&path).unwrap(), b"abcd");
    /// std::fs::remove_file(path).unwrap();
    /// ```
    pub async fn write_vectored_at<B: IoBuf>(
        &self,
        bufs: Vec<B>,
        offset: u64,
    ) -> (io::Result<usize>, Vec<B>) {
        let iovecs = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.stable_ptr().cast_mut().cast(),
                iov_len: b.bytes_init(),
            })
            .collect();
        let res = self.vec_res(bufs, iovecs);
        self.vectored(res, offset, true).await
    }
}
