//! The `lepton` command: run the demo, serve a bot, validate, train, index, evaluate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use lepton::agent_cmd::AgentCommand;
use lepton::app::{self, BotPaths};
use lepton::server::{self, ServeOptions};
use lepton::store_config::StoreOption;
use lepton_discord::DiscordConfig;
use lepton_telegram::{Mode, TelegramConfig, WebhookConfig};
use reqwest::Url;

/// The environment variable that contains the secret Telegram sends with each webhook call.
const WEBHOOK_SECRET_ENV: &str = "LEPTON_TELEGRAM_WEBHOOK_SECRET";

/// The environment variable that points the channel at another Bot API server.
const API_URL_ENV: &str = "LEPTON_TELEGRAM_API_URL";

/// The environment variable that sends the Discord channel's REST calls to a proxy instead of Discord.
const DISCORD_API_PROXY_ENV: &str = "LEPTON_DISCORD_API_PROXY";

#[derive(Parser)]
#[command(name = "lepton", version, about = "Customer-service bots in English and Chinese")]
struct Cli {
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the demo shop bot in the browser (trains and indexes when needed).
    Demo {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// The demo bot folder [default: ./demo, else the one in the source tree].
        #[arg(long)]
        bot: Option<PathBuf>,
        /// Folder for the model and index [default: BOT/.lepton].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Session store: `embedded`, `memory`, `redis`, a redis:// URL, or an embedded store file path [default: from the environment and the bot settings, else DATA_DIR/sessions.redb].
        #[arg(long)]
        store: Option<String>,
        /// The console's accounts file; created with an admin `demo` when missing [default: DATA_DIR/agents.json].
        #[arg(long, env = "LEPTON_AGENTS_FILE")]
        agents: Option<PathBuf>,
        #[command(flatten)]
        telegram: TelegramArgs,
        #[command(flatten)]
        discord: DiscordArgs,
    },
    /// Serve a bot folder over the web channel, on Telegram with --telegram and on Discord with --discord.
    Serve(ServeArgs),
    /// Check a bot folder and report every problem with file, line and column.
    Validate {
        dir: PathBuf,
        /// Skip the model check, which cross-validates the intent model to find
        /// examples of different intents that it confuses.
        #[arg(long)]
        no_model: bool,
        /// Folder for the model check's cache [default: DIR/.lepton].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Chat with a bot in the terminal; under each reply, show the intent ranking,
    /// the slots and the step taken.
    Chat {
        dir: PathBuf,
        /// Folder for the model and index [default: DIR/.lepton].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Add, list and remove the agents who sign in to the support console at /console.
    Agent(AgentArgs),
    /// Run the conversation tests in DIR/tests against the bot and report each failure.
    Test {
        dir: PathBuf,
        /// Also write the results as JUnit XML to FILE, for CI systems.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Folder for the model and index [default: DIR/.lepton].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Serve the demo orders endpoint from DIR/orders.json, failing when it is missing [default: served when the file exists].
        #[arg(long)]
        demo_orders: bool,
    },
    /// Train the intent model of a bot folder (only when its examples changed, unless --force).
    Train {
        dir: PathBuf,
        /// Folder for the model and index [default: DIR/.lepton].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        force: bool,
    },
    /// Build the knowledge index of a bot folder (only when its sources changed).
    Index {
        dir: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Train the intent model on a data set and report accuracy, macro-F1, per-intent
    /// scores and out-of-scope recall.
    Eval(EvalArgs),
}

#[derive(clap::Args)]
struct EvalArgs {
    /// Test data: a CLINC150 data_full.json (trains on its train split), or JSON Lines
    /// (`{"text", "intent"}`, intent null for out-of-scope) or CSV (`text,category`).
    test: PathBuf,
    /// Training data (.jsonl or .csv) for a test file without a training split.
    #[arg(long, conflicts_with = "bot")]
    train: Option<PathBuf>,
    /// Train on a bot folder's examples, with its classifier settings.
    #[arg(long)]
    bot: Option<PathBuf>,
    /// CLINC150 split to score: test or val.
    #[arg(long, default_value = "test")]
    split: String,
    /// Confidence threshold [default: 0.5, or the bot's].
    #[arg(long)]
    threshold: Option<f32>,
    /// Minimum lead of the top intent over the second [default: 0.1, or the bot's].
    #[arg(long)]
    margin: Option<f32>,
    #[arg(long)]
    seed: Option<u64>,
    /// Write the report as JSON to FILE, or to standard output with no FILE, instead of a table.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    json: Option<PathBuf>,
    /// Cross-validate with K folds on the examples of the bot folder given as TEST, and
    /// write report.json, confusion.svg, confidence.svg and index.html to --out.
    #[arg(long, value_name = "K", conflicts_with_all = ["train", "bot"])]
    cross_validation: Option<usize>,
    /// Output folder of --cross-validation [default: TEST/.lepton/eval].
    #[arg(long, value_name = "DIR", requires = "cross_validation")]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct AgentArgs {
    #[command(subcommand)]
    command: AgentSubcommand,
    /// The bot folder whose data folder holds the accounts file.
    #[arg(long, global = true, default_value = ".")]
    bot: PathBuf,
    /// The bot's data folder [default: BOT/.lepton].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// The accounts file [default: DATA_DIR/agents.json].
    #[arg(long, global = true, env = "LEPTON_AGENTS_FILE")]
    agents: Option<PathBuf>,
}

#[derive(Subcommand)]
enum AgentSubcommand {
    /// Add an agent; asks for the password twice on a terminal, else reads it
    /// from the first line of standard input.
    Add {
        name: String,
        /// Let the agent reload the bot and transfer other agents' conversations.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input even on a terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the agents and their roles.
    List,
    /// Remove an agent; their console sessions end.
    Remove { name: String },
    /// Change an agent's password; their console sessions end.
    Passwd {
        name: String,
        /// Read the password from standard input even on a terminal.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The bot folder.
    dir: PathBuf,
    #[arg(long, default_value_t = 8080)]
    port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Folder for the model and index [default: DIR/.lepton].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Session store: `embedded`, `memory`, `redis`, a redis:// or rediss:// URL, or an embedded store file path [default: LEPTON_SESSION_STORE, else settings.session_store, else DATA_DIR/sessions.redb].
    #[arg(long)]
    store: Option<String>,
    /// Make session writes durable this many milliseconds after they return
    /// instead of before (faster on disks with slow fsync; a crash may lose
    /// that much). 0 keeps every write durable before it returns.
    #[arg(long, default_value_t = 0)]
    store_flush_ms: u64,
    /// The console's accounts file, written by `lepton agent add` [default: DATA_DIR/agents.json].
    #[arg(long, env = "LEPTON_AGENTS_FILE")]
    agents: Option<PathBuf>,
    /// Bearer token the agent API requires; without it, only loopback clients may use the agent API.
    #[arg(long, env = "LEPTON_AGENT_TOKEN", hide_env_values = true)]
    agent_token: Option<String>,
    /// Also serve the demo orders endpoint from DIR/orders.json.
    #[arg(long)]
    demo_orders: bool,
    /// Do not reload the bot when its files change.
    #[arg(long)]
    no_watch: bool,
    #[command(flatten)]
    telegram: TelegramArgs,
    #[command(flatten)]
    discord: DiscordArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
}

#[derive(clap::Args, Default)]
struct MetricsArgs {
    /// Do not serve Prometheus metrics.
    #[arg(long)]
    no_metrics: bool,
    /// The route of the Prometheus metrics.
    #[arg(long, value_name = "PATH", default_value = "/metrics", env = "LEPTON_METRICS_PATH")]
    metrics_path: String,
    /// Bearer token scrapers must send for the metrics; without it, only loopback clients may read them.
    #[arg(long, env = "LEPTON_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
}

impl MetricsArgs {
    fn access(self) -> anyhow::Result<Option<lepton::metrics::MetricsAccess>> {
        if self.no_metrics {
            return Ok(None);
        }
        if !self.metrics_path.starts_with('/') || self.metrics_path.starts_with("/api/") || self.metrics_path.starts_with("/console") {
            bail!("--metrics-path {:?} must start with / and lie outside /api/ and /console, such as /metrics", self.metrics_path);
        }
        let token = self.metrics_token.filter(|token| !token.trim().is_empty());
        Ok(Some(lepton::metrics::MetricsAccess { path: self.metrics_path, token }))
    }
}

#[derive(clap::Args)]
struct TelegramArgs {
    /// Also serve the bot on Telegram, receiving updates by long polling (needs no
    /// public address). Reads the bot token from LEPTON_TELEGRAM_TOKEN.
    ///
    /// LEPTON_TELEGRAM_API_URL sets another Bot API server, for tests and
    /// self-hosted Bot API servers [default: Telegram's].
    #[arg(long)]
    telegram: bool,
    /// Also serve the bot on Telegram in webhook mode: Telegram posts updates to this
    /// public HTTPS URL, which a reverse proxy forwards to this server. The server
    /// receives them on the URL's path. Reads the bot token from LEPTON_TELEGRAM_TOKEN and
    /// the webhook secret from LEPTON_TELEGRAM_WEBHOOK_SECRET.
    #[arg(long, value_name = "URL", conflicts_with = "telegram")]
    telegram_webhook: Option<Url>,
}

#[derive(clap::Args)]
struct DiscordArgs {
    /// Also serve the bot on Discord: in direct messages, where it is mentioned,
    /// and in support channels. Connects to Discord's gateway, so it needs no
    /// public address. Reads the bot token from LEPTON_DISCORD_TOKEN.
    ///
    /// LEPTON_DISCORD_SUPPORT_CHANNELS sets the ids of the channels where the bot
    /// answers every message without a mention, separated by commas [default: none].
    /// LEPTON_DISCORD_THREAD_PER_CUSTOMER=true opens a thread for each customer in
    /// those channels [default: false]. LEPTON_DISCORD_SHARDS sets the gateway
    /// shards this process runs: `auto`, a count such as `4`, or `FIRST-LAST/TOTAL`
    /// such as `0-3/8` [default: one shard]. LEPTON_DISCORD_API_PROXY sends the REST
    /// calls to an HTTP proxy that applies Discord's rate limits, or to a fake
    /// Discord in tests [default: Discord's].
    #[arg(long)]
    discord: bool,
}

fn default_demo_dir() -> PathBuf {
    let local = PathBuf::from("demo");
    if local.join("bot.yml").is_file() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demo")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands that print a report keep the log to warnings, so that the
    // engine's INFO lines do not mix with the report; LEPTON_LOG overrides it.
    let default_level = match cli.command {
        Command::Test { .. } | Command::Chat { .. } | Command::Validate { .. } | Command::Eval(..) => "warn",
        _ => "info",
    };
    install_tracing(cli.log_format, default_level);
    match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn install_tracing(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEPTON_LOG").unwrap_or_else(|_| default_level.into());
    // Colour codes only for a terminal, not for a log file or a CI log.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Demo { port, host, bot, data_dir, store, agents, telegram, discord } => {
            let dir = bot.unwrap_or_else(default_demo_dir);
            let metrics = MetricsArgs { metrics_path: "/metrics".to_owned(), ..MetricsArgs::default() };
            let args = ServeArgs { dir, port, host, data_dir, store, agents, agent_token: None, demo_orders: true, no_watch: false, store_flush_ms: 0, telegram, discord, metrics };
            serve(args, true)
        }
        Command::Serve(args) => serve(args, false),
        Command::Agent(args) => {
            let paths = BotPaths::new(&args.bot, args.data_dir.as_deref());
            let file = lepton::agent_cmd::accounts_file(args.agents.as_deref(), &paths);
            let command = match args.command {
                AgentSubcommand::Add { name, admin, password_stdin } => AgentCommand::Add { name, admin, password_stdin },
                AgentSubcommand::List => AgentCommand::List,
                AgentSubcommand::Remove { name } => AgentCommand::Remove { name },
                AgentSubcommand::Passwd { name, password_stdin } => AgentCommand::Passwd { name, password_stdin },
            };
            lepton::agent_cmd::run(&command, &file)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { dir, no_model, data_dir } => validate(&dir, &lepton::diagnostics::ValidateOptions { model: !no_model, data_dir }),
        Command::Chat { dir, data_dir } => {
            lepton::chat::run(&BotPaths::new(&dir, data_dir.as_deref()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(args) if args.cross_validation.is_some() => cross_validation(args),
        Command::Test { dir, junit, data_dir, demo_orders } => {
            let paths = BotPaths::new(&dir, data_dir.as_deref());
            lepton::conversation_test::run(&lepton::conversation_test::TestOptions { paths, junit, demo_orders })
        }
        Command::Train { dir, data_dir, force } => {
            let paths = BotPaths::new(&dir, data_dir.as_deref());
            if force {
                let model_dir = paths.model_dir();
                if model_dir.exists() {
                    std::fs::remove_dir_all(&model_dir).with_context(|| format!("cannot remove {}", model_dir.display()))?;
                }
            }
            let bot = app::load_bot(&dir)?.bot;
            let started = std::time::Instant::now();
            let (_, trained) = app::train(&paths, &bot)?;
            let verb = if trained { "trained" } else { "up to date:" };
            println!("{verb} {} in {} ms", paths.model_dir().display(), started.elapsed().as_millis());
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(args) => {
            let train = match (args.train, args.bot) {
                (Some(path), _) => Some(lepton::eval::TrainingData::File(path)),
                (None, Some(dir)) => Some(lepton::eval::TrainingData::Bot(dir)),
                (None, None) => None,
            };
            let options = lepton::eval::EvalOptions {
                test: args.test,
                train,
                split: args.split,
                threshold: args.threshold,
                margin: args.margin,
                seed: args.seed,
            };
            let report = lepton::eval::run(&options)?;
            match args.json {
                None => println!("{report}"),
                Some(path) if path.as_os_str() == "-" => println!("{}", serde_json::to_string_pretty(&report)?),
                Some(path) => {
                    let json = serde_json::to_string_pretty(&report)?;
                    std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
                    println!("{report}");
                    println!("wrote {}", path.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Index { dir, data_dir } => {
            let paths = BotPaths::new(&dir, data_dir.as_deref());
            let bot = app::load_bot(&dir)?.bot;
            let (_, rebuilt) = app::index(&paths, &bot)?;
            let verb = if rebuilt { "built" } else { "up to date:" };
            println!("{verb} {} ({} FAQ entries, {} articles)", paths.index_dir().display(), bot.faq.len(), bot.articles.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `lepton serve`, or `lepton demo` when `demo` is true.
fn serve(args: ServeArgs, demo: bool) -> anyhow::Result<ExitCode> {
    let telegram = telegram_config(&args.telegram)?;
    let discord = discord_config(&args.discord)?;
    let paths = BotPaths::new(&args.dir, args.data_dir.as_deref());
    let accounts = lepton::agent_cmd::accounts_file(args.agents.as_deref(), &paths);
    let store = args.store.as_deref().map(StoreOption::parse).transpose()?.unwrap_or_default();
    let options = ServeOptions {
        paths,
        host: args.host,
        port: args.port,
        store,
        store_flush_interval: (args.store_flush_ms > 0).then(|| std::time::Duration::from_millis(args.store_flush_ms)),
        agent_token: args.agent_token,
        accounts,
        demo_account: demo,
        demo_orders: args.demo_orders,
        watch: !args.no_watch,
        telegram,
        discord,
        metrics: args.metrics.access()?,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(server::run(options, shutdown_signal()))?;
    Ok(ExitCode::SUCCESS)
}

/// Builds the Telegram channel's settings from the options and the environment;
/// `None` when neither `--telegram` nor `--telegram-webhook` is given.
fn telegram_config(args: &TelegramArgs) -> anyhow::Result<Option<TelegramConfig>> {
    let mode = match (&args.telegram_webhook, args.telegram) {
        (Some(url), _) => Mode::Webhook(webhook_config(url, std::env::var(WEBHOOK_SECRET_ENV).ok())?),
        (None, true) => Mode::Polling,
        (None, false) => return Ok(None),
    };
    let mut config = TelegramConfig::from_env()?.with_mode(mode);

    let api_url = std::env::var(API_URL_ENV).unwrap_or_default();
    if !api_url.trim().is_empty() {
        let parsed = Url::parse(api_url.trim()).with_context(|| format!("{API_URL_ENV}={api_url:?} is not a URL; set it to a Bot API server such as http://127.0.0.1:8081/, or unset it"))?;
        config = config.with_api_url(parsed);
    }
    Ok(Some(config))
}

/// Splits the public webhook URL into the base Telegram posts to and the route
/// this server receives updates on, and checks the secret.
fn webhook_config(url: &Url, secret: Option<String>) -> anyhow::Result<WebhookConfig> {
    let path = url.path();
    if path == "/" || path.starts_with("/api/") {
        bail!("--telegram-webhook {url} needs a path of its own, outside / and /api/, such as https://bot.example.com/telegram/webhook");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("--telegram-webhook {url} must not contain a query or fragment; pass the URL Telegram should post to, such as https://bot.example.com/telegram/webhook");
    }
    let Some(secret) = secret.filter(|secret| !secret.is_empty()) else {
        bail!("the Telegram webhook secret is missing; set {WEBHOOK_SECRET_ENV} to 1 to 256 characters from A-Z, a-z, 0-9, _ and -");
    };

    let mut base = url.clone();
    base.set_path("/");
    Ok(WebhookConfig::new(base, path, secret)?)
}

/// Builds the Discord channel's settings from the environment; `None` without `--discord`.
fn discord_config(args: &DiscordArgs) -> anyhow::Result<Option<DiscordConfig>> {
    if !args.discord {
        return Ok(None);
    }
    let mut config = DiscordConfig::from_env()?;

    let proxy = std::env::var(DISCORD_API_PROXY_ENV).unwrap_or_default();
    if !proxy.trim().is_empty() {
        config = config.with_api_proxy(parse_api_proxy(proxy.trim())?);
    }
    Ok(Some(config))
}

fn parse_api_proxy(text: &str) -> anyhow::Result<Url> {
    let url = Url::parse(text).ok().filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
    url.with_context(|| format!("{DISCORD_API_PROXY_ENV}={text:?} is not an http:// or https:// URL; set it to the proxy's address such as http://127.0.0.1:3000, or unset it"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

fn validate(dir: &Path, options: &lepton::diagnostics::ValidateOptions) -> anyhow::Result<ExitCode> {
    let validation = lepton::diagnostics::validate(dir, options);
    let report = &validation.report;
    for diagnostic in &report.diagnostics {
        println!("{diagnostic}");
    }
    if let Some(check) = &validation.model_check {
        println!("{check}");
    }
    println!("{}: {}", dir.display(), report.summary());
    Ok(if report.has_errors() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Runs `lepton eval DIR --cross-validation K`: prints the report (or its JSON with
/// --json) and writes the report folder.
fn cross_validation(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let options = lepton::eval::CrossValidationOptions {
        bot_dir: args.test,
        folds: args.cross_validation.unwrap_or(5),
        out: args.out,
        threshold: args.threshold,
        margin: args.margin,
        seed: args.seed,
    };
    let (report, index) = lepton::eval::run_cross_validation(&options)?;
    match args.json {
        Some(path) if path.as_os_str() == "-" => {
            println!("{}", serde_json::to_string_pretty(&report)?);
            eprintln!("wrote {}", index.display());
            return Ok(ExitCode::SUCCESS);
        }
        Some(path) => {
            std::fs::write(&path, serde_json::to_string_pretty(&report)?).with_context(|| format!("cannot write {}", path.display()))?;
            println!("{report}");
        }
        None => println!("{report}"),
    }
    println!("wrote {}", index.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_config_splits_url() -> anyhow::Result<()> {
        let url = Url::parse("https://bot.example.com/telegram/webhook")?;

        let config = webhook_config(&url, Some("abc_DEF-1".to_owned()))?;

        assert_eq!(config.path, "/telegram/webhook");
        assert_eq!(config.url()?, url);
        Ok(())
    }

    #[test]
    fn webhook_config_rejects_missing_secret() -> anyhow::Result<()> {
        let url = Url::parse("https://bot.example.com/telegram/webhook")?;

        for secret in [None, Some(String::new())] {
            let error = webhook_config(&url, secret.clone()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains(WEBHOOK_SECRET_ENV), "{secret:?} gave {error:?}");
        }
        Ok(())
    }

    #[test]
    fn webhook_config_rejects_bad_urls() -> anyhow::Result<()> {
        let secret = Some("abc_DEF-1".to_owned());

        for url in ["https://bot.example.com", "https://bot.example.com/api/v1/hook", "https://bot.example.com/hook?a=1", "http://bot.example.com/hook"] {
            let url = Url::parse(url)?;
            assert!(webhook_config(&url, secret.clone()).is_err(), "{url} was accepted");
        }
        Ok(())
    }

    #[test]
    fn api_proxy_accepts_http_url() -> anyhow::Result<()> {
        let url = parse_api_proxy("http://127.0.0.1:3000")?;

        assert_eq!(url.as_str(), "http://127.0.0.1:3000/");
        Ok(())
    }

    #[test]
    fn api_proxy_rejects_other_values() {
        for text in ["127.0.0.1:3000", "proxy", "ftp://127.0.0.1/", "unix:/run/proxy.sock"] {
            let error = parse_api_proxy(text).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains(DISCORD_API_PROXY_ENV), "{text:?} gave {error:?}");
        }
    }
}
