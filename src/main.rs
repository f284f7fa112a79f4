//! The `lepton` command: run the demo, serve a bot, validate, train, index, evaluate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use lepton::agent_cmd::AgentCommand;
use lepton::app::{self, BotPaths};
use lepton::config::{LogFormat, Override};
use lepton::server::{self, ServeOptions};
use lepton::store_config::StoreOption;
use reqwest::Url;

#[derive(Parser)]
#[command(name = "lepton", version, about = "Customer-service bots in English and Chinese")]
struct Cli {
    /// Log format on standard error [default: text, or the configuration's `log.format`].
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the demo shop bot in the browser (trains and indexes when needed).
    Demo {
        /// The configuration file [default: LEPTON_CONFIG, else none].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// [default: 8080, or `server.port`]
        #[arg(long)]
        port: Option<u16>,
        /// [default: 127.0.0.1, or `server.host`]
        #[arg(long)]
        host: Option<String>,
        /// The demo bot folder [default: ./demo, else the one in the source tree].
        #[arg(long)]
        bot: Option<PathBuf>,
        /// Folder for the model and index [default: BOT/.lepton].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Session store: `embedded`, `memory`, `redis`, a redis:// URL, or an embedded store file path [default: from the environment and the bot settings, else DATA_DIR/sessions.redb].
        #[arg(long)]
        store: Option<String>,
        /// The console's accounts file, created with an admin `demo` when missing [default: LEPTON_AGENTS_FILE, else DATA_DIR/agents.json].
        #[arg(long)]
        agents: Option<PathBuf>,
        #[command(flatten)]
        telegram: TelegramArgs,
        #[command(flatten)]
        discord: DiscordArgs,
    },
    /// Serve a bot folder over the web channel, on Telegram with --telegram and on Discord with --discord.
    Serve(ServeArgs),
    /// Check the configuration file, or print the configuration the server would use.
    Config(ConfigArgs),
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
    /// Download pretrained sentence encoders for `settings.encoder.model`.
    Model(ModelArgs),
}

#[derive(clap::Args)]
struct ModelArgs {
    #[command(subcommand)]
    command: ModelSubcommand,
}

#[derive(Subcommand)]
enum ModelSubcommand {
    /// Download a model from the Hugging Face Hub into the Hugging Face cache
    /// (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub) and print
    /// its folder. HF_ENDPOINT sets another Hub or a mirror; HF_TOKEN a token for
    /// gated models. A bot then names it as `settings.encoder.model: REPO`, which
    /// finds the revision that `refs/main` names; for another revision, name
    /// the printed folder instead.
    Pull {
        /// The model's id, such as sentence-transformers/all-MiniLM-L6-v2.
        repo: String,
        /// A branch (`feature/x` too), tag, commit or pull request (`refs/pr/1`).
        #[arg(long, default_value = "main")]
        revision: String,
    },
    /// Fine-tune the bot's sentence encoder on its intents' examples
    /// (SetFit-style contrastive pairs) into a new model folder. Afterwards set
    /// `settings.encoder.model` to that folder; the next start retrains the
    /// intent head and the knowledge vectors on it.
    Finetune {
        /// The bot folder whose `settings.encoder` and examples are used.
        dir: PathBuf,
        /// The new model folder; it must not exist yet.
        #[arg(long)]
        out: PathBuf,
        /// Fine-tune this model folder instead of the one `settings.encoder.model` names.
        #[arg(long, value_name = "DIR")]
        base: Option<PathBuf>,
        #[command(flatten)]
        settings: FineTuneArgs,
    },
}

