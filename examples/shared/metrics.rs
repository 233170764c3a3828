//! `/metrics` for the operator's scraper: feedkey's counters (grants, denials by reason,
//! record-cache hits and misses, the change feed's state) in Prometheus's text format,
//! on a listener of its own (`--metrics-listen`), so it is never on the public address.

use std::net::SocketAddr;

/// Installs the Prometheus recorder and serves `/metrics` at `addr`; returns the address
/// bound (for `--metrics-listen 127.0.0.1:0`).
#[cfg(feature = "metrics")]
pub async fn serve(addr: SocketAddr) -> Result<SocketAddr, Box<dyn std::error::Error>> {
    use axum::Router;
    use axum::routing::get;

    let handle = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move { handle.render() }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("metrics listener: {e}");
        }
    });
    Ok(bound)
}

/// Without the `metrics` feature there is nothing to serve: asking for it is an error.
#[cfg(not(feature = "metrics"))]
pub async fn serve(_addr: SocketAddr) -> Result<SocketAddr, Box<dyn std::error::Error>> {
    Err("--metrics-listen: this server was built without the `metrics` feature".into())
}

/// Serves the metrics if `--metrics-listen` asked for them, and says where.
pub async fn start(addr: Option<SocketAddr>) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(addr) = addr {
        let bound = serve(addr).await?;
        println!("metrics on http://{bound}/metrics");
    }
    Ok(())
}
