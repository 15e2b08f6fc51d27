//! Reports of a grid (`cargo xtask report <grid>`): the paper's tables, Figure 1, degenerate-run
//! counts and paired-bootstrap intervals, rendered from the registry's runs into
//! `<grid output>/reports/`.
//!
//! | file | what |
//! |---|---|
//! | `table-<regime>.md`, `.tex`, `.csv` | Tables 1/2: best-on-dev restart per cell, Avg, A.Ex, Best of Each; mean ± std over restarts |
//! | `figure1.svg`, `figure1.png` | dev scores across restarts per target, with and without STILTs |
//! | `degenerate.md`, `.csv` | degenerate runs / restarts per cell |
//! | `bootstrap.md`, `.csv` | STILTs − baseline, paired bootstrap 95% intervals |
//! | `transfer-<regime>.md`, `.svg`, `.png`; `transfer.csv` | the transfer matrix: intermediates × targets, gain with its interval, as a heat map |
//!
//! Every file is written atomically. The report renders on partial grids: missing cells show
//! `—` and the tables say how many runs are missing.

pub mod bootstrap;
pub mod degenerate;
pub mod figure;
pub mod matrix;
pub mod methods;
pub mod model;
pub mod table;
pub mod text;

use std::path::{Path, PathBuf};

use crate::grid::{FULL_METHOD, GridError, LoadedGrid, RunRow, write_atomic};

pub use model::ReportModel;

/// Errors of rendering a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing the report: {source}")]
    Write {
        #[source]
        source: GridError,
    },
    #[error("reading the {task} dev set: {source}")]
    Data {
        task: String,
        #[source]
        source: Box<stilts_data::DataError>,
    },
    #[error("{context}: {source}")]
    Metric {
        context: String,
        #[source]
        source: stilts_data::metrics::MetricError,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("drawing {path}: {message}")]
    Plot { path: PathBuf, message: String },
    #[error(
        "no TrueType font for the PNG's text (tried $STILTS_FONT, then {}); install one \
         (`apt-get install fonts-dejavu-core`) or point STILTS_FONT at a .ttf file",
        tried_list(tried)
    )]
    NoFont { tried: Vec<PathBuf> },
}

impl From<stilts_io::fs::FsError> for ReportError {
    fn from(e: stilts_io::fs::FsError) -> Self {
        ReportError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

fn tried_list(tried: &[PathBuf]) -> String {
    if tried.is_empty() {
        return "no candidates".into();
    }
    let shown: Vec<String> = tried
        .iter()
        .take(3)
        .map(|p| p.display().to_string())
        .collect();
    if tried.len() > 3 {
        format!("{} and {} more", shown.join(", "), tried.len() - 3)
    } else {
        shown.join(", ")
    }
}

impl ReportError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        ReportError::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// How to render.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// Bootstrap resamples (`[report] bootstrap`, default 1000); 0 skips the bootstrap.
    pub bootstrap: usize,
    /// Seed of the bootstrap's resampling streams (the grid's seed).
    pub seed: u64,
    /// Fonts tried, in order, for the PNG's text ([`figure::font_candidates`]).
    pub fonts: Vec<PathBuf>,
}

impl ReportOptions {
    /// The grid's `[report]` options and seed, fonts from [`figure::font_candidates`].
    pub fn from_grid(grid: &LoadedGrid) -> ReportOptions {
        ReportOptions {
            bootstrap: grid.file.report.bootstrap.unwrap_or(1000),
            seed: grid.file.seed,
            fonts: figure::font_candidates(),
        }
    }
}

/// What [`render_all`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSummary {
    /// Every file written, in order.
    pub files: Vec<PathBuf>,
    /// Target runs the grid plans, and how many have results.
    pub planned: usize,
    pub finished: usize,
    /// Things the report could not do (the PNG without a font, a comparison whose result file
    /// or dev set could not be read); the rest was written.
    pub warnings: Vec<String>,
    /// A short markdown summary for the terminal: progress, the main tables, the files.
    pub markdown: String,
}

/// Renders every report file of `grid` from `rows` (`Registry::rows`) into `out_dir`, with
/// [`ReportOptions::from_grid`].
pub fn render_all(
    grid: &LoadedGrid,
    rows: &[RunRow],
    out_dir: &Path,
) -> Result<ReportSummary, ReportError> {
    render_all_with(grid, rows, out_dir, &ReportOptions::from_grid(grid))
}

/// Where report files go, and what has been written.
struct Writer<'a> {
    out_dir: &'a Path,
    files: Vec<PathBuf>,
    warnings: Vec<String>,
}

impl Writer<'_> {
    fn text(&mut self, file: &str, text: &str) -> Result<(), ReportError> {
        let path = self.out_dir.join(file);
        write_atomic(&path, text.as_bytes()).map_err(|source| ReportError::Write { source })?;
        self.files.push(path);
        Ok(())
    }
}

