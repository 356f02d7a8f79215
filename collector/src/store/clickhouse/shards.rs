//! The servers a `--clickhouse` value names, and the runtime the backend blocks on: the rest
//! of the collector is thread-based, so the async client stays inside this module.

use super::schema;
use clickhouse::Client;
use std::future::Future;
use std::time::Duration;

/// How long one request may take before it counts as failed (an insert of a large commit
/// included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The shards, in the order given: row placement (`fingerprint % len`) depends on it, so
/// every writer must be given the same list. The first also holds the small tables and
/// answers the reads (through the Distributed table).
pub struct Shards {
    runtime: tokio::runtime::Runtime,
    urls: Vec<String>,
    clients: Vec<Client>,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards").field("urls", &self.urls).finish()
    }
}

/// A failed request, naming the server.
pub fn failed(url: &str, e: impl std::fmt::Display) -> String {
    format!("ClickHouse at {url}: {e}")
}

impl Shards {
    /// `spec`: the HTTP URLs of the shards, comma-separated (`http://127.0.0.1:18101,...`).
    /// Checks that each answers.
    pub fn connect(spec: &str) -> Result<Shards, String> {
        let urls: Vec<String> = spec
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect();
        if urls.is_empty() {
            return Err("--clickhouse: no URL given".into());
        }
        for url in &urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "--clickhouse: {url:?} is not an HTTP URL (http://HOST:PORT, the server's \
                     HTTP port)"
                ));
            }
        }
        // A worker per shard (up to 4): each shard's insert is encoded and sent at once.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(urls.len().clamp(1, 4))
            .thread_name("clickhouse")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the ClickHouse client's runtime: {e}"))?;
        let clients = urls.iter().map(|u| Client::default().with_url(u)).collect();
        let shards = Shards {
            runtime,
            urls,
            clients,
        };
        for i in 0..shards.len() {
            shards.run(i, |c| async move { c.query("SELECT 1").execute().await })?;
        }
        Ok(shards)
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    pub fn url(&self, shard: usize) -> &str {
        &self.urls[shard]
    }

    /// The client of `shard`.
    pub fn client(&self, shard: usize) -> Client {
        self.clients[shard].clone()
    }

    /// Runs `f` against `shard`, blocking; the error names the server.
    pub fn run<T, F, Fut>(&self, shard: usize, f: F) -> Result<T, String>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = clickhouse::error::Result<T>>,
    {
        let client = self.client(shard);
        let url = self.url(shard);
        self.runtime
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, f(client)).await })
            .map_err(|_| failed(url, format!("no answer within {REQUEST_TIMEOUT:?}")))?
            .map_err(|e| failed(url, e))
    }

    /// Runs `f` on every shard at once (each its own task), blocking until all are done.
    pub fn on_each<T, F, Fut>(&self, f: F) -> Vec<Result<T, String>>
    where
        F: Fn(usize, Client) -> Fut,
        Fut: Future<Output = clickhouse::error::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let tasks: Vec<_> = (0..self.len())
            .map(|i| {
                let request = f(i, self.client(i));
                self.runtime
                    .spawn(async move { tokio::time::timeout(REQUEST_TIMEOUT, request).await })
            })
            .collect();
        tasks
            .into_iter()
            .enumerate()
            .map(|(i, task)| {
                let url = self.url(i);
                match self.runtime.block_on(task) {
                    Ok(Ok(Ok(v))) => Ok(v),
                    Ok(Ok(Err(e))) => Err(failed(url, e)),
                    Ok(Err(_)) => Err(failed(url, format!("no answer within {REQUEST_TIMEOUT:?}"))),
                    Err(e) => Err(failed(url, e)),
                }
            })
            .collect()
    }

    /// Creates what is missing: the database, observation and journey tables on every shard, the
    /// small tables on the first. Checks that the cluster the Distributed table reads over
    /// has as many shards as were given.
    pub fn create_schema(&self) -> Result<(), String> {
        for i in 0..self.len() {
            let create_db = format!("CREATE DATABASE IF NOT EXISTS {}", schema::DATABASE);
            self.run(i, |c| async move { c.query(&create_db).execute().await })?;
            let tables: &[&str] = if i == 0 {
                &[schema::SHARD_TABLES, schema::SMALL_TABLES].concat()
            } else {
                schema::SHARD_TABLES
            };
            for sql in tables {
                self.run(i, |c| async move { c.query(sql).execute().await })?;
            }
        }
        let shards: u64 = self.run(0, |c| async move {
            c.query("SELECT count() FROM system.clusters WHERE cluster = ?")
                .bind(schema::CLUSTER)
                .fetch_one()
                .await
        })?;
        if shards != self.len() as u64 {
            return Err(format!(
                "ClickHouse at {}: its cluster `{}` has {shards} shards, but {} URLs were \
                 given (every shard's URL, in the cluster's order)",
                self.url(0),
                schema::CLUSTER,
                self.len()
            ));
        }
        Ok(())
    }
}

/// Inserts `rows` into `table` (RowBinary) and waits for the server to take them; nothing
/// when there are none.
pub(super) async fn insert_rows<T>(
    c: &Client,
    table: &str,
    rows: Vec<T>,
) -> clickhouse::error::Result<()>
where
    T: clickhouse::Row + serde::Serialize,
{
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = c.insert::<T>(table)?;
    for r in &rows {
        insert.write(r).await?;
    }
    insert.end().await
}
