//! The feed of events other server processes committed: a task with its own
//! pub/sub connection, subscribed to `{prefix}:events`.
//!
//! Pub/sub delivers only while subscribed, so the feed sends
//! [`RemoteEvents::MaybeMissed`] each time a subscription starts (the first
//! one too, because events committed before it are not delivered) and after it
//! dropped a message because the receiver was full. The task reconnects with a
//! backoff from 100 ms to 5 s and ends when the receiver is dropped.
//!
//! In a Redis Cluster a message published on any node reaches the subscribers
//! on every node, so the feed subscribes on one seed node: the first that
//! replies. After losing a subscription it tries the seeds in turn, starting
//! with the one after the node it lost.

use std::time::{Duration, Instant};

use bot_core::RemoteEvents;
use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use redis::Client;
use tokio::sync::mpsc;

use crate::config::RedisConfig;
use crate::connection::scrub;
use crate::endpoint::{Endpoint, Node};
use crate::record::Published;

/// The capacity of the channel to the engine.
const CHANNEL_CAPACITY: usize = 1024;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the feed pings the server, to notice a connection that died
/// without closing.
const PING_INTERVAL: Duration = Duration::from_secs(10);

pub(crate) struct Feed {
    /// The nodes to subscribe on: the server, or the cluster's seed nodes.
    nodes: Vec<Node>,
    /// The node the next subscription tries first.
    next_node: usize,
    channel: String,
    instance_id: String,
    password: Option<String>,
    connect_timeout: Duration,
    command_timeout: Duration,
}

/// Why [`Feed::pump`] returned.
enum Stopped {
    ReceiverDropped,
    Disconnected(String),
}

impl Feed {
    pub fn new(endpoint: &Endpoint, config: &RedisConfig, channel: String) -> Self {
        Self {
            nodes: endpoint.nodes.clone(),
            next_node: 0,
            channel,
            instance_id: config.instance_id.clone(),
            password: endpoint.password.clone(),
            connect_timeout: config.connect_timeout,
            command_timeout: config.command_timeout,
        }
    }

    pub fn spawn(self, runtime: &tokio::runtime::Handle) -> mpsc::Receiver<RemoteEvents> {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        runtime.spawn(self.run(sender));
        receiver
    }

    async fn run(mut self, sender: mpsc::Sender<RemoteEvents>) {
        let mut backoff = MIN_BACKOFF;
        // When the feed lost its subscription, and whether that was logged.
        let mut down_since: Option<Instant> = None;
        loop {
            let subscribed = tokio::select! {
                () = sender.closed() => return,
                subscribed = self.subscribe() => subscribed,
            };
            let (node, sink, stream) = match subscribed {
                Ok(subscription) => subscription,
                Err(reason) => {
                    if down_since.is_none() {
                        tracing::warn!(channel = %self.channel, error = %reason, "cannot subscribe to remote events; retrying");
                        down_since = Some(Instant::now());
                    } else {
                        tracing::debug!(error = %reason, "subscribing to remote events failed again");
                    }
                    tokio::select! {
                        () = sender.closed() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };

            if let Some(since) = down_since.take() {
                let url = &self.nodes[node].url;
                tracing::info!(url = %url, channel = %self.channel, down_ms = since.elapsed().as_millis() as u64, "subscribed to remote events again");
            }
            backoff = MIN_BACKOFF;
            if sender.send(RemoteEvents::MaybeMissed).await.is_err() {
                return;
            }
            match self.pump(sink, stream, &sender).await {
                Stopped::ReceiverDropped => return,
                Stopped::Disconnected(reason) => {
                    let url = &self.nodes[node].url;
                    tracing::warn!(url = %url, channel = %self.channel, error = %reason, "lost the remote events subscription; reconnecting");
                    down_since = Some(Instant::now());
                    self.next_node = (node + 1) % self.nodes.len();
                }
            }
        }
    }

    /// Subscribes on the first node that replies, trying each once from
    /// `next_node` on, and returns that node's index. The error names every
    /// node's failure.
    async fn subscribe(&self) -> Result<(usize, PubSubSink, PubSubStream), String> {
        let mut failures = Vec::new();
        for offset in 0..self.nodes.len() {
            let node = (self.next_node + offset) % self.nodes.len();
            match self.subscribe_on(&self.nodes[node].client).await {
                Ok((sink, stream)) => return Ok((node, sink, stream)),
                Err(reason) => failures.push(format!("{}: {reason}", self.nodes[node].url)),
            }
        }
        Err(failures.join("; "))
    }

    async fn subscribe_on(&self, client: &Client) -> Result<(PubSubSink, PubSubStream), String> {
        let connect = async {
            let (mut sink, stream) = client.get_async_pubsub().await?.split();
            sink.subscribe(&self.channel).await?;
            Ok::<_, redis::RedisError>((sink, stream))
        };
        let limit = self.connect_timeout + self.command_timeout;
        match tokio::time::timeout(limit, connect).await {
            Ok(result) => result.map_err(|e| scrub(&e.to_string(), self.password.as_deref())),
            Err(_) => Err(format!("timed out after {} ms", limit.as_millis())),
        }
    }

    /// Passes messages on until the connection or the receiver goes away.
    async fn pump(&self, mut sink: PubSubSink, mut stream: PubSubStream, sender: &mpsc::Sender<RemoteEvents>) -> Stopped {
        let mut missed = false;
        let mut reported_undecodable = false;
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
        loop {
            tokio::select! {
                () = sender.closed() => return Stopped::ReceiverDropped,
                permit = sender.reserve(), if missed => match permit {
                    Ok(permit) => {
                        permit.send(RemoteEvents::MaybeMissed);
                        missed = false;
                    }
                    Err(_) => return Stopped::ReceiverDropped,
                },
                message = stream.next() => {
                    let Some(message) = message else {
                        return Stopped::Disconnected("the server closed the connection".to_owned());
                    };
                    let published = match serde_json::from_slice::<Published>(message.get_payload_bytes()) {
                        Ok(published) => published,
                        Err(error) => {
                            if !reported_undecodable {
                                tracing::warn!(channel = %self.channel, %error, "ignoring undecodable remote events; is another Lepton version sharing this Redis?");
                                reported_undecodable = true;
                            }
                            missed = true;
                            continue;
                        }
                    };
                    if published.instance == self.instance_id || published.events.is_empty() {
                        continue;
                    }
                    match sender.try_send(RemoteEvents::Committed(published.events)) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            tracing::debug!("remote events receiver is full; dropping a message");
                            missed = true;
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return Stopped::ReceiverDropped,
                    }
                }
                _ = ping.tick() => {
                    match tokio::time::timeout(self.command_timeout, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => return Stopped::Disconnected(scrub(&format!("ping failed: {error}"), self.password.as_deref())),
                        Err(_) => return Stopped::Disconnected(format!("ping timed out after {} ms", self.command_timeout.as_millis())),
                    }
                }
            }
        }
    }
}
