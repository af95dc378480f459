//! Files and paths through io_uring opcodes, as `tokio::fs` has them.
//!
//! Every call with an io_uring opcode is submitted to the calling shard's
//! ring (no thread pool). The few without one (`read_dir`'s listing,
//! `canonicalize`, `read_link`, `set_permissions`, `remove_dir_all`,
//! `File::set_permissions`) run their std call on the runtime's blocking
//! pool, as Tokio runs all of them.

mod async_file;
mod copy;
mod dirs;
mod file;
mod fixed;
mod metadata;
mod open_options;
mod path;
mod pooled;
mod read_dir;
mod resize;
mod rw;
mod seekable;
mod vectored;
mod whole;

pub use async_file::AsyncFile;
pub use copy::copy;
pub use dirs::{create_dir_all, hard_link, symlink, try_exists};
pub use file::File;
pub use metadata::{FileType, Metadata};
pub use open_options::OpenOptions;
pub use path::{create_dir, metadata, remove_dir, remove_file, rename, symlink_metadata};
pub use pooled::{canonicalize, read_link, remove_dir_all, set_permissions};
pub use read_dir::{DirEntry, ReadDir, read_dir};
pub use whole::{read, read_to_string, write};
