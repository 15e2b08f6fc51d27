//! `stilts env`: what this binary and machine are, for bug reports (as `transformers env`).

use anyhow::Result;
use clap::Args;
use stilts_train::environment::{Environment, collect};

/// Print the version and commit, the compiled features, the CPU and threads, the caches and
/// data roots (size and contents) and the environment variables stilts reads.
#[derive(Args, Debug)]
pub struct EnvArgs {
    /// Print JSON instead.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: EnvArgs) -> Result<()> {
    let env = collect(env!("CARGO_PKG_VERSION"), env!("STILTS_GIT_COMMIT"));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&env)?);
    } else {
        print!("{}", render(&env));
    }
    Ok(())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn render(env: &Environment) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "stilts {} (commit {}, {} build)",
        env.version, env.commit, env.profile
    );
    let _ = writeln!(out, "platform: {}", env.platform);
    let features: Vec<String> = env
        .features
        .iter()
        .map(|f| format!("{} {}", f.name, if f.compiled { "yes" } else { "no" }))
        .collect();
    let _ = writeln!(
        out,
        "features: cpu (burn-flex) yes, {}",
        features.join(", ")
    );
    let _ = writeln!(
        out,
        "cpu: {} ({} logical cores; {})",
        env.cpu.model.as_deref().unwrap_or("unknown model"),
        env.cpu.logical_cores,
        if env.cpu.simd.is_empty() {
            "no SIMD detected".to_owned()
        } else {
            env.cpu.simd.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "threads: {} in use (--threads, STILTS_THREADS {}, RAYON_NUM_THREADS {})",
        env.threads,
        std::env::var(stilts_train::models::device::THREADS_ENV)
            .as_deref()
            .unwrap_or("unset"),
        env.rayon_num_threads
            .as_deref()
            .unwrap_or("unset (one per core)")
    );
    let _ = writeln!(out, "locations:");
    for l in &env.locations {
        let path = l
            .path
            .as_ref()
            .map_or("(not set)".to_owned(), |p| p.display().to_string());
        if l.exists {
            let shown: Vec<&str> = l.holds.iter().take(12).map(String::as_str).collect();
            let more = l.holds.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  {}: {path} ({}; {}{more})",
                l.name,
                mib(l.size_bytes),
                if shown.is_empty() {
                    "empty".to_owned()
                } else {
                    shown.join(", ")
                }
            );
        } else {
            let _ = writeln!(out, "  {}: {path} (does not exist)", l.name);
        }
    }
    let _ = writeln!(out, "variables:");
    if env.variables.is_empty() {
        let _ = writeln!(out, "  (none set)");
    }
    for (k, v) in &env.variables {
        let _ = writeln!(out, "  {k}={v}");
    }
    out
}
