//! Files through io_uring opcodes (no thread pool).

mod file;
mod open_options;

pub use file::File;
pub use open_options::OpenOptions;
