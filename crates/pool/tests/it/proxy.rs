//! A TCP proxy in front of PgBouncer that tests can cut: it severs every
//! connection through it on demand, and while "down" it closes each new
//! connection at once, as a vanished server would.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(crate) struct Proxy {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    sever: watch::Sender<u64>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstream`.
    pub(crate) async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let down = Arc::new(AtomicBool::new(false));
        let (sever, _) = watch::channel(0_u64);
        let accept = tokio::spawn({
            let down = Arc::clone(&down);
            let sever = sever.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if down.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    tokio::spawn(forward(client, upstream, sever.subscribe()));
                }
            }
        });
        Self {
            addr,
            down,
            sever,
            accept,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Closes every connection through the proxy now.
    pub(crate) fn sever_all(&self) {
        self.sever.send_modify(|generation| *generation += 1);
    }

    /// While down, new connections are closed as soon as they are accepted.
    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.sever_all();
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr, mut sever: watch::Receiver<u64>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = sever.changed() => {}
    }
}
