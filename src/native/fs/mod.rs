//! Files and paths through io_uring opcodes (no thread pool).

mod file;
mod fixed;
mod open_options;
mod path;
mod seekable;
mod vectored;

pub use file::File;
pub use open_options::OpenOptions;
pub use path::{Metadata, create_dir, metadata, remove_dir, remove_file, rename, symlink_metadata};
