//! Unix signals as streams, as `tokio::signal::unix`.

use std::io;
use std::task::{Context, Poll};

use super::registry::{MAX_SIGNAL, Registry, registry};

/// Which signal to listen for, as `tokio::signal::unix::SignalKind`.
///
/// # Examples
///
/// ```
/// use ringlane::signal::unix::SignalKind;
/// assert_eq!(SignalKind::terminate().as_raw_value(), libc::SIGTERM);
/// assert_eq!(SignalKind::from_raw(libc::SIGUSR1), SignalKind::user_defined1());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalKind(libc::c_int);

impl SignalKind {
    /// The signal numbered `signum` (any number: [`signal`] checks it).
    ///
    /// # Examples
    ///
    /// ```
    /// let k = ringlane::signal::unix::SignalKind::from_raw(libc::SIGRTMIN() + 1);
    /// assert_eq!(k.as_raw_value(), libc::SIGRTMIN() + 1);
    /// ```
    pub const fn from_raw(signum: libc::c_int) -> Self {
        SignalKind(signum)
    }

    /// The signal's number.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::signal::unix::SignalKind;
    /// assert_eq!(SignalKind::interrupt().as_raw_value(), libc::SIGINT);
    /// ```
    pub const fn as_raw_value(&self) -> libc::c_int {
        self.0
    }

    /// `SIGINT` (Ctrl-C).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ringlane::signal::unix::SignalKind::interrupt().as_raw_value(), libc::SIGINT);
    /// ```
    pub const fn interrupt() -> Self {
        SignalKind(libc::SIGINT)
    }

    /// `SIGTERM` (a polite request to stop: what `kill` and service
    /// managers send).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ringlane::signal::unix::SignalKind::terminate().as_raw_value(), libc::SIGTERM);
    /// ```
    pub const fn terminate() -> Self {
        SignalKind(libc::SIGTERM)
    }

    /// `SIGHUP` (often: reload the configuration).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ringlane::signal::unix::SignalKind::hangup().as_raw_value(), libc::SIGHUP);
    /// ```
    pub const fn hangup() -> Self {
        SignalKind(libc::SIGHUP)
    }

    /// `SIGQUIT`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ringlane::signal::unix::SignalKind::quit().as_raw_value(), libc::SIGQUIT);
    /// ```
    pub const fn quit() -> Self {
        SignalKind(libc::SIGQUIT)
    }

    /// `SIGUSR1`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ringlane::signal::unix::SignalKind::user_defined1().as_raw_value(), libc::SIGUSR1);
    /// ```
    pub const fn user_defined1() -> Self {
        SignalKind(libc::SIGUSR1)
    }

    /// `SIGUSR2`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ringlane::signal::unix::SignalKind::user_defined2().as_raw_value(), libc::SIGUSR2);
    /// ```
    pub const fn user_defined2() -> Self {
        SignalKind(libc::SIGUSR2)
    }

    /// `SIGCHLD` (a child process stopped or ended).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ringlane::signal::unix::SignalKind::child().as_raw_value(), libc::SIGCHLD);
    /// ```
    pub const fn child() -> Self {
        SignalKind(libc::SIGCHLD)
    }

    /// `SIGPIPE`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ringlane::signal::unix::SignalKind::pipe().as_raw_value(), libc::SIGPIPE);
    /// ```
    pub const fn pipe() -> Self {
        SignalKind(libc::SIGPIPE)
    }

    /// `SIGALRM`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ringlane::signal::unix::SignalKind::alarm().as_raw_value(), libc::SIGALRM);
    /// ```
    pub const fn alarm() -> Self {
        SignalKind(libc::SIGALRM)
    }

    /// `SIGIO`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ringlane::signal::unix::SignalKind::io().as_raw_value(), libc::SIGIO);
    /// ```
    pub const fn io() -> Self {
        SignalKind(libc::SIGIO)
    }

    /// `SIGWINCH` (the terminal's size changed).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ringlane::signal::unix::SignalKind::window_change().as_raw_value(), libc::SIGWINCH);
    /// ```
    pub const fn window_change() -> Self {
        SignalKind(libc::SIGWINCH)
    }
}

impl From<libc::c_int> for SignalKind {
    fn from(signum: libc::c_int) -> Self {
        SignalKind(signum)
    }
}

