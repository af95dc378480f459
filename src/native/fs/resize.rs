//! `File::set_len` (`IORING_OP_FTRUNCATE`, Linux 6.9).

use std::io;

use io_uring::opcode;

use super::File;
use crate::native::os_result;

impl File {
    /// Truncates or extends the file to `size` bytes (`ftruncate`); an
    /// extension reads as zeros. The file's position does not move.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a file not open for writing or not a regular
    /// file (as `std`'s), a size beyond `i64::MAX`, or a registered file
    /// used off its shard; `Unsupported` on kernels before 6.9, which lack
    /// `IORING_OP_FTRUNCATE`; other `ftruncate(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let p = std::env::temp_dir().join(format!("ringlane-doc-set-len-{}", std::process::id()));
    /// let q = p.clone();
    /// let got = rt.block_on(rt.handle().spawn_pinned(0, async move {
    ///     let f = ringlane::native::fs::File::create(&q).await?;
    ///     f.set_len(10).await?;
    ///     Ok::<_, std::io::Error>(f.metadata().await?.len())
    /// }).unwrap()).unwrap();
    /// match got {
    ///     Ok(len) => assert_eq!(len, 10),
    ///     Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::Unsupported), // before 6.9
    /// }
    /// std::fs::remove_file(p).unwrap();
    /// ```
    pub async fn set_len(&self, size: u64) -> io::Result<()> {
        let Ok(len) = i64::try_from(size) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "size beyond i64::MAX",
            ));
        };
        let op = self.submit(self.keep(), move |fd, _| {
            opcode::Ftruncate::new(fd, len as u64).build()
        });
        let (result, _fd) = op.await.map_err(|(e, _)| e)?;
        if result == -libc::EINVAL && !kernel_has_ftruncate() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "File::set_len needs IORING_OP_FTRUNCATE (Linux 6.9)",
            ));
        }
        os_result(result).map(drop)
    }
}

/// Whether the kernel knows `IORING_OP_FTRUNCATE` (an unknown opcode fails
/// with `EINVAL`, as `ftruncate` on a read-only file does). Asked only
/// after an `EINVAL`; on a shard, from the probe made at start-up.
fn kernel_has_ftruncate() -> bool {
    crate::context::with_current(|cx| cx.shared.features.ftruncate).unwrap_or(true)
}
