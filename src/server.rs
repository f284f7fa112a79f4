//! `lepton serve`: the engine behind the web channel and, when configured, the
//! Telegram and Discord channels, with the bot folder watched so that edits
//! are picked up without a restart.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::{Listener, ListenerExt};
use axum::Router;
use http_body::Body as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tower_service::Service as _;
use bot_core::{Engine, EngineParts};
use lepton_discord::DiscordConfig;
use lepton_telegram::TelegramConfig;
use lepton_web::WebState;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::{self, BotPaths};
use crate::channels::Channels;
use crate::learn::FolderExampleWriter;
use crate::metrics::{MeasuredStore, Metrics, MetricsAccess};
use crate::reload::Reloader;
use crate::config::{EncoderSection, RedisSection, StoreSection, WebSection};
use crate::store_config;

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub paths: BotPaths,
    pub host: String,
    pub port: u16,
    /// The session store. The bot's settings decide what this leaves unset.
    pub store: StoreSection,
    /// The Redis store's settings. The bot's `settings.redis` fills what this leaves unset.
    pub redis: RedisSection,
    /// The web channel's limits.
    pub web: WebSection,
    /// The configuration's `[encoder]` keys, applied over the bot's `settings.encoder`.
    pub encoder: EncoderSection,
    pub agent_token: Option<String>,
    /// The console's accounts file (`lepton agent add` writes it).
    pub accounts: PathBuf,
    /// For `lepton demo`: create the accounts file with an admin `demo` and a
    /// random password when it is missing, and print them.
    pub demo_account: bool,
    /// Serve the demo orders endpoint from `orders.json` in the bot folder.
    pub demo_orders: bool,
    /// Reload the bot when its files change.
    pub watch: bool,
    /// The Telegram channel's settings; `None` serves no Telegram bot.
    pub telegram: Option<TelegramConfig>,
    /// The Discord channel's settings; `None` serves no Discord bot.
    pub discord: Option<DiscordConfig>,
    /// Rate limits, the cap on active conversations and the HTTP actions' timeouts.
    pub limits: crate::limits::Limits,
    /// The metrics route and the clients allowed to read it. `None` serves no metrics.
    pub metrics: Option<MetricsAccess>,
    /// The maximum time that turns in flight may take to finish once `shutdown` completes.
    pub shutdown_timeout: Duration,
    /// The maximum time a client may take to send a request's headers, and then its body.
    pub header_read_timeout: Duration,
    /// The interval between the checks for customers who have waited too long
    /// for an agent. The no-agent offer comes at most this much later than its setting.
    pub handoff_timer_period: Duration,
}

