//! The driver's event log, `<grid output>/slurm/events.tsv`: what drivers did, one line per
//! event, appended and never rewritten. [`Event`] is its only writer ([`Event::to_line`]) and
//! its only reader ([`Event::parse`]). The lines, tab-separated:
//!
//! ```text
//! <unix time>  submit  <run>  <array>  <job>  <index>    run submitted as task <index> of
//!                                                        array <array> (Slurm job <job>)
//! <unix time>  lost    <run>  charged|uncharged          run left the queue unfinished
//! <unix time>  cancel  <run>  <job>_<index>  <reason>    its task cancelled (CancelReason)
//! <unix time>  reset   <run>                             earlier losses no longer count
//! ```
//!
//! A reader ignores fields after the ones it knows (a later version may add some) and skips
//! lines that are not events (a kind it does not know, a field that does not parse).

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::SlurmError;

/// Why the driver cancelled a queued task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CancelReason {
    /// `DependencyNeverSatisfied`: Slurm says the task's dependency failed.
    DependencyNeverSatisfied,
    /// `dependency-resubmitted`: the task waits on a dependency task that was replaced by a
    /// resubmission.
    DependencyResubmitted,
    /// `finished`: the task's run is finished (the task was requeued after it finished).
    Finished,
}

impl CancelReason {
    /// Every reason, for tests.
    #[cfg(test)]
    const ALL: [CancelReason; 3] = [
        CancelReason::DependencyNeverSatisfied,
        CancelReason::DependencyResubmitted,
        CancelReason::Finished,
    ];

    fn as_str(self) -> &'static str {
        match self {
            CancelReason::DependencyNeverSatisfied => "DependencyNeverSatisfied",
            CancelReason::DependencyResubmitted => "dependency-resubmitted",
            CancelReason::Finished => "finished",
        }
    }

    fn parse(s: &str) -> Option<CancelReason> {
        match s {
            "DependencyNeverSatisfied" => Some(CancelReason::DependencyNeverSatisfied),
            "dependency-resubmitted" => Some(CancelReason::DependencyResubmitted),
            "finished" => Some(CancelReason::Finished),
            _ => None,
        }
    }
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Event {
    /// `submit <run> <array> <job> <index>`: `run` is task `index` of our array `array`
    /// (`a0001`), Slurm job `job`.
    Submit {
        run: String,
        array: String,
        job: u64,
        index: u32,
    },
    /// `lost <run> charged|uncharged`: `run` left the queue unfinished; a charged loss counts
    /// towards `max_retries` (an uncharged one's run never started: its dependency was
    /// unfinished).
    Lost { run: String, charged: bool },
    /// `cancel <run> <job>_<index> <reason>`: the driver cancelled `run`'s task
    /// `<job>_<index>`.
    Cancel {
        run: String,
        job: u64,
        index: u32,
        reason: CancelReason,
    },
    /// `reset <run>`: earlier losses no longer count.
    Reset { run: String },
}

impl Event {
    const SUBMIT: &str = "submit";
    const LOST: &str = "lost";
    const CANCEL: &str = "cancel";
    const RESET: &str = "reset";
    const CHARGED: &str = "charged";
    const UNCHARGED: &str = "uncharged";

    /// The event's line at unix time `time`, without its newline.
    pub(super) fn to_line(&self, time: u64) -> String {
        match self {
            Event::Submit {
                run,
                array,
                job,
                index,
            } => format!("{time}\t{}\t{run}\t{array}\t{job}\t{index}", Self::SUBMIT),
            Event::Lost { run, charged } => {
                let charge = if *charged {
                    Self::CHARGED
                } else {
                    Self::UNCHARGED
                };
                format!("{time}\t{}\t{run}\t{charge}", Self::LOST)
            }
            Event::Cancel {
                run,
                job,
                index,
                reason,
            } => format!(
                "{time}\t{}\t{run}\t{job}_{index}\t{}",
                Self::CANCEL,
                reason.as_str()
            ),
            Event::Reset { run } => format!("{time}\t{}\t{run}", Self::RESET),
        }
    }

    /// The event of a line [`Event::to_line`] wrote (its time dropped); `None` for a line that
    /// is not one. Fields after the known ones are ignored.
    pub(super) fn parse(line: &str) -> Option<Event> {
        let mut f = line.split('\t');
        let _time: u64 = f.next()?.parse().ok()?;
        let kind = f.next()?;
        let run = f.next()?.to_string();
        let event = match kind {
            Self::SUBMIT => Event::Submit {
                run,
                array: f.next()?.to_string(),
                job: f.next()?.parse().ok()?,
                index: f.next()?.parse().ok()?,
            },
            Self::LOST => Event::Lost {
                run,
                charged: match f.next()? {
                    Self::CHARGED => true,
                    Self::UNCHARGED => false,
                    _ => return None,
                },
            },
            Self::CANCEL => {
                let (job, index) = f.next()?.split_once('_')?;
                Event::Cancel {
                    run,
                    job: job.parse().ok()?,
                    index: index.parse().ok()?,
                    reason: CancelReason::parse(f.next()?)?,
                }
            }
            Self::RESET => Event::Reset { run },
            _ => return None,
        };
        Some(event)
    }
}

fn events_path(dir: &Path) -> PathBuf {
    dir.join("events.tsv")
}

