//! The one error type of `stilts-data`: every failure names the file and, for bad rows, the line
//! and the field.

use std::fmt;
use std::path::PathBuf;

/// Where in an input file a problem is: the file, the 1-based line (or JSON record) and the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
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
#[non_exhaustive]
pub enum RowProblem {
    /// A TSV/CSV row has another number of columns than the header (or `columns`).
    #[error("expected {expected} columns, found {found}")]
    ColumnCount {
        /// Columns of the header, or the layout's `columns`.
        expected: usize,
        /// Columns of this row.
        found: usize,
    },
    /// The label is neither a label name of the task nor a key of its `label_map`.
    #[error("unknown label `{value}` (expected one of: {})", allowed.join(", "))]
    UnknownLabel {
        /// The value in the file.
        value: String,
        /// The task's label names.
        allowed: Vec<String>,
    },
    /// A regression target that does not parse as a number.
    #[error("cannot parse `{value}` as a number")]
    BadScore {
        /// The value in the file.
        value: String,
    },
    /// A regression target that is NaN or infinite.
    #[error("score {value} is not finite")]
    NonFiniteScore {
        /// The parsed value.
        value: f64,
    },
    /// The row's bytes are not UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A field the layout names is absent from the row.
    #[error("missing")]
    MissingField,
    /// The id field is empty or blank.
    #[error("empty")]
    EmptyField,
    /// A JSON value has the wrong type (an object where a string is expected, ...).
    #[error("expected a {expected}, found {found}")]
    WrongType {
        /// The JSON type the field needs.
        expected: &'static str,
        /// The JSON type the file has.
        found: &'static str,
    },
    /// A JSON line or record does not parse.
    #[error("invalid JSON: {message}")]
    Json {
        /// The parser's message.
        message: String,
    },
    /// The id was already used by an earlier row of the file.
    #[error("duplicate id `{id}` (first seen on line {first_line})")]
    DuplicateId {
        /// The repeated id.
        id: String,
        /// 1-based line of its first use.
        first_line: u64,
    },
}

/// Errors from loading, sampling, generating or downloading data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file that should exist does not.
    #[error("{}: file not found{}", path.display(), hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    MissingFile {
        /// The file looked for.
        path: PathBuf,
        /// What was expected there (the split and the file names tried), when known.
        hint: Option<String>,
    },
    /// One row is malformed.
    #[error("{location}: {problem}")]
    Row {
        /// File, line and field.
        location: Location,
        /// What is wrong.
        problem: RowProblem,
    },
    /// The header of a TSV/CSV file lacks a column the layout names.
    #[error("{}: header lacks column `{column}` (header: {})", path.display(), header.join(", "))]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column looked for.
        column: String,
        /// The file's header.
        header: Vec<String>,
    },
    /// A file that needs a header has none (it is empty).
    #[error("{}: the file is empty", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// A custom task file parses but is inconsistent (no labels, an unknown metric, ...).
    #[error("{}: invalid task definition: {message}", path.display())]
    TaskConfig {
        /// The task file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A custom task file is not valid TOML or has unknown keys.
    #[error("{}: {source}", path.display())]
    Toml {
        /// The task file.
        path: PathBuf,
        /// The parser's error (names the key and line).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A task name that is neither built in nor a task file.
    #[error("unknown task `{name}` (known: {})", known.join(", "))]
    UnknownTask {
        /// The name given.
        name: String,
        /// The built-in task names.
        known: Vec<String>,
    },
    /// A split name the task does not have.
    #[error("task {task} has no split `{split}` (splits: {})", known.join(", "))]
    UnknownSplit {
        /// The task's name.
        task: String,
        /// The split asked for.
        split: String,
        /// The task's split names.
        known: Vec<String>,
    },
    /// An argument or option that cannot be used (the message says which and why).
    #[error("{0}")]
    Invalid(String),
    /// A tokenizer file that cannot be used.
    #[error("tokenizer {}: {message}", path.display())]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A download failed (after its retries).
    #[error("download {url}: {message}")]
    Download {
        /// The URL.
        url: String,
        /// Why it failed.
        message: String,
    },
    /// A downloaded archive is corrupt or unsafe to unpack.
    #[error("{}: {message}", path.display())]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Downloaded data whose row counts differ from the official release.
    #[error("{task}: the data does not match the official release: {}", problems.join("; "))]
    Verify {
        /// The task.
        task: String,
        /// One message per mismatch (the split, the count found and the official one).
        problems: Vec<String>,
    },
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

/// `Result` with [`DataError`] as its default error.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