/// Starts the server and runs it until `shutdown` completes.
pub async fn run(options: ServeOptions, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let started = Instant::now();
    let address = format!("{}:{}", options.host, options.port);
    let listener = TcpListener::bind(&address).await.with_context(|| format!("cannot listen on {address}; is another server using the port? pick another with --port or `server.port`"))?;
    let local = listener.local_addr()?;
    let server_url = format!("http://{local}");

    let prepare = app::PrepareOptions { server_url: Some(server_url.clone()), encoder: options.encoder.clone(), encoders: app::EncoderSlot::default() };
    let (paths, prepare_now) = (options.paths.clone(), prepare.clone());
    let prepared = tokio::task::spawn_blocking(move || app::prepare_with(&paths, &prepare_now)).await??;
    let store_config = store_config::resolve(&options.store, &options.redis, &prepared.bot.settings, &options.paths.data_dir);
    let store = store_config::open(&store_config).await?;
    let metrics = Metrics::new(Duration::from_secs(prepared.bot.settings.session.ttl_seconds.max(1)));
    let store = Arc::new(MeasuredStore::new(store, metrics.clone()));
    let http = Arc::new(crate::http_client::ReqwestClient::new(options.limits.http).context("cannot create the HTTP client")?);
    let parts = EngineParts { classifier: prepared.classifier, knowledge: prepared.knowledge, http, store };
    let engine = Engine::new(prepared.bot.clone(), parts);
    engine.set_active_limit(options.limits.active);
    options.limits.log();
    engine.add_observer(metrics.clone());
    metrics.expect_channel(lepton_web::CHANNEL);
    if options.telegram.is_some() {
        metrics.expect_channel(lepton_telegram::CHANNEL);
    }
    if options.discord.is_some() {
        metrics.expect_channel(lepton_discord::CHANNEL);
    }

    let encoders = prepare.encoders.clone();
    let fingerprint = app::fingerprint(&options.paths.bot_dir)?;
    let reloader = Arc::new(Reloader::new(engine.clone(), options.paths.clone(), prepare, fingerprint));
    let web_config = web_config(&options)?;
    let demo_password = console_accounts(&options)?;
    let state = lepton_web::WebState::new(engine.clone(), web_config).with_reloader(reloader.clone()).with_accounts(options.accounts.clone());
    let state = state.with_example_writer(Arc::new(FolderExampleWriter::new(options.paths.bot_dir.clone(), reloader.clone())));
    let mut router = lepton_web::router(state.clone());
    if options.demo_orders {
        router = router.merge(crate::demo_orders::router(crate::demo_orders::load(&options.paths.bot_dir)?));
    }
    if let Some(access) = &options.metrics {
        router = router.merge(crate::metrics::router(metrics, engine.clone(), encoders, access));
    }
    if let Some(callback) = start_helpdesk(&engine, &prepared.bot.settings.handoff.adapter)? {
        router = router.merge(callback);
    }
    // `true` once the server should stop: on `shutdown`, or when a channel fails.
    let (stop, _) = watch::channel(false);
    let (router, channels) = Channels::start(&engine, options.telegram.clone(), options.discord.clone(), router, &stop).await?;
    let handoff_timer = tokio::spawn(engine.clone().run_handoff_timer(options.handoff_timer_period, wait_for_stop(stop.subscribe())));
    if options.watch {
        tokio::spawn(async move { reloader.watch().await });
    }

    let ready_ms = started.elapsed().as_millis() as u64;
    tracing::info!(address = %local, ready_ms, bot = %prepared.bot.settings.name, "server ready");
    println!("Lepton is ready at {server_url}/ (bot: {})", prepared.bot.settings.name);
    if let Some(password) = demo_password {
        // On standard output only, once: the log may be kept where others read it.
        println!("Support console: {server_url}/console (name: demo, password: {password})");
    }

    let deadline = serve_http(listener, router, state, shutdown, &stop, options.shutdown_timeout, options.header_read_timeout).await;

    let channels_stopped = match tokio::time::timeout_at(deadline, channels.stop()).await {
        Ok(stopped) => stopped,
        Err(_) => {
            tracing::warn!(timeout_s = options.shutdown_timeout.as_secs(), "the channels' turns in flight did not finish before the shutdown deadline; exiting without them");
            Ok(())
        }
    };
    if let Err(error) = handoff_timer.await {
        tracing::error!(%error, "the handoff timer failed");
    }
    let flushed = engine.flush().await.context("cannot flush the session store");
    channels_stopped?;
    flushed?;
    tracing::info!("server stopped");
    Ok(())
}

/// Builds the web channel's settings from the `[web]` section and the agent token.
fn web_config(options: &ServeOptions) -> anyhow::Result<lepton_web::WebConfig> {
    let web = &options.web;
    let customer_origins = match web.customer_origins.is_empty() {
        true => lepton_web::AllowedOrigins::Any,
        false => lepton_web::AllowedOrigins::parse(&web.customer_origins.join(",")).context("invalid `web.customer_origins`")?,
    };
    Ok(lepton_web::WebConfig {
        agent_token: options.agent_token.clone(),
        max_message_bytes: web.max_message_bytes,
        max_sockets: web.max_sockets,
        customer_origins,
        ping_interval: Duration::from_secs(web.ping_interval_seconds.max(1)),
        widget_max_age_seconds: web.widget_max_age_seconds,
        rate_limits: options.limits.rate_limits.clone(),
        trusted_proxies: options.limits.trusted_proxies.clone(),
    })
}

/// Prepares the console's accounts. For the demo, creates the file with an
/// admin `demo` when it is missing and returns the password. Otherwise, logs
/// how to add an agent when there is none.
fn console_accounts(options: &ServeOptions) -> anyhow::Result<Option<String>> {
    if options.demo_account {
        return crate::agent_cmd::ensure_demo_account(&options.accounts);
    }
    let accounts = lepton_web::console::Accounts::load(&options.accounts)?;
    if accounts.is_none_or(|accounts| accounts.is_empty()) {
        tracing::info!(
            file = %options.accounts.display(),
            "the support console at /console has no agent accounts yet; add one with `lepton agent add NAME --agents {}`",
            options.accounts.display()
        );
    }
    Ok(None)
}

