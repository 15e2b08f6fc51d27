//! `stilts`: the command line of the stilts toolkit. Thin: parsing, progress and printing; the
//! work is done by the library crates.

mod cmd;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "stilts",
    version,
    about = "Supplementary Training on Intermediate Labeled-data Tasks"
)]
struct Cli {
    /// CPU threads for training and inference (default: $STILTS_THREADS, else one per core).
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check, fetch and generate data.
    #[command(subcommand)]
    Data(cmd::data::DataCommand),
    /// Run an experiment file's phases (resumes interrupted runs).
    Run(cmd::run::RunArgs),
    /// Train one phase from flags.
    Train(Box<cmd::train::TrainArgs>),
    /// Score a trained model on a task split.
    Eval(cmd::eval::EvalArgs),
    /// Print a model's logits (and its encoder's summary states, or every ELMo layer) for
    /// JSON-lines records.
    Predict(Box<cmd::predict::PredictArgs>),
    /// Rank candidate intermediate tasks for a target before fine-tuning on any.
    Rank(Box<cmd::rank::RankArgs>),
    /// Rank candidate intermediate tasks, train the best few and the baseline, keep the winner.
    Select(Box<cmd::select::SelectArgs>),
    /// List the runs of an output directory (finished or in progress) as a table or JSON.
    Show(cmd::show::ShowArgs),
    /// Print the build, machine, caches and environment variables (for bug reports).
    Env(cmd::env::EnvArgs),
    /// GLUE submission files from runs' test predictions, and their validator.
    #[command(subcommand)]
    Export(Box<cmd::export::ExportCommand>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STILTS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    stilts_train::models::device::keep_freed_memory();
    if let Err(e) = stilts_train::models::device::init_threads(cli.threads) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Data(c) => cmd::data::run(c),
        Command::Run(a) => cmd::run::run(a),
        Command::Train(a) => cmd::train::run(*a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Predict(a) => cmd::predict::run(*a),
        Command::Rank(a) => cmd::rank::run(*a),
        Command::Select(a) => cmd::select::run(*a),
        Command::Show(a) => cmd::show::run(a),
        Command::Env(a) => cmd::env::run(a),
        Command::Export(c) => cmd::export::run(*c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