/// Settings of the contrastive fine-tuning.
#[derive(clap::Args)]
struct FineTuneArgs {
    /// Pair rounds: each round pairs every example once with an example of
    /// its intent and once with an example of another intent.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Passes over the pairs.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Peak learning rate (AdamW, linear warm-up and decay).
    #[arg(long, default_value_t = 2e-5)]
    learning_rate: f64,
    /// Train only the top N transformer layers [default: all].
    #[arg(long, value_name = "N")]
    layers: Option<usize>,
    /// Probability of dropping each activation during training.
    #[arg(long, default_value_t = 0.1)]
    dropout: f32,
    /// Seed of the pair sampling, the dropout and the shuffling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

impl FineTuneArgs {
    fn config(&self) -> lepton_encoder::FineTuneConfig {
        lepton_encoder::FineTuneConfig {
            rounds: self.rounds,
            epochs: self.epochs,
            learning_rate: self.learning_rate,
            layers: self.layers,
            dropout: self.dropout,
            seed: self.seed,
            ..lepton_encoder::FineTuneConfig::default()
        }
    }
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("encoder_source").args(["encoder", "bot"]).multiple(true))]
struct EvalArgs {
    /// Test data: a CLINC150 data_full.json (trains on its train split), or JSON Lines
    /// (`{"text", "intent"}`, intent null for out-of-scope) or CSV (`text,category`).
    test: PathBuf,
    /// Training data (.jsonl or .csv) for a test file without a training split.
    #[arg(long, conflicts_with = "bot")]
    train: Option<PathBuf>,
    /// Train on a bot folder's examples, with its classifier settings and,
    /// unless --encoder is given, the classifier the bot uses: the intent head
    /// on its settings.encoder, or the embedded model.
    #[arg(long)]
    bot: Option<PathBuf>,
    /// CLINC150 split to score: test or val.
    #[arg(long, default_value = "test")]
    split: String,
    /// Confidence threshold [default: 0.5, or the bot's].
    #[arg(long, value_parser = parse_unit_interval)]
    threshold: Option<f32>,
    /// Minimum lead of the top intent over the second [default: 0.1, or the bot's].
    #[arg(long, value_parser = parse_unit_interval)]
    margin: Option<f32>,
    /// Seed of the training, the --shots draw, the --cross-validation folds
    /// and --finetune [default: 42, or the bot's; --finetune: 42].
    #[arg(long)]
    seed: Option<u64>,
    /// Write the report as JSON to FILE (the table is still printed), or with no
    /// FILE print the JSON to standard output instead of the table.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    json: Option<PathBuf>,
    /// Cross-validate with K folds on the examples of the bot folder given as TEST, and
    /// write report.json, confusion.svg, confidence.svg and index.html to --out.
    #[arg(long, value_name = "K", conflicts_with_all = ["train", "bot"])]
    cross_validation: Option<usize>,
    /// Output folder of --cross-validation [default: TEST/.lepton/eval].
    #[arg(long, value_name = "DIR", requires = "cross_validation")]
    out: Option<PathBuf>,
    /// Train on N examples of each intent, drawn with the seed from the training data.
    #[arg(long, value_name = "N", conflicts_with = "cross_validation")]
    shots: Option<usize>,
    /// Classify with the intent head on this sentence encoder (a Hugging Face
    /// model folder, or an id such as sentence-transformers/all-MiniLM-L6-v2
    /// that `lepton model pull` fetched) instead of the embedded model.
    #[arg(long, value_name = "MODEL", conflicts_with = "cross_validation")]
    encoder: Option<PathBuf>,
    /// Tokens kept of a text, the two special ones included; at most the
    /// model's position count [default: the bot's setting with --bot, else
    /// max_seq_length in the folder's sentence_bert_config.json, else 256].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(3..=512), requires = "encoder_source")]
    max_tokens: Option<u64>,
    /// Pooling of the encoder's token vectors: mean or cls [default: the
    /// bot's setting with --bot, else the folder's 1_Pooling/config.json,
    /// else mean].
    #[arg(long, value_parser = parse_pooling, requires = "encoder_source")]
    pooling: Option<lepton_encoder::Pooling>,
    /// Text put before every query, such as "query: " for e5 models
    /// [default: the bot's setting with --bot, else none].
    #[arg(long, requires = "encoder_source")]
    query_prefix: Option<String>,
    /// The device the encoder runs on: cpu, cuda or cuda:N [default: the
    /// bot's setting with --bot, else cpu].
    #[arg(long, requires = "encoder_source")]
    device: Option<lepton_encoder::DeviceChoice>,
    /// The intent head's configuration as JSON, such as '{"hidden": 512}';
    /// missing fields keep their defaults.
    #[arg(long, value_name = "JSON", requires = "encoder_source")]
    head: Option<String>,
    /// Folder caching the data sets' embeddings, keyed by the encoder's
    /// fingerprint and the text [default: .lepton/embeddings in the current
    /// folder].
    #[arg(long, value_name = "DIR", requires = "encoder_source")]
    embedding_cache: Option<PathBuf>,
    /// Fine-tune the encoder on the training examples first (SetFit-style
    /// contrastive pairs, the defaults of `lepton model finetune`); the result
    /// is kept in the embedding cache folder.
    #[arg(long, requires = "encoder")]
    finetune: bool,
    /// Pair rounds of --finetune.
    #[arg(long, value_name = "N", default_value_t = 5, requires = "finetune")]
    finetune_rounds: usize,
    /// Train only the top N transformer layers in --finetune [default: all].
    #[arg(long, value_name = "N", requires = "finetune")]
    finetune_layers: Option<usize>,
    /// Peak learning rate of --finetune.
    #[arg(long, value_name = "RATE", default_value_t = 2e-5, requires = "finetune")]
    finetune_learning_rate: f64,
    /// Dropout of --finetune.
    #[arg(long, value_name = "P", default_value_t = 0.1, requires = "finetune")]
    finetune_dropout: f32,
}