/// Starts forwarding conversations with people to the helpdesk that the bot's
/// settings name, and returns its callback routes, or `None` for the console alone.
/// The choice is read once: changing it takes a restart, not a reload.
fn start_helpdesk(engine: &Engine, settings: &bot_core::bot::HandoffAdapterSettings) -> anyhow::Result<Option<Router>> {
    let Some(helpdesk) = lepton_handoff::from_settings(settings, &|name| std::env::var(name).ok())? else { return Ok(None) };
    tracing::info!(adapter = settings.name(), callback = helpdesk.callback_path(), "forwarding handed-off conversations to the helpdesk");
    let config = bot_core::handoff_adapter::DispatcherConfig::default();
    drop(bot_core::handoff_adapter::spawn_dispatcher(engine.clone(), helpdesk.adapter.clone(), config));
    Ok(Some(helpdesk.router(engine.clone())))
}

/// Serves HTTP until `shutdown` completes or `stop` turns `true`, then sets
/// `stop` so that every other part stops too. Once stopping, it accepts no new
/// connection and waits up to `timeout` for the requests in flight. It returns
/// that deadline, which the channels' shutdown shares.
///
/// A client gets `read_timeout` to send a request's headers, and then again
/// to send its body. Past either, its connection is closed or the request
/// fails, so a slow client neither keeps a connection open nor delays the shutdown.
/// A WebSocket, once upgraded, has no such limit, and its pings monitor it instead.
async fn serve_http(
    listener: TcpListener,
    router: Router,
    state: WebState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stop: &watch::Sender<bool>,
    timeout: Duration,
    read_timeout: Duration,
) -> tokio::time::Instant {
    // Replies are small and written as they are ready; without TCP_NODELAY,
    // Nagle's algorithm and delayed ACKs hold some of them for tens of ms.
    let mut listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    let signal = tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.send_replace(true);
        }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(read_timeout);
    // Each connection's task owns a receiver, so `closed` resolves once all have ended.
    let (open, open_rx) = watch::channel(());

    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = wait_for_stop(stop.subscribe()) => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let mut request = request.map(|body| match body.is_end_stream() {
                true => Body::new(body),
                false => Body::new(DeadlineBody::new(body, read_timeout)),
            });
            request.extensions_mut().insert(ConnectInfo(remote));
            router.clone().call(request)
        });
        let builder = builder.clone();
        let stopped = stop.subscribe();
        let open_rx = open_rx.clone();
        tokio::spawn(async move {
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let stopping = wait_for_stop(stopped);
            tokio::pin!(stopping);
            let mut closing = false;
            loop {
                tokio::select! {
                    served = connection.as_mut() => {
                        if let Err(error) = served {
                            tracing::debug!(%error, %remote, "the connection ended with an error");
                        }
                        break;
                    }
                    () = &mut stopping, if !closing => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(open_rx);
        });
    }

    drop(listener);
    drop(open_rx);
    state.close_sockets();
    tracing::info!(timeout_s = timeout.as_secs(), "stopped accepting connections; finishing the requests in flight");
    let deadline = tokio::time::Instant::now() + timeout;
    if tokio::time::timeout_at(deadline, open.closed()).await.is_err() {
        tracing::warn!(timeout_s = timeout.as_secs(), "requests were still in flight at the shutdown deadline; closing their connections");
    }
    stop.send_replace(true);
    signal.abort();
    deadline
}

/// A request body that fails once its deadline passes before it has all arrived.
struct DeadlineBody {
    inner: hyper::body::Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
}

impl DeadlineBody {
    fn new(inner: hyper::body::Incoming, timeout: Duration) -> Self {
        Self { inner, deadline: Box::pin(tokio::time::sleep(timeout)), timeout }
    }
}

/// The error of a [`DeadlineBody`] whose deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs())]
struct BodyTimedOut(Duration);

impl http_body::Body for DeadlineBody {
    type Data = hyper::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut(self.timeout).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Waits until the server should stop, or until nothing can send the signal any more.
pub(crate) async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