/// [`render_all`] with explicit options.
pub fn render_all_with(
    grid: &LoadedGrid,
    rows: &[RunRow],
    out_dir: &Path,
    opts: &ReportOptions,
) -> Result<ReportSummary, ReportError> {
    let name = &grid.file.name;
    let mut w = Writer {
        out_dir,
        files: Vec::new(),
        warnings: Vec::new(),
    };
    // Each method's view of the grid and its rows, full fine-tuning first; one report model
    // each, rendered alone and then side by side.
    let views: Vec<(String, LoadedGrid, Vec<RunRow>)> = grid
        .method_names()
        .into_iter()
        .filter_map(|method| {
            let view = grid.for_method(&method)?;
            let of_method = rows
                .iter()
                .filter(|r| r.meta.method == method)
                .cloned()
                .collect();
            Some((method, view, of_method))
        })
        .collect();
    let models: Vec<(&str, ReportModel<'_>)> = views
        .iter()
        .map(|(m, view, rows)| (m.as_str(), ReportModel::new(view, rows)))
        .collect();
    let mut tables = Vec::new();
    for (method, model) in &models {
        let suffix = if *method == FULL_METHOD {
            String::new()
        } else {
            format!("-{method}")
        };
        let rendered = render_method(&mut w, model, &suffix, opts)?;
        if suffix.is_empty() {
            tables = rendered;
        }
    }
    if models.len() > 1 {
        w.text("methods.md", &methods::markdown(name, &models))?;
        w.text("methods.csv", &methods::csv(&models))?;
    }
    let Some((_, model)) = models.first() else {
        return Err(ReportError::invalid(
            &grid.source,
            "the grid has no methods",
        ));
    };
    let Writer {
        files, warnings, ..
    } = w;
    let (planned, finished) = model.progress(None);
    let (deg, _) = degenerate::totals(model);
    let mut md = format!(
        "## Report: {name}\n\n{finished} of {planned} target runs finished{}; {deg} degenerate.\n",
        if finished < planned {
            format!(" ({} missing)", planned - finished)
        } else {
            String::new()
        }
    );
    for t in &tables {
        md.push_str(&format!("\n### `{}` training data\n\n", t.regime.label()));
        md.push_str(&t.markdown_table());
    }
    md.push_str(&format!("\nWritten to {}:\n", out_dir.display()));
    for f in &files {
        if let Some(n) = f.file_name() {
            md.push_str(&format!("- {}\n", n.to_string_lossy()));
        }
    }
    if !warnings.is_empty() {
        md.push_str("\nWarnings:\n");
        for w in &warnings {
            md.push_str(&format!("- {w}\n"));
        }
    }
    Ok(ReportSummary {
        files,
        planned,
        finished,
        warnings,
        markdown: md,
    })
}

/// Every report file of one method's runs, each named with `suffix` before its extension
/// (none for full fine-tuning, `-<method>` for another method). Returns the paper tables.
fn render_method(
    w: &mut Writer<'_>,
    model: &ReportModel<'_>,
    suffix: &str,
    opts: &ReportOptions,
) -> Result<Vec<table::Table>, ReportError> {
    let name = &model.grid.file.name;
    let mut tables = Vec::new();
    for &regime in &model.regimes {
        let t = table::build(model, regime);
        let label = regime.label();
        w.text(&format!("table-{label}{suffix}.md"), &t.markdown(name))?;
        w.text(&format!("table-{label}{suffix}.tex"), &t.latex(name))?;
        w.text(
            &format!("table-{label}{suffix}.csv"),
            &table::csv(model, regime),
        )?;
        tables.push(t);
    }
    w.text(
        &format!("degenerate{suffix}.md"),
        &degenerate::markdown(model),
    )?;
    w.text(&format!("degenerate{suffix}.csv"), &degenerate::csv(model))?;
    let fig = figure::build(model);
    let fig_stem = format!("figure1{suffix}");
    let svg = figure::svg(&fig).map_err(|message| ReportError::Plot {
        path: w.out_dir.join(format!("{fig_stem}.svg")),
        message,
    })?;
    w.text(&format!("{fig_stem}.svg"), &svg)?;
    let png = w.out_dir.join(format!("{fig_stem}.png"));
    match figure::register_font(&opts.fonts).and_then(|_| figure::write_png(&fig, &png)) {
        Ok(()) => w.files.push(png),
        Err(e @ ReportError::NoFont { .. }) => {
            w.warnings.push(format!("{fig_stem}.png not written: {e}"));
        }
        Err(e) => return Err(e),
    }
    let comparisons = if opts.bootstrap > 0 {
        bootstrap::compare_all(model, opts.bootstrap, opts.seed)
    } else {
        Vec::new()
    };
    for c in &comparisons {
        if let bootstrap::Status::Failed(why) = &c.status {
            w.warnings.push(format!(
                "bootstrap {} on {} ({}{suffix}): {why}",
                c.label,
                c.target,
                c.regime.label()
            ));
        }
    }
    w.text(
        &format!("bootstrap{suffix}.md"),
        &bootstrap::markdown(model, &comparisons, opts.bootstrap),
    )?;
    w.text(
        &format!("bootstrap{suffix}.csv"),
        &bootstrap::csv(&comparisons),
    )?;
    let matrices = if opts.bootstrap > 0 {
        matrix::build(model, &comparisons)
    } else {
        Vec::new()
    };
    if matrices.is_empty() {
        return Ok(tables);
    }
    for &regime in &model.regimes {
        let text = matrix::markdown(name, &matrices, regime);
        w.text(&format!("transfer-{}{suffix}.md", regime.label()), &text)?;
    }
    w.text(&format!("transfer{suffix}.csv"), &matrix::csv(&matrices))?;
    let font = figure::register_font(&opts.fonts);
    for m in &matrices {
        let stem = format!("{}{suffix}", matrix::stem(m, model.encoders.len()));
        let svg = matrix::svg(m).map_err(|message| ReportError::Plot {
            path: w.out_dir.join(format!("{stem}.svg")),
            message,
        })?;
        w.text(&format!("{stem}.svg"), &svg)?;
        if font.is_ok() {
            let png = w.out_dir.join(format!("{stem}.png"));
            matrix::write_png(m, &png)?;
            w.files.push(png);
        }
    }
    if let Err(e) = font {
        w.warnings
            .push(format!("transfer{suffix} PNGs not written: {e}"));
    }
    Ok(tables)
}