/// A number from 0 to 1, as confidences and their margins are.
/// Returns the folder of `lepton eval --encoder`: the path itself when it is a
/// folder or not an `org/name` id, else the id's snapshot in the Hugging Face
/// cache, which `lepton model pull` fills.
fn encoder_folder(model: PathBuf) -> anyhow::Result<PathBuf> {
    let spec = model.to_string_lossy().into_owned();
    if model.is_dir() || !lepton_flows::is_hub_id(&spec) {
        return Ok(model);
    }
    lepton_flows::resolve_model(Path::new("."), &spec, &lepton_flows::HubCache::from_env())
        .with_context(|| format!("--encoder {spec} is neither a folder nor a pulled model"))
}

fn parse_unit_interval(value: &str) -> Result<f32, String> {
    match value.trim().parse::<f32>() {
        Ok(number) if (0.0..=1.0).contains(&number) => Ok(number),
        Ok(_) => Err(format!("{value} is outside 0 to 1; confidences are probabilities")),
        Err(_) => Err(format!("{value:?} is not a number from 0 to 1")),
    }
}

fn parse_pooling(value: &str) -> Result<lepton_encoder::Pooling, String> {
    match value {
        "mean" => Ok(lepton_encoder::Pooling::Mean),
        "cls" => Ok(lepton_encoder::Pooling::Cls),
        other => Err(format!("invalid pooling {other:?}: expected mean or cls")),
    }
}

