//! Connections: how many the server holds, from whom, and for how long.
//!
//! Accepting stops at `max` connections (callers wait in the listen
//! backlog) and a client network (see `auth::limiter::network_of`) may hold
//! at most `per_address`; more are closed as they come. A trusted reverse
//! proxy (`--trusted-proxy`) is not held to `per_address`: its connections
//! carry all its consumers. A connection with
//! no request in flight for `idle` is closed, whatever keepalive pings it
//! answers. An accept error (out of descriptors, say) is backed off, never
//! retried in a spin.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::auth::limiter::network_of;

/// Bounds on the server's connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Connections held at once.
    pub max: usize,
    /// Connections one client network may hold at once.
    pub per_address: usize,
    /// How long a connection may stay without a request in flight.
    pub idle: Duration,
}

impl Default for ConnLimits {
    fn default() -> ConnLimits {
        ConnLimits {
            max: 4096,
            per_address: 256,
            idle: Duration::from_secs(60),
        }
    }
}

/// What the requests of one connection share with it: how many are in
/// flight, and when the last one ended.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    in_flight: AtomicU64,
    /// Milliseconds after `epoch` when a request last started or ended.
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            in_flight: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// A request starts; it ends when the guard (moved into the response
    /// body, so a stream counts until its last message) is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    /// When the connection becomes idle if nothing happens: `None` while a
    /// request is in flight.
    fn idle_at(&self, idle: Duration) -> Option<Instant> {
        (self.in_flight.load(Ordering::Relaxed) == 0)
            .then(|| self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle)
    }
}

/// A request in flight on a connection.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What requests know of their connection (in their extensions).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote: Option<SocketAddr>,
    pub activity: Arc<Activity>,
}

/// Per client network, the connections it holds.
type Holders = crate::shares::Shares<IpAddr>;

/// One client network's hold on a connection slot.
type Slot = crate::shares::Share<IpAddr>;

/// An accepted connection within the limits.
pub struct Conn {
    io: TcpStream,
    info: ConnInfo,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    _permit: OwnedSemaphorePermit,
    _slot: Option<Slot>,
}

impl Conn {
    /// Whether the connection has been idle too long; re-arms the timer
    /// (registering the waker) otherwise.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let now = Instant::now();
            match self.info.activity.idle_at(self.idle) {
                Some(at) if at <= now => return true,
                Some(at) => self.timer.as_mut().reset(at),
                // A request in flight: look again a period later.
                None => self.timer.as_mut().reset(now + self.idle),
            }
        }
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending if this.idle_expired(cx) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no request for the idle timeout",
            ))),
            other => other,
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The first wait after an accept error, and the longest.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

struct Acceptor {
    listener: TcpListener,
    limits: ConnLimits,
    proxies: crate::proxy::TrustedProxies,
    slots: Arc<Semaphore>,
    holders: Holders,
    backoff: Duration,
}

impl Acceptor {
    /// The next connection within the limits. Never fails: accept errors
    /// are logged and waited out.
    async fn next(&mut self) -> Conn {
        loop {
            // At the limit, stop accepting until a connection ends.
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                // The semaphore is never closed; wait rather than spin.
                tokio::time::sleep(BACKOFF_MAX).await;
                continue;
            };
            let (io, remote) = match self.listener.accept().await {
                Ok(accepted) => {
                    self.backoff = BACKOFF_MIN;
                    accepted
                }
                Err(e) => {
                    tracing::warn!(error = %e, wait_ms = self.backoff.as_millis() as u64, "accepting a connection failed");
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            let network = network_of(remote.ip());
            let slot = if self.proxies.trusts(remote.ip()) {
                None
            } else {
                match self.holders.take(network, self.limits.per_address) {
                    Ok(slot) => Some(slot),
                    Err(held) => {
                        tracing::debug!(%network, held, "connection refused: the address holds its most");
                        continue;
                    }
                }
            };
            let _ = io.set_nodelay(true);
            let activity = Arc::new(Activity::new());
            return Conn {
                io,
                info: ConnInfo {
                    remote: Some(remote),
                    activity,
                },
                idle: self.limits.idle,
                timer: Box::pin(tokio::time::sleep(self.limits.idle)),
                _permit: permit,
                _slot: slot,
            };
        }
    }
}

/// The connections of `listener`, within `limits` (`proxies` beyond the
/// per-address one), for tonic's server.
pub fn incoming(
    listener: TcpListener,
    limits: ConnLimits,
    proxies: crate::proxy::TrustedProxies,
) -> impl futures_util::Stream<Item = Result<Conn, io::Error>> + Send + 'static {
    let acceptor = Acceptor {
        listener,
        limits,
        proxies,
        slots: Arc::new(Semaphore::new(limits.max.max(1))),
        holders: Holders::default(),
        backoff: BACKOFF_MIN,
    };
    futures_util::stream::unfold(acceptor, |mut a| async move {
        let conn = a.next().await;
        Some((Ok(conn), a))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_without_a_request_in_flight() {
        let a = Arc::new(Activity::new());
        let idle = Duration::from_secs(60);
        let first = a.idle_at(idle).expect("idle from the start");
        let request = a.begin();
        assert_eq!(a.idle_at(idle), None, "a request in flight");
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(a.idle_at(idle), None, "still in flight after the idle period");
        drop(request);
        let after = a.idle_at(idle).expect("idle again");
        assert!(
            after >= first + Duration::from_secs(90),
            "counted from the request's end"
        );
    }
}
