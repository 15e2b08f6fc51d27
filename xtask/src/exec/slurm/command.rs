//! Running Slurm's commands (`sbatch`, `squeue`, `scancel`, `scontrol`) and reading the values
//! they print.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::SlurmError;
use super::queue::{QueueEntry, SQUEUE_FORMAT, parse_squeue_line};
use super::script::shell_quote;

/// The one way Slurm's commands are run: errors name the command line and carry its stderr.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandRunner {
    /// Directory of Slurm's binaries (`None`: found on `PATH`).
    pub bin_dir: Option<PathBuf>,
}

impl CommandRunner {
    /// Runs `program args...` and returns its stdout.
    pub fn run(&self, program: &str, args: &[OsString]) -> Result<String, SlurmError> {
        let exe = match &self.bin_dir {
            Some(d) => d.join(program),
            None => PathBuf::from(program),
        };
        let command = std::iter::once(program.to_string())
            .chain(args.iter().map(|a| shell_quote(&a.to_string_lossy())))
            .collect::<Vec<_>>()
            .join(" ");
        let out = Command::new(&exe)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| SlurmError::Spawn {
                command: command.clone(),
                source,
            })?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if stderr.is_empty() {
                stderr = stdout.trim().to_string();
            }
            return Err(SlurmError::Command {
                command,
                status: out.status.to_string(),
                stderr,
            });
        }
        Ok(stdout)
    }

    fn run_str(&self, program: &str, args: &[&str]) -> Result<String, SlurmError> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        self.run(program, &args)
    }

    /// `MaxArraySize` from `scontrol show config`: array indices must be below it.
    pub fn max_array_size(&self) -> Result<usize, SlurmError> {
        let out = self.run_str("scontrol", &["show", "config"])?;
        parse_config_value(&out, "MaxArraySize")
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| SlurmError::Output {
                command: "scontrol show config".into(),
                output: out.lines().take(3).collect::<Vec<_>>().join("\n"),
                message: "no `MaxArraySize = <n>` line".into(),
            })
    }

    /// This user's jobs, one entry per array task (`squeue -r`).
    pub fn squeue(&self) -> Result<Vec<QueueEntry>, SlurmError> {
        let out = self.run_str("squeue", &["--me", "-h", "-r", "-o", SQUEUE_FORMAT])?;
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                parse_squeue_line(l).ok_or_else(|| SlurmError::Output {
                    command: format!("squeue --me -h -r -o '{SQUEUE_FORMAT}'"),
                    output: l.to_string(),
                    message:
                        "expected `<array job>|<task index>|<state>|<reason>|<dependency>|<name>`"
                            .into(),
                })
            })
            .collect()
    }

    /// Submits and returns the job id (`sbatch --parsable`).
    pub fn sbatch(&self, args: &[OsString]) -> Result<u64, SlurmError> {
        let mut all: Vec<OsString> = vec!["--parsable".into()];
        all.extend(args.iter().cloned());
        let out = self.run("sbatch", &all)?;
        let first = out.trim().split(';').next().unwrap_or("").trim();
        first.parse::<u64>().map_err(|_| SlurmError::Output {
            command: "sbatch --parsable".into(),
            output: out.clone(),
            message: "expected a job id".into(),
        })
    }

    /// `scancel` of job ids or `<array job>_<task>` ids.
    pub fn scancel(&self, ids: &[String]) -> Result<(), SlurmError> {
        if ids.is_empty() {
            return Ok(());
        }
        let args: Vec<OsString> = ids.iter().map(OsString::from).collect();
        self.run("scancel", &args).map(|_| ())
    }
}

/// The value of `key` in `scontrol show config`'s `Key = value` lines.
fn parse_config_value<'a>(config: &'a str, key: &str) -> Option<&'a str> {
    config.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_parse() {
        let cfg =
            "Configuration data as of 2024\nMaxArraySize            = 1001\nMaxJobCount = 10000\n";
        assert_eq!(parse_config_value(cfg, "MaxArraySize"), Some("1001"));
        assert_eq!(parse_config_value(cfg, "MaxJobCount"), Some("10000"));
        assert_eq!(parse_config_value(cfg, "Nope"), None);
    }
}