#[derive(clap::Args)]
struct AgentArgs {
    #[command(subcommand)]
    command: AgentSubcommand,
    /// The bot folder whose data folder contains the accounts file.
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
    /// Add an agent. Prompts for the password twice on a terminal, else reads it
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
    /// Remove an agent and end their console sessions.
    Remove { name: String },
    /// Change an agent's password and end their console sessions.
    Passwd {
        name: String,
        /// Read the password from standard input even on a terminal.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(clap::Args)]
struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigSubcommand,
    /// The configuration file [default: LEPTON_CONFIG, else none].
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ConfigSubcommand {
    /// Check the file and the LEPTON_* environment variables. Report each problem
    /// with file, line and column, and exit 1 if there is one.
    Check,
    /// Print the effective configuration (file, environment and defaults) as
    /// TOML, with secrets redacted and each value's source in a comment.
    Show,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The bot folder [default: the configuration's `server.bot`].
    dir: Option<PathBuf>,
    /// The configuration file [default: LEPTON_CONFIG, else none].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// [default: 8080, or `server.port`]
    #[arg(long)]
    port: Option<u16>,
    /// [default: 127.0.0.1, or `server.host`]
    #[arg(long)]
    host: Option<String>,
    /// Folder for the model and index [default: DIR/.lepton].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Session store: `embedded`, `memory`, `redis`, a redis:// or rediss:// URL, or an embedded store file path [default: the configuration's `store.kind` (LEPTON_SESSION_STORE), else settings.session_store, else DATA_DIR/sessions.redb].
    #[arg(long)]
    store: Option<String>,
    /// Make session writes durable this many milliseconds after they return
    /// instead of before (faster on disks with slow fsync; a crash may lose
    /// that much). 0 keeps every write durable before it returns [default: 0, or `store.flush_ms`].
    #[arg(long)]
    store_flush_ms: Option<u64>,
    /// The console's accounts file, written by `lepton agent add` [default: LEPTON_AGENTS_FILE, else DATA_DIR/agents.json].
    #[arg(long)]
    agents: Option<PathBuf>,
    /// Bearer token the agent API requires. Without it, only loopback clients may
    /// use the agent API [default: LEPTON_AGENT_TOKEN]. The environment variable
    /// keeps it out of the process list.
    #[arg(long)]
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
    /// Do not serve Prometheus metrics (`metrics.enabled`).
    #[arg(long)]
    no_metrics: bool,
    /// The route of the Prometheus metrics (`metrics.path`) [default: /metrics].
    #[arg(long, value_name = "PATH")]
    metrics_path: Option<String>,
    /// Bearer token scrapers must send for the metrics (`metrics.token`). Without it, only loopback clients may read them.
    #[arg(long)]
    metrics_token: Option<String>,
}

impl MetricsArgs {
    fn overrides(&self) -> Vec<Override> {
        let mut overrides = Vec::new();
        if self.no_metrics {
            overrides.push(Override::new("metrics.enabled", "--no-metrics", false));
        }
        if let Some(path) = &self.metrics_path {
            overrides.push(Override::new("metrics.path", "--metrics-path", path.clone()));
        }
        if let Some(token) = &self.metrics_token {
            overrides.push(Override::new("metrics.token", "--metrics-token", token.clone()));
        }
        overrides
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

/// candle asks for its thread count on every tensor operation and, without
/// `RAYON_NUM_THREADS`, reads it from the system each time. Set it once, before
/// any thread starts, to the cores this process may use.
fn pin_numeric_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::env::set_var("RAYON_NUM_THREADS", cores.to_string());
}

fn main() -> ExitCode {
    pin_numeric_threads();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { config, port, host, bot, data_dir, store, agents, telegram, discord } => {
            let metrics = MetricsArgs::default();
            let args = ServeArgs { dir: bot, config, port, host, data_dir, store, agents, agent_token: None, demo_orders: true, no_watch: false, store_flush_ms: None, telegram, discord, metrics };
            serve(args, true, cli.log_format)
        }
        Command::Serve(args) => serve(args, false, cli.log_format),
        Command::Config(args) => config_command(&args),
        command => {
            // Commands that print a report keep the log to warnings, so that the
            // engine's INFO lines do not mix with the report. LEPTON_LOG overrides it.
            let default_level = match command {
                Command::Test { .. } | Command::Chat { .. } | Command::Validate { .. } | Command::Eval(..) => "warn",
                _ => "info",
            };
            let level = std::env::var("LEPTON_LOG").ok().filter(|level| !level.trim().is_empty()).unwrap_or_else(|| default_level.to_owned());
            let _tracing = install_tracing(cli.log_format.unwrap_or_default(), &level);
            run(command)
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Guard that keeps the tracing exporters running until the command ends.
/// With the `otel` feature, dropping it sends the spans still buffered.
struct TracingGuard {
    #[cfg(feature = "otel")]
    _otel: Option<lepton::telemetry::OtelGuard>,
}

/// Installs the log on standard error. `level` is a tracing filter such as
/// `info,lepton_web=debug`.
fn install_tracing(format: LogFormat, level: &str) -> TracingGuard {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| "info".into());
    // Colour codes only for a terminal, not for a log file or a CI log.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let output = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let output = match format {
        LogFormat::Text => output.boxed(),
        LogFormat::Json => output.json().boxed(),
    };
    // The level filters the log lines only, so that spans reach the exporter
    // (with the `otel` feature) at its own level.
    let registry = tracing_subscriber::registry().with(output.with_filter(filter));

    #[cfg(feature = "otel")]
    {
        let (layer, guard) = match lepton::telemetry::layer() {
            Ok(Some((layer, guard))) => (Some(layer.with_filter(lepton::telemetry::span_filter())), Some(guard)),
            Ok(None) => (None, None),
            Err(error) => {
                // The subscriber is not installed yet, so this goes to standard error directly.
                eprintln!("lepton: cannot start the OpenTelemetry exporter, so no spans are exported: {error:#}");
                (None, None)
            }
        };
        registry.with(layer).init();
        TracingGuard { _otel: guard }
    }
    #[cfg(not(feature = "otel"))]
    {
        registry.init();
        TracingGuard {}
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Demo { .. } | Command::Serve(_) | Command::Config(_) => unreachable!("main runs the server and config commands"),
        Command::Model(args) => match args.command {
            ModelSubcommand::Pull { repo, revision } => {
                let options = lepton::model_cmd::PullOptions::from_env(repo, revision);
                let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
                let folder = runtime.block_on(lepton::model_cmd::pull(&options))?;
                println!("{}", folder.display());
                Ok(ExitCode::SUCCESS)
            }
            ModelSubcommand::Finetune { dir, out, base, settings } => {
                let finetuned = lepton::finetune_cmd::finetune(&dir, base.as_deref(), &out, &settings.config(), |step, steps, loss| {
                    // A line every 5% of the steps, and the last one.
                    if step % (steps / 20).max(1) == 0 || step == steps {
                        eprintln!("step {step}/{steps}: loss {loss:.4}");
                    }
                })?;
                let report = &finetuned.report;
                println!(
                    "fine-tuned {} on {} examples of {} intents ({} pairs, {} steps) in {:.0} s; loss {:.4} -> {:.4}",
                    finetuned.base.display(),
                    report.examples,
                    report.intents,
                    report.pairs,
                    report.steps,
                    report.seconds,
                    report.first_loss,
                    report.last_loss
                );
                if finetuned.uncovered > 0 {
                    println!("left out {} examples in a script the encoder's vocabulary lacks", finetuned.uncovered);
                }
                println!("wrote {}; set settings.encoder.model to this folder to use it", out.display());
                Ok(ExitCode::SUCCESS)
            }
        },
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
            let batcher = app::load_encoder(&paths, &bot, &app::EncoderSlot::default())?;
            let (_, trained) = app::train(&paths, &bot, batcher.as_ref())?;
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
            let cache_given = args.embedding_cache.is_some();
            let cache_dir = args.embedding_cache.unwrap_or_else(|| PathBuf::from(".lepton/embeddings"));
            let encoder = match (args.encoder, &train) {
                (Some(model), _) => Some(lepton::eval::EncoderOptions {
                    model: encoder_folder(model)?,
                    max_tokens: args.max_tokens.map(|n| n as usize),
                    pooling: args.pooling,
                    query_prefix: args.query_prefix.unwrap_or_default(),
                    device: args.device.unwrap_or(lepton_encoder::DeviceChoice::Cpu),
                    head: args.head,
                    cache_dir,
                    finetune: args.finetune.then(|| lepton_encoder::FineTuneConfig {
                        rounds: args.finetune_rounds,
                        layers: args.finetune_layers,
                        learning_rate: args.finetune_learning_rate,
                        dropout: args.finetune_dropout,
                        seed: args.seed.unwrap_or(42),
                        ..lepton_encoder::FineTuneConfig::default()
                    }),
                }),
                (None, Some(lepton::eval::TrainingData::Bot(dir))) => {
                    let mut encoder = lepton::eval::bot_encoder(dir, cache_dir)?;
                    let overrides = [
                        ("--max-tokens", args.max_tokens.is_some()),
                        ("--pooling", args.pooling.is_some()),
                        ("--query-prefix", args.query_prefix.is_some()),
                        ("--device", args.device.is_some()),
                        ("--head", args.head.is_some()),
                    ];
                    let flags_given: Vec<&str> = overrides.iter().filter(|(_, given)| *given).map(|(flag, _)| *flag).collect();
                    // Standard error, so that `--json` alone still prints only JSON.
                    match &mut encoder {
                        Some(encoder) => {
                            eprintln!("scoring the intent head on the bot's encoder in {}", encoder.model.display());
                            if let Some(max_tokens) = args.max_tokens {
                                encoder.max_tokens = Some(max_tokens as usize);
                            }
                            if let Some(pooling) = args.pooling {
                                encoder.pooling = Some(pooling);
                            }
                            if let Some(prefix) = args.query_prefix {
                                encoder.query_prefix = prefix;
                            }
                            if let Some(device) = args.device {
                                encoder.device = device;
                            }
                            encoder.head = args.head;
                        }
                        None if !flags_given.is_empty() => {
                            anyhow::bail!(
                                "{} set the encoder, but the bot in {} classifies with the embedded model; add --encoder MODEL",
                                flags_given.join(", "),
                                dir.display()
                            )
                        }
                        None if cache_given => eprintln!("--embedding-cache is unused: the bot in {} classifies with the embedded model", dir.display()),
                        None => {}
                    }
                    encoder
                }
                (None, _) => None,
            };
            let options = lepton::eval::EvalOptions {
                test: args.test,
                train,
                split: args.split,
                threshold: args.threshold,
                margin: args.margin,
                seed: args.seed,
                shots: args.shots,
                encoder,
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
            let batcher = app::load_encoder(&paths, &bot, &app::EncoderSlot::default())?;
            let (_, rebuilt) = app::index(&paths, &bot, batcher.as_ref())?;
            let verb = if rebuilt { "built" } else { "up to date:" };
            println!("{verb} {} ({} FAQ entries, {} articles)", paths.index_dir().display(), bot.faq.len(), bot.articles.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `lepton serve`, or `lepton demo` when `demo` is true: loads the
/// configuration, installs the log, and serves until SIGTERM or SIGINT.
fn serve(args: ServeArgs, demo: bool, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let mut overrides = serve_overrides(&args, log_format)?;
    if demo {
        overrides.push(Override::new("server.demo_orders", "lepton demo", true));
    }
    let config = lepton::config::load(args.config.as_deref(), &|name| std::env::var(name).ok(), &overrides)?.config;
    let _tracing = install_tracing(config.log.format, &config.log.level);

    let bot_dir = match (&config.server.bot, demo) {
        (Some(dir), _) => dir.clone(),
        (None, true) => default_demo_dir(),
        (None, false) => bail!("no bot folder: pass it as `lepton serve DIR`, or set `server.bot` in the configuration file"),
    };
    let paths = BotPaths::new(&bot_dir, config.server.data_dir.as_deref());
    let accounts = lepton::agent_cmd::accounts_file(config.agent.accounts_file.as_deref(), &paths);
    let options = ServeOptions {
        paths,
        host: config.server.host.clone(),
        port: config.server.port,
        store: config.store.clone(),
        redis: config.redis.clone(),
        web: config.web.clone(),
        encoder: config.encoder.clone(),
        agent_token: config.agent.token.as_ref().map(|token| token.expose().to_owned()).filter(|token| !token.is_empty()),
        accounts,
        demo_account: demo,
        demo_orders: config.server.demo_orders,
        watch: config.server.watch,
        telegram: lepton::config::telegram_config(&config.telegram)?,
        discord: lepton::config::discord_config(&config.discord)?,
        metrics: config.metrics.access(),
        limits: lepton::limits::Limits::from_config(&config)?,
        shutdown_timeout: Duration::from_secs(config.server.shutdown_timeout_seconds),
        header_read_timeout: Duration::from_secs(config.server.header_read_timeout_seconds),
        handoff_timer_period: Duration::from_secs(config.server.handoff_timer_seconds.max(1)),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(server::run(options, shutdown_signal()))?;
    Ok(ExitCode::SUCCESS)
}

/// Returns the configuration keys that `lepton serve`'s flags set. For flags
/// left out, the environment, the file or the default decides.
fn serve_overrides(args: &ServeArgs, log_format: Option<LogFormat>) -> anyhow::Result<Vec<Override>> {
    let path = |path: &Path| serde_json::Value::from(path.to_string_lossy().into_owned());
    let mut overrides = Vec::new();
    if let Some(dir) = &args.dir {
        overrides.push(Override::new("server.bot", "DIR", path(dir)));
    }
    if let Some(port) = args.port {
        overrides.push(Override::new("server.port", "--port", port));
    }
    if let Some(host) = &args.host {
        overrides.push(Override::new("server.host", "--host", host.clone()));
    }
    if let Some(dir) = &args.data_dir {
        overrides.push(Override::new("server.data_dir", "--data-dir", path(dir)));
    }
    if let Some(store) = &args.store {
        overrides.extend(StoreOption::parse(store)?.overrides());
    }
    if let Some(flush_ms) = args.store_flush_ms {
        overrides.push(Override::new("store.flush_ms", "--store-flush-ms", flush_ms));
    }
    if let Some(file) = &args.agents {
        overrides.push(Override::new("agent.accounts_file", "--agents", path(file)));
    }
    if let Some(token) = &args.agent_token {
        overrides.push(Override::new("agent.token", "--agent-token", token.clone()));
    }
    if args.demo_orders {
        overrides.push(Override::new("server.demo_orders", "--demo-orders", true));
    }
    if args.no_watch {
        overrides.push(Override::new("server.watch", "--no-watch", false));
    }
    if args.telegram.telegram {
        overrides.push(Override::new("telegram.enabled", "--telegram", true));
    }
    if let Some(url) = &args.telegram.telegram_webhook {
        overrides.push(Override::new("telegram.enabled", "--telegram-webhook", true));
        overrides.push(Override::new("telegram.webhook_url", "--telegram-webhook", url.as_str()));
    }
    if args.discord.discord {
        overrides.push(Override::new("discord.enabled", "--discord", true));
    }
    overrides.extend(args.metrics.overrides());
    if let Some(format) = log_format {
        let name = match format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        overrides.push(Override::new("log.format", "--log-format", name));
    }
    Ok(overrides)
}

/// Runs `lepton config check` and `lepton config show`.
fn config_command(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let loaded = lepton::config::load(args.config.as_deref(), &|name| std::env::var(name).ok(), &[]);
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("{error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    match args.command {
        ConfigSubcommand::Check => {
            let file = loaded.file.as_ref().map_or_else(|| "no configuration file; the defaults and the environment".to_owned(), |path| path.display().to_string());
            println!("{file}: ok");
        }
        ConfigSubcommand::Show => print!("{}", lepton::config::render(&loaded)),
    }
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

fn validate(dir: &Path, options: &lepton::diagnostics::ValidateOptions) -> anyhow::Result<ExitCode> {
    let validation = lepton::diagnostics::validate(dir, options);
    let report = &validation.report;
    for diagnostic in &report.diagnostics {
        println!("{diagnostic}");
    }
    if let Some(check) = &validation.model_check {
        println!("{check}");
    }
    if let Some(reason) = &validation.model_check_skipped {
        println!("model check: skipped, {reason}");
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
