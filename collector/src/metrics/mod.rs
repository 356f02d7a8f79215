//! `serve --metrics ADDR`: Prometheus text exposition (0.0.4) over plain HTTP, `/metrics`
//! and `/healthz`. One job per file: [`histogram`] (lock-free buckets ingest counts into),
//! [`hops`] (hop latencies and clock offsets from a background correlation), [`state`]
//! (what a scrape shows, kept current by one background thread), [`page`] (the answers),
//! [`text`] (the format), [`http`] (the responder). Backend-neutral: it reads the store
//! through [`StoreReader`] only.

pub mod histogram;
pub mod hops;
pub mod http;
pub mod page;
pub mod state;
pub mod text;

use crate::store::StoreReader;
use http::{HttpServer, Limits};
use state::{Published, Shared, Sources};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the background thread reads the store (boards, new arrivals) and correlates.
pub const REFRESH: Duration = Duration::from_secs(2);

/// The running endpoint and its background thread; [`Metrics::stop`] ends both.
#[derive(Debug)]
pub struct Metrics {
    http: HttpServer,
    stop: Arc<AtomicBool>,
    refresh: JoinHandle<()>,
}

impl Metrics {
    /// Serves on `listener`; `reader` is the background thread's own read connection.
    pub fn start(
        listener: TcpListener,
        sources: Sources,
        reader: Box<dyn StoreReader + Send>,
    ) -> std::io::Result<Metrics> {
        let shared = Arc::new(Shared {
            sources,
            published: Mutex::new(Published::default()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (s, flag) = (Arc::clone(&shared), Arc::clone(&stop));
        let refresh = std::thread::Builder::new()
            .name("metrics-refresh".into())
            .spawn(move || state::refresh(s, reader, REFRESH, flag))?;
        let handler: Arc<http::Handler> = Arc::new(move |path: &str| page::answer(&shared, path));
        let http = match HttpServer::start(listener, handler, Limits::default()) {
            Ok(h) => h,
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                let _ = refresh.join();
                return Err(e);
            }
        };
        Ok(Metrics {
            http,
            stop,
            refresh,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    pub fn stop(self) {
        self.http.stop();
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.refresh.join();
    }
}
