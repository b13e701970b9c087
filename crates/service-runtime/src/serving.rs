//! [`Serving`]: a task serving a listening socket, stopped by
//! [`shutdown`](Serving::shutdown) or drop; what the runtime's HTTP
//! endpoint and the services that listen (the archive relay) are handles of.

use std::future::Future;
use std::net::SocketAddr;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A task serving the socket bound to an address until
/// [`shutdown`](Self::shutdown) or drop, both of which fire its
/// [`CancellationToken`].
#[derive(Debug)]
pub struct Serving {
    address: SocketAddr,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Serving {
    /// Spawns `serve`, which listens on `address` and must end soon after
    /// `cancel` fires.
    pub fn spawn<F>(address: SocketAddr, cancel: CancellationToken, serve: F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Self {
            address,
            cancel,
            task: Some(tokio::spawn(serve)),
        }
    }

    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Fires the token and waits for the task to end.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
