//! The addresses the compat constructors take ([`ToSocketAddrs`], as
//! Tokio's), and their resolution.
//!
//! Rule: a numeric address (a `SocketAddr`, an IP and port, or a string
//! that parses as one) is used at once; a host name is looked up with the
//! system resolver on the runtime's blocking pool (`spawn_blocking`), as
//! Tokio looks it up on its own, so a shard never blocks in
//! `getaddrinfo`. Called from a Tokio task (no ringlane runtime current),
//! the lookup goes to Tokio's blocking pool; with neither runtime (a plain
//! thread), it runs on the calling thread, as std's would.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// What [`TcpStream::connect`](super::TcpStream::connect),
/// [`TcpListener::bind`](super::TcpListener::bind) and the
/// [`UdpSocket`](super::UdpSocket) calls take as an address: the same
/// types Tokio's `ToSocketAddrs` takes (`SocketAddr`, its V4/V6 forms, an
/// IP and a port, a slice of `SocketAddr`, `"host:port"` as `&str` or
/// `String`, a host and a port). Sealed, as Tokio's is.
///
/// # Examples
///
/// ```
/// use ringlane::compat::TcpListener;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let by_str = TcpListener::bind("127.0.0.1:0").await?;
///     let by_pair = TcpListener::bind(("127.0.0.1", 0)).await?;
///     let by_name = TcpListener::bind(("localhost", 0)).await?; // looked up off the shard
///     Ok::<_, std::io::Error>([by_str, by_pair, by_name].iter().all(|l| l.local_addr().is_ok()))
/// }).unwrap();
/// assert!(rt.block_on(j).unwrap().unwrap());
/// ```
pub trait ToSocketAddrs: sealed::ToSocketAddrsPriv {}

impl<T: sealed::ToSocketAddrsPriv + ?Sized> ToSocketAddrs for T {}

pub(crate) mod sealed {
    /// How an address is to be resolved: not nameable outside the crate.
    #[doc(hidden)]
    pub trait ToSocketAddrsPriv {
        /// The addresses now, or the host name to look up.
        fn to_lookup(&self) -> super::Lookup;
    }
}

/// An address's resolution: done, or a host name (with its port) to look
/// up.
#[derive(Debug)]
pub enum Lookup {
    /// Numeric: the addresses themselves.
    Ready(Vec<SocketAddr>),
    /// A host name and a port, for the resolver.
    Name(String, u16),
    /// `"host:port"` that is not numeric, for the resolver.
    HostPort(String),
}

use sealed::ToSocketAddrsPriv;

macro_rules! numeric {
    ($($ty:ty),*) => {$(
        impl ToSocketAddrsPriv for $ty {
            fn to_lookup(&self) -> Lookup {
                Lookup::Ready(vec![SocketAddr::from(*self)])
            }
        }
    )*};
}

numeric!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl ToSocketAddrsPriv for [SocketAddr] {
    fn to_lookup(&self) -> Lookup {
        Lookup::Ready(self.to_vec())
    }
}

impl ToSocketAddrsPriv for str {
    fn to_lookup(&self) -> Lookup {
        match self.parse::<SocketAddr>() {
            Ok(addr) => Lookup::Ready(vec![addr]),
            Err(_) => Lookup::HostPort(self.to_owned()),
        }
    }
}

impl ToSocketAddrsPriv for String {
    fn to_lookup(&self) -> Lookup {
        self.as_str().to_lookup()
    }
}

impl ToSocketAddrsPriv for (&str, u16) {
    fn to_lookup(&self) -> Lookup {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => Lookup::Ready(vec![SocketAddr::new(ip, self.1)]),
            Err(_) => Lookup::Name(self.0.to_owned(), self.1),
        }
    }
}

impl ToSocketAddrsPriv for (String, u16) {
    fn to_lookup(&self) -> Lookup {
        (self.0.as_str(), self.1).to_lookup()
    }
}

impl<T: ToSocketAddrsPriv + ?Sized> ToSocketAddrsPriv for &T {
    fn to_lookup(&self) -> Lookup {
        (**self).to_lookup()
    }
}

impl Lookup {
    /// Runs the system resolver (blocking) on a name.
    fn run(self) -> io::Result<Vec<SocketAddr>> {
        use std::net::ToSocketAddrs as _;
        #[cfg(test)]
        tests::on_lookup();
        match self {
            Lookup::Ready(addrs) => Ok(addrs),
            Lookup::Name(host, port) => Ok((host.as_str(), port).to_socket_addrs()?.collect()),
            Lookup::HostPort(s) => Ok(s.as_str().to_socket_addrs()?.collect()),
        }
    }
}

/// `addr`'s addresses: at once if numeric, else looked up on the current
/// runtime's blocking pool (ringlane's, else Tokio's, else this thread).
/// The returned future holds no borrow of `addr`: it is `Send` whenever
/// `addr` is, as Tokio's are (a borrow held across the lookup would ask
/// for `Sync`).
pub(crate) fn resolve(
    addr: &(impl ToSocketAddrs + ?Sized),
) -> impl std::future::Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static {
    let lookup = addr.to_lookup();
    async move {
        let lookup = match lookup {
            Lookup::Ready(addrs) => return Ok(addrs),
            name => name,
        };
        if let Some(h) = crate::Handle::current() {
            return h.spawn_blocking(move || lookup.run())?.await?;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(tokio) => tokio
                .spawn_blocking(move || lookup.run())
                .await
                .map_err(io::Error::other)?,
            Err(_) => lookup.run(),
        }
    }
}

#[cfg(test)]
mod tests;
