//! Sockets through io_uring opcodes: connect, accept, send, recv,
//! sendmsg/recvmsg, shutdown and close are ring operations on owned
//! buffers. `bind` and `listen` are immediate syscalls (they never wait).
//!
//! Sockets stay in blocking mode: io_uring arms its own readiness poll for
//! an op that cannot complete at once, so no op returns `WouldBlock`.

pub(crate) mod addr;
mod recv_multi;
pub(crate) mod socket;
mod tcp;
mod udp;
mod unix;

pub use recv_multi::RecvMulti;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};
