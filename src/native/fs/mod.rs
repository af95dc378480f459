//! Files and paths through io_uring opcodes (no thread pool).

mod async_file;
mod copy;
mod dirs;
mod file;
mod fixed;
mod open_options;
mod path;
mod resize;
mod seekable;
mod vectored;
mod whole;

pub use async_file::AsyncFile;
pub use copy::copy;
pub use dirs::{create_dir_all, hard_link, symlink, try_exists};
pub use file::File;
pub use open_options::OpenOptions;
pub use path::{Metadata, create_dir, metadata, remove_dir, remove_file, rename, symlink_metadata};
pub use whole::{read, read_to_string, write};