impl From<SignalKind> for libc::c_int {
    fn from(kind: SignalKind) -> Self {
        kind.0
    }
}

/// Listens for `kind`: installs its handler if it has none (for the life
/// of the process), and gives a stream of the deliveries from now on, as
/// `tokio::signal::unix::signal`.
///
/// # Errors
///
/// `InvalidInput` for a number that is no signal, or one that cannot be
/// handled (`SIGKILL`, `SIGSTOP`, and `SIGILL`, `SIGFPE`, `SIGSEGV`: Tokio
/// refuses the same, with `Other`); the OS error if signal handling cannot
/// start (no fd or thread: tried again at the next call); an error in a
/// forked child, where the parent's signal thread does not run.
///
/// # Examples
///
/// ```
/// use ringlane::signal::unix::{SignalKind, signal};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// rt.block_on(async {
///     let mut usr1 = signal(SignalKind::user_defined1())?;
///     // SAFETY: `raise` has no preconditions; the handler is installed.
///     unsafe { libc::raise(libc::SIGUSR1) };
///     usr1.recv().await; // the delivery after the listener was made
///     Ok::<_, std::io::Error>(())
/// }).unwrap();
/// assert!(signal(SignalKind::from_raw(libc::SIGKILL)).is_err());
/// ```
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    let signum = kind.0;
    let refused = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signum} {why}"),
        )
    };
    if signum <= 0 || signum as usize > MAX_SIGNAL {
        return Err(refused("is no signal"));
    }
    if signal_hook_registry::FORBIDDEN.contains(&signum) {
        return Err(refused("cannot be handled"));
    }
    let registry = registry()?;
    let signal = signum as usize;
    registry.install(signal)?;
    Ok(Signal {
        registry,
        signal,
        seen: registry.count(signal),
        slot: None,
        ended: false,
    })
}

/// The deliveries of one signal, from [`signal`]; the counterpart of
/// `tokio::signal::unix::Signal`.
///
/// # Examples
///
/// ```
/// use ringlane::signal::unix::{SignalKind, signal};
/// let mut hup = signal(SignalKind::hangup()).unwrap();
/// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// assert!(hup.poll_recv(&mut cx).is_pending(), "nothing delivered since");
/// ```
pub struct Signal {
    registry: &'static Registry,
    signal: usize,
    /// The delivery count this listener has reported up to.
    seen: u64,
    /// Its waker's slot in the registry, once it waited.
    slot: Option<usize>,
    /// It returned `None` (the registry died): it stays ended.
    ended: bool,
}

impl Signal {
    /// Waits for the next delivery (several since the last receive are
    /// one). `None` only if signal handling stopped for good (something
    /// closed its pipe), as Tokio's ends only with its driver.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::signal::unix::{SignalKind, signal};
    /// let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
    /// // SAFETY: `raise` has no preconditions; the handler is installed.
    /// unsafe { libc::raise(libc::SIGUSR2) };
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// assert_eq!(rt.block_on(usr2.recv()), Some(()));
    /// ```
    pub async fn recv(&mut self) -> Option<()> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next delivery, for a hand-written `Stream` or `poll`
    /// method.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::signal::unix::{SignalKind, signal};
    /// let mut winch = signal(SignalKind::window_change()).unwrap();
    /// // SAFETY: `raise` has no preconditions; the handler is installed.
    /// unsafe { libc::raise(libc::SIGWINCH) };
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(winch.poll_recv(&mut cx).is_ready());
    /// assert!(winch.poll_recv(&mut cx).is_pending(), "one delivery, one event");
    /// ```
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let now = self.registry.count(self.signal);
        let now = match now != self.seen {
            true => now,
            false => match self
                .registry
                .wait(self.signal, self.seen, &mut self.slot, cx.waker())
            {
                Some(now) => now,
                None => return Poll::Pending,
            },
        };
        if now == self.seen {
            self.ended = true; // the registry died (registry invariant 5)
            return Poll::Ready(None);
        }
        self.seen = now;
        Poll::Ready(Some(()))
    }
}

impl std::fmt::Debug for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signal")
            .field("signal", &self.signal)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            self.registry.forget(self.signal, slot);
        }
    }
}
