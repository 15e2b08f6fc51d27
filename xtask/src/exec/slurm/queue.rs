//! `squeue`'s output: the format the driver asks for and its parsing into [`QueueEntry`].

/// `squeue -o`: `<array job>|<task index>|<state>|<reason>|<dependency>|<name>`. The name goes
/// last: it is the only field that may hold a `|`.
pub(super) const SQUEUE_FORMAT: &str = "%F|%K|%T|%r|%E|%j";

/// One line of `squeue -r`: one job, or one task of an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// The array's job id (`%F`; the job id for a job that is not an array).
    pub job: u64,
    /// The array task index (`%K`).
    pub index: Option<u32>,
    /// `PENDING`, `RUNNING`, `COMPLETING`, ...
    pub state: String,
    /// Why it is in that state (`Dependency`, `DependencyNeverSatisfied`, `BeginTime`, ...).
    pub reason: String,
    /// Its remaining dependencies (`%E`: `aftercorr:812_*(unfulfilled)`, `(null)`).
    pub dependency: String,
    pub name: String,
}

impl QueueEntry {
    /// The array job of an `aftercorr` dependency still listed.
    pub fn after(&self) -> Option<u64> {
        let rest = &self.dependency[self.dependency.find("aftercorr:")? + "aftercorr:".len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    }

    /// `<job>_<index>` (or `<job>`), as `scancel` and `scontrol` take it.
    pub fn slurm_id(&self) -> String {
        match self.index {
            Some(i) => format!("{}_{i}", self.job),
            None => self.job.to_string(),
        }
    }
}

/// One line of [`SQUEUE_FORMAT`]; `None` when it is not one.
pub(super) fn parse_squeue_line(line: &str) -> Option<QueueEntry> {
    let mut parts = line.trim().splitn(6, '|');
    let job = parts.next()?.trim().parse().ok()?;
    let index = match parts.next()?.trim() {
        "N/A" | "" => None,
        k => Some(k.parse().ok()?),
    };
    Some(QueueEntry {
        job,
        index,
        state: parts.next()?.trim().to_string(),
        reason: parts.next()?.trim().to_string(),
        dependency: parts.next()?.trim().to_string(),
        name: parts.next()?.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_parse() {
        let e = parse_squeue_line(
            "812|3|PENDING|Dependency|aftercorr:80_*(unfulfilled)|stilts-g-1a2b3c4d-a0002",
        )
        .unwrap();
        assert_eq!(e.job, 812);
        assert_eq!(e.after(), Some(80));
        assert_eq!(e.index, Some(3));
        assert_eq!(e.slurm_id(), "812_3");
        assert_eq!(e.name, "stilts-g-1a2b3c4d-a0002");
        let e = parse_squeue_line("9|N/A|RUNNING|None|(null)|a|b").unwrap();
        assert_eq!(e.index, None);
        assert_eq!(e.after(), None);
        assert_eq!(e.name, "a|b");
        assert!(parse_squeue_line("garbage").is_none());
    }
}