/// The events in `<dir>/events.tsv` (none when it does not exist), skipping lines that are
/// not events.
pub(super) fn read_events(dir: &Path) -> Result<Vec<Event>, SlurmError> {
    let path = events_path(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SlurmError::io(&path, e)),
    };
    Ok(text.lines().filter_map(Event::parse).collect())
}

/// Appends `events` to `<dir>/events.tsv` in one write, all at the current time.
pub(super) fn append_events(dir: &Path, events: &[Event]) -> Result<(), SlurmError> {
    if events.is_empty() {
        return Ok(());
    }
    let path = events_path(dir);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| SlurmError::io(&path, e))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut text = String::new();
    for e in events {
        text.push_str(&e.to_line(now));
        text.push('\n');
    }
    f.write_all(text.as_bytes())
        .map_err(|e| SlurmError::io(&path, e))
}

/// Every run ever submitted.
pub(super) fn submitted_runs(events: &[Event]) -> BTreeSet<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Submit { run, .. } => Some(run.clone()),
            _ => None,
        })
        .collect()
}

/// Charged losses of each run since its last reset.
pub(super) fn charged_losses(events: &[Event]) -> HashMap<String, u32> {
    let mut n: HashMap<String, u32> = HashMap::new();
    for e in events {
        match e {
            Event::Lost { run, charged: true } => *n.entry(run.clone()).or_default() += 1,
            Event::Reset { run } => {
                n.remove(run);
            }
            _ => {}
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One event of every variant (and every cancel reason, both charges).
    fn every_event() -> Vec<Event> {
        let mut events = vec![
            Event::Submit {
                run: "r1".into(),
                array: "a0007".into(),
                job: 812,
                index: 3,
            },
            Event::Lost {
                run: "r1".into(),
                charged: true,
            },
            Event::Lost {
                run: "r2".into(),
                charged: false,
            },
            Event::Reset { run: "r1".into() },
        ];
        for reason in CancelReason::ALL {
            events.push(Event::Cancel {
                run: "r3".into(),
                job: 90,
                index: 0,
                reason,
            });
        }
        // Adding a variant must add it here.
        let mut seen = [false; 4];
        for e in &events {
            seen[match e {
                Event::Submit { .. } => 0,
                Event::Lost { .. } => 1,
                Event::Cancel { .. } => 2,
                Event::Reset { .. } => 3,
            }] = true;
        }
        assert!(seen.iter().all(|&s| s), "a variant has no example");
        events
    }

    #[test]
    fn every_event_round_trips() {
        for e in every_event() {
            let line = e.to_line(1_700_000_000);
            assert!(!line.contains('\n'), "{line:?}");
            assert_eq!(Event::parse(&line), Some(e), "{line:?}");
        }
    }

    #[test]
    fn event_lines_keep_their_format() {
        // The lines earlier versions wrote, byte for byte.
        let lines: Vec<String> = every_event().iter().map(|e| e.to_line(17)).collect();
        assert_eq!(
            lines,
            [
                "17\tsubmit\tr1\ta0007\t812\t3",
                "17\tlost\tr1\tcharged",
                "17\tlost\tr2\tuncharged",
                "17\treset\tr1",
                "17\tcancel\tr3\t90_0\tDependencyNeverSatisfied",
                "17\tcancel\tr3\t90_0\tdependency-resubmitted",
                "17\tcancel\tr3\t90_0\tfinished",
            ]
        );
    }

    #[test]
    fn lines_that_are_not_events_are_skipped() {
        assert_eq!(
            Event::parse("17\tsubmit\tr1\ta0007\t812\t3\tlater field"),
            Some(Event::Submit {
                run: "r1".into(),
                array: "a0007".into(),
                job: 812,
                index: 3,
            })
        );
        for line in [
            "",
            "17",
            "17\tsubmit",
            "17\tsubmit\tr1\ta0007\tx\t3",
            "17\tsubmit\tr1\ta0007\t812",
            "17\tlost\tr1\tmaybe",
            "17\tcancel\tr1\t90\tfinished",
            "17\tcancel\tr1\t90_0\tbored",
            "17\trequeue\tr1",
            "now\treset\tr1",
        ] {
            assert_eq!(Event::parse(line), None, "{line:?}");
        }
    }

    #[test]
    fn logs_append_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(read_events(tmp.path()).unwrap(), vec![]);
        append_events(tmp.path(), &[]).unwrap();
        assert!(!events_path(tmp.path()).exists());
        let events = every_event();
        append_events(tmp.path(), &events[..2]).unwrap();
        append_events(tmp.path(), &events[2..]).unwrap();
        assert_eq!(read_events(tmp.path()).unwrap(), events);
    }

    #[test]
    fn charged_losses_reset() {
        let ev = vec![
            Event::Lost {
                run: "a".into(),
                charged: true,
            },
            Event::Lost {
                run: "a".into(),
                charged: false,
            },
            Event::Lost {
                run: "b".into(),
                charged: true,
            },
            Event::Reset { run: "b".into() },
            Event::Cancel {
                run: "a".into(),
                job: 1,
                index: 0,
                reason: CancelReason::Finished,
            },
        ];
        let n = charged_losses(&ev);
        assert_eq!(n.get("a"), Some(&1));
        assert_eq!(n.get("b"), None);
    }
}
