//! The `lepton` command: run the demo, serve a bot, validate, train, index, evaluate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use lepton::app::{self, BotPaths};
use lepton::server::{self, ServeOptions};
use lepton::store_config::StoreOption;

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
    },
    /// Serve a bot folder over the web channel.
    Serve(ServeArgs),
    /// Check a bot folder and report every problem with file, line and column.
    Validate { dir: PathBuf },
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
    /// Bearer token the agent API requires; without it, only loopback clients may use the agent API.
    #[arg(long, env = "LEPTON_AGENT_TOKEN", hide_env_values = true)]
    agent_token: Option<String>,
    /// Also serve the demo orders endpoint from DIR/orders.json.
    #[arg(long)]
    demo_orders: bool,
    /// Do not reload the bot when its files change.
    #[arg(long)]
    no_watch: bool,
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
    install_tracing(cli.log_format);
    match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn install_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEPTON_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Demo { port, host, bot, data_dir, store } => {
            let dir = bot.unwrap_or_else(default_demo_dir);
            let args = ServeArgs { dir, port, host, data_dir, store, agent_token: None, demo_orders: true, no_watch: false, store_flush_ms: 0 };
            serve(args)
        }
        Command::Serve(args) => serve(args),
        Command::Validate { dir } => validate(&dir),
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

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let paths = BotPaths::new(&args.dir, args.data_dir.as_deref());
    let store = args.store.as_deref().map(StoreOption::parse).unwrap_or_default();
    let options = ServeOptions {
        paths,
        host: args.host,
        port: args.port,
        store,
        store_flush_interval: (args.store_flush_ms > 0).then(|| std::time::Duration::from_millis(args.store_flush_ms)),
        agent_token: args.agent_token,
        demo_orders: args.demo_orders,
        watch: !args.no_watch,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(server::run(options, shutdown_signal()))?;
    Ok(ExitCode::SUCCESS)
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

fn validate(dir: &Path) -> anyhow::Result<ExitCode> {
    let report = lepton_flows::validate(dir);
    for diagnostic in &report.diagnostics {
        println!("{diagnostic}");
    }
    println!("{}: {}", dir.display(), report.summary());
    Ok(if report.has_errors() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
