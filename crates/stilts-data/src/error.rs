//! The one error type of `stilts-data`: every failure names the file and, for bad rows, the line
//! and the field.

use std::fmt;
use std::path::PathBuf;

/// Where in an input file a problem is: the file, the 1-based line (or JSON record) and the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    /// 1-based line number; for a JSON object of records, the line where the record starts.
    pub line: u64,
    /// The column or key, when the problem is in one field.
    pub field: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)?;
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        Ok(())
    }
}

/// What is wrong with one row.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RowProblem {
    #[error("expected {expected} columns, found {found}")]
    ColumnCount { expected: usize, found: usize },
    #[error("unknown label `{value}` (expected one of: {})", allowed.join(", "))]
    UnknownLabel { value: String, allowed: Vec<String> },
    #[error("cannot parse `{value}` as a number")]
    BadScore { value: String },
    #[error("score {value} is not finite")]
    NonFiniteScore { value: f64 },
    #[error("invalid UTF-8")]
    InvalidUtf8,
    #[error("missing")]
    MissingField,
    #[error("empty")]
    EmptyField,
    #[error("expected a {expected}, found {found}")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    #[error("invalid JSON: {message}")]
    Json { message: String },
    #[error("duplicate id `{id}` (first seen on line {first_line})")]
    DuplicateId { id: String, first_line: u64 },
}

/// Errors from loading, sampling, generating or downloading data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: file not found{}", path.display(), hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    MissingFile { path: PathBuf, hint: Option<String> },
    #[error("{location}: {problem}")]
    Row {
        location: Location,
        problem: RowProblem,
    },
    #[error("{}: header lacks column `{column}` (header: {})", path.display(), header.join(", "))]
    MissingColumn {
        path: PathBuf,
        column: String,
        header: Vec<String>,
    },
    #[error("{}: the file is empty", path.display())]
    EmptyFile { path: PathBuf },
    #[error("{}: invalid task definition: {message}", path.display())]
    TaskConfig { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Toml {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("unknown task `{name}` (known: {})", known.join(", "))]
    UnknownTask { name: String, known: Vec<String> },
    #[error("task {task} has no split `{split}` (splits: {})", known.join(", "))]
    UnknownSplit {
        task: String,
        split: String,
        known: Vec<String>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("tokenizer {}: {message}", path.display())]
    Tokenizer { path: PathBuf, message: String },
    #[error("download {url}: {message}")]
    Download { url: String, message: String },
    #[error("{}: {message}", path.display())]
    Archive { path: PathBuf, message: String },
    #[error("{task}: the data does not match the official release: {}", problems.join("; "))]
    Verify { task: String, problems: Vec<String> },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn row(
        path: impl Into<PathBuf>,
        line: u64,
        field: Option<&str>,
        problem: RowProblem,
    ) -> Self {
        DataError::Row {
            location: Location {
                path: path.into(),
                line,
                field: field.map(str::to_owned),
            },
            problem,
        }
    }

    /// The row location, when the error is about one row.
    pub fn location(&self) -> Option<&Location> {
        match self {
            DataError::Row { location, .. } => Some(location),
            _ => None,
        }
    }
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;
