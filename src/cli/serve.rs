//! `gitgate serve --config FILE`: run the gateway until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Outcome, UsageError};
use crate::admin::metrics::Metrics;
use crate::config::Config;
use crate::session::Gateway;

/// Loads the configuration and serves it.
pub fn run(path: &Path) -> anyhow::Result<Outcome> {
    let config = crate::config::load(path).map_err(|e| UsageError(e.to_string()))?;
    serve_blocking(config, |_| {})
}

/// Serves `config` on a new runtime; `on_ready` runs once the listeners are bound.
pub fn serve_blocking(
    config: Config,
    on_ready: impl FnOnce(SocketAddr) + Send,
) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(Arc::new(config), on_ready))?;
    Ok(Outcome::Success)
}

async fn serve(config: Arc<Config>, on_ready: impl FnOnce(SocketAddr)) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let gateway = Arc::new(
        Gateway::new(config.clone(), metrics.clone()).map_err(|e| UsageError(e.to_string()))?,
    );
    let shutdown = CancellationToken::new();
    let grace = config.server.shutdown_grace;

    let tls = match &config.server.tls {
        Some(t) => Some(
            crate::http::listener::tls_acceptor(&t.cert, &t.key)
                .map_err(|e| UsageError(e.to_string()))?,
        ),
        None => None,
    };
    let http = bind(config.server.http_listen, "http_listen").await?;
    let http_addr = http.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(listen = %http_addr, tls = tls.is_some(), "git smart-HTTP listener up");
    let mut tasks = tokio::task::JoinSet::new();
    {
        let gateway = gateway.clone();
        let handler = move |req, peer| crate::http::handle(gateway.clone(), req, peer);
        tasks.spawn(crate::http::listener::serve(
            http,
            tls,
            shutdown.clone(),
            grace,
            handler,
        ));
    }
    if let Some(addr) = config.server.admin_listen {
        let admin = bind(addr, "admin_listen").await?;
        tracing::info!(listen = %admin.local_addr()?, "admin listener up");
        let gateway = gateway.clone();
        let handler = move |req, peer| crate::admin::server::handle(gateway.clone(), req, peer);
        tasks.spawn(crate::http::listener::serve(
            admin,
            None,
            shutdown.clone(),
            grace,
            handler,
        ));
    }
    // Decisions made anywhere are recorded, announced and applied by the serving gateway.
    tasks.spawn(gateway.clone().run_approvals(shutdown.clone()));
    // Stored packs older than `[audit] keep_packs_days` go while serving, too.
    tasks.spawn(gateway.clone().run_retention(shutdown.clone()));
    eprintln!("gitgate: serving git over {scheme}://{http_addr}/<upstream>/<repo>");
    if let Some(url) = &config.server.public_url {
        let base = url.as_str().trim_end_matches('/');
        eprintln!("gitgate: clients reach it as {base}/<upstream>/<repo>");
    }
    if let Some(addr) = config.server.ssh_listen {
        let front = crate::ssh::SshFront::new(gateway.clone(), shutdown.clone())
            .map_err(|e| UsageError(e.to_string()))?;
        let ssh = bind(addr, "ssh_listen").await?;
        let ssh_addr = ssh.local_addr()?;
        tracing::info!(listen = %ssh_addr, host_key = %front.fingerprint(), "git SSH listener up");
        eprintln!(
            "gitgate: serving git over ssh://git@{ssh_addr}/<upstream>/<repo> (host key {})",
            front.fingerprint()
        );
        tasks.spawn(front.serve(ssh, grace));
    }
    on_ready(http_addr);

    wait_for_signal().await;
    tracing::info!(grace_seconds = grace.as_secs(), "shutting down");
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn bind(addr: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| UsageError(format!("[server] {key} = \"{addr}\": cannot listen: {e}")).into())
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    () = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}
