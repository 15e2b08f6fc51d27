//! The transfer matrix (`transfer-<regime>.{md,csv,svg,png}`): per encoder and regime, one row
//! per intermediate task and one column per target; each cell is the gain of the best-on-dev
//! STILTs run over the best-on-dev baseline run, with its paired-bootstrap 95% interval (the
//! comparisons of [`super::bootstrap`]). The heat map colours the gain (blue above the
//! baseline, red below, white none, on one scale for the whole map), prints it with its
//! interval, and outlines a cell whose interval excludes 0. A cell whose intermediate is the
//! target is marked, never trained.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::ReportError;
use super::bootstrap::{Comparison, Status};
use super::figure::FAMILY;
use super::model::{Applies, ConditionKind, ReportModel};
use super::text::{fixed, md, md_table};
use crate::grid::Regime;
use stilts_schema::transfer::{DONE, TransferCell, join_scores, to_csv};

/// One cell of the matrix.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// STILTs minus baseline on the whole dev set, the 95% interval of the resampled
    /// differences and the fraction of resamples STILTs wins.
    Gain {
        diff: f64,
        low: f64,
        high: f64,
        win: f64,
        /// The two runs' scores on the whole dev set.
        baseline: f64,
        stilts: f64,
        /// Every finished restart's dev score of the STILTs condition.
        restarts: Vec<f64>,
    },
    /// The intermediate is the target: nothing is trained.
    Same,
    /// No comparison yet (an unfinished run), or one that failed; the reason.
    Missing(String),
}

/// The matrix of one encoder and regime.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub encoder: String,
    pub regime: Regime,
    /// Intermediate tasks, in the grid's order.
    pub rows: Vec<String>,
    /// Each row's task as the grid names it (`MNLI`, `configs/tasks/mnli_subset.toml`).
    pub tasks: Vec<String>,
    /// Targets, in the report's (GLUE) order.
    pub cols: Vec<String>,
    /// `cells[row][col]`.
    pub cells: Vec<Vec<Cell>>,
}

impl Matrix {
    /// Finished gains out of the cells that can have one.
    pub fn progress(&self) -> (usize, usize) {
        let cells = self.cells.iter().flatten();
        let possible = cells.clone().filter(|c| **c != Cell::Same).count();
        let done = cells.filter(|c| matches!(c, Cell::Gain { .. })).count();
        (done, possible)
    }
}

/// One matrix per encoder and regime of a grid with a baseline and intermediate tasks (none
/// otherwise).
pub fn build(model: &ReportModel<'_>, comparisons: &[Comparison]) -> Vec<Matrix> {
    let intermediates: Vec<_> = model
        .conditions
        .iter()
        .filter(|c| c.kind == ConditionKind::Intermediate)
        .collect();
    if intermediates.is_empty() || !model.conditions.iter().any(|c| c.is_baseline()) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for &regime in &model.regimes {
        for encoder in &model.encoders {
            let cells = intermediates
                .iter()
                .map(|c| {
                    model
                        .targets
                        .iter()
                        .map(|t| match model.applies(c, t) {
                            Applies::Substituted => Cell::Same,
                            Applies::No => Cell::Missing("no cell".into()),
                            Applies::Yes => comparisons
                                .iter()
                                .find(|x| {
                                    x.encoder == *encoder
                                        && x.regime == regime
                                        && x.target == t.name
                                        && Some(x.condition.as_str()) == c.key_for(&t.key)
                                })
                                .map_or_else(
                                    || Cell::Missing("no comparison".into()),
                                    |x| match &x.status {
                                        Status::Done(i) => Cell::Gain {
                                            diff: i.diff,
                                            low: i.low,
                                            high: i.high,
                                            win: i.win,
                                            baseline: i.baseline,
                                            stilts: i.stilts,
                                            restarts: model
                                                .cell(encoder, c, t, regime)
                                                .map(|cell| {
                                                    cell.runs
                                                        .iter()
                                                        .filter_map(|r| {
                                                            r.outcome.as_ref().map(|o| o.dev_score)
                                                        })
                                                        .collect()
                                                })
                                                .unwrap_or_default(),
                                        },
                                        Status::Missing(why) | Status::Failed(why) => {
                                            Cell::Missing(why.clone())
                                        }
                                    },
                                ),
                        })
                        .collect()
                })
                .collect();
            out.push(Matrix {
                encoder: encoder.clone(),
                regime,
                rows: intermediates.iter().map(|c| c.name.clone()).collect(),
                tasks: intermediates
                    .iter()
                    .map(|c| {
                        let file = &model.grid.file.intermediates;
                        file.iter()
                            .find(|m| m.name == c.name)
                            .map_or_else(|| c.name.clone(), |m| m.task.clone())
                    })
                    .collect(),
                cols: model.targets.iter().map(|t| t.name.clone()).collect(),
                cells,
            });
        }
    }
    out
}

/// Points (×100), signed, one decimal.
fn pts(v: f64) -> String {
    let s = fixed(v * 100.0, 1);
    if s.starts_with('-') || s == "0.0" {
        s
    } else {
        format!("+{s}")
    }
}

fn cell_text(cell: &Cell) -> String {
    match cell {
        Cell::Gain {
            diff, low, high, ..
        } => format!("{} [{}, {}]", pts(*diff), pts(*low), pts(*high)),
        Cell::Same => "(same task)".into(),
        Cell::Missing(_) => "…".into(),
    }
}

/// `transfer-<regime>.md`: every encoder's matrix of that regime.
pub fn markdown(grid: &str, matrices: &[Matrix], regime: Regime) -> String {
    let mut s = format!(
        "# {grid}: transfer matrix, `{}` training data\n\nGain of the best-on-dev run with \
         each intermediate task over the best-on-dev baseline run (no intermediate), in \
         points (×100) of the target's GLUE score, with the paired-bootstrap 95% interval \
         (`bootstrap.md`). `…`: not finished.\n",
        regime.label()
    );
    for m in matrices.iter().filter(|m| m.regime == regime) {
        let (done, possible) = m.progress();
        s.push_str(&format!(
            "\n## {}\n\n{done} of {possible} cells.\n\n",
            md(&m.encoder)
        ));
        let mut header = vec!["Intermediate".to_string()];
        header.extend(m.cols.iter().map(|c| md(c)));
        let rows: Vec<Vec<String>> = m
            .rows
            .iter()
            .zip(&m.cells)
            .map(|(r, cells)| {
                let mut row = vec![md(r)];
                row.extend(cells.iter().map(cell_text));
                row
            })
            .collect();
        s.push_str(&md_table(&header, &rows));
    }
    s
}

/// `transfer.csv` ([`stilts_schema::transfer`]): one line per cell of every matrix; scores as
/// fractions (not points).
pub fn csv(matrices: &[Matrix]) -> String {
    let mut cells = Vec::new();
    for m in matrices {
        for ((row, task), row_cells) in m.rows.iter().zip(&m.tasks).zip(&m.cells) {
            for (target, cell) in m.cols.iter().zip(row_cells) {
                let (values, restart_scores, status) = match cell {
                    Cell::Gain {
                        diff,
                        low,
                        high,
                        win,
                        baseline,
                        stilts,
                        restarts,
                    } => (
                        [diff, low, high, win, baseline, stilts].map(|v| Some(*v)),
                        join_scores(restarts),
                        DONE.to_string(),
                    ),
                    Cell::Same => ([None; 6], String::new(), "same task".into()),
                    Cell::Missing(why) => ([None; 6], String::new(), why.clone()),
                };
                let [gain, ci_low, ci_high, p_win, baseline, stilts] = values;
                cells.push(TransferCell {
                    encoder: m.encoder.clone(),
                    regime: m.regime.label(),
                    intermediate: row.clone(),
                    intermediate_task: task.clone(),
                    target: target.clone(),
                    gain,
                    ci_low,
                    ci_high,
                    p_win,
                    baseline,
                    stilts,
                    restart_scores,
                    status,
                });
            }
        }
    }
    to_csv(&cells)
}

const CELL_W: i32 = 150;
const CELL_H: i32 = 44;
const LEFT: i32 = 170;
const TOP: i32 = 64;

/// The picture's size in pixels.
pub fn size(m: &Matrix) -> (u32, u32) {
    let w = LEFT + CELL_W * m.cols.len() as i32 + 20;
    let h = TOP + CELL_H * m.rows.len().max(1) as i32 + 40;
    (w.max(360) as u32, h as u32)
}

/// White at 0, blue (up) or red (down) at `|v| = scale`.
fn heat(v: f64, scale: f64) -> RGBColor {
    let t = if scale > 0.0 {
        (v.abs() / scale).min(1.0)
    } else {
        0.0
    };
    let (r, g, b) = if v >= 0.0 {
        (33.0, 102.0, 172.0)
    } else {
        (178.0, 24.0, 43.0)
    };
    let mix = |c: f64| (255.0 + (c - 255.0) * t).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

fn style(size: u32, colour: &RGBColor, h: HPos) -> TextStyle<'static> {
    (FAMILY, size)
        .into_font()
        .color(colour)
        .pos(Pos::new(h, VPos::Center))
}

/// Draws the heat map on `root` (any plotters backend).
pub fn draw<DB: DrawingBackend>(m: &Matrix, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let scale = m
        .cells
        .iter()
        .flatten()
        .filter_map(|c| match c {
            Cell::Gain { diff, .. } => Some(diff.abs()),
            _ => None,
        })
        .fold(0.0, f64::max);
    let title = format!(
        "{}, {} training data: gain over no intermediate (points, 95% CI); colour scale ±{}",
        m.encoder,
        m.regime.label(),
        fixed(scale * 100.0, 1)
    );
    root.draw(&Text::new(title, (10, 16), style(13, &BLACK, HPos::Left)))
        .map_err(e)?;
    for (j, col) in m.cols.iter().enumerate() {
        let x = LEFT + CELL_W * j as i32 + CELL_W / 2;
        root.draw(&Text::new(
            col.clone(),
            (x, TOP - 14),
            style(13, &BLACK, HPos::Center),
        ))
        .map_err(e)?;
    }
    for (i, (row, cells)) in m.rows.iter().zip(&m.cells).enumerate() {
        let y = TOP + CELL_H * i as i32;
        root.draw(&Text::new(
            row.clone(),
            (LEFT - 8, y + CELL_H / 2),
            style(13, &BLACK, HPos::Right),
        ))
        .map_err(e)?;
        for (j, cell) in cells.iter().enumerate() {
            let x = LEFT + CELL_W * j as i32;
            let (fill, strong) = match cell {
                Cell::Gain {
                    diff, low, high, ..
                } => (heat(*diff, scale), *low > 0.0 || *high < 0.0),
                Cell::Same => (RGBColor(225, 225, 225), false),
                Cell::Missing(_) => (WHITE, false),
            };
            // Dark cells get white text.
            let luma =
                0.299 * f64::from(fill.0) + 0.587 * f64::from(fill.1) + 0.114 * f64::from(fill.2);
            let (ink, soft) = if luma < 130.0 {
                (WHITE, RGBColor(235, 235, 235))
            } else {
                (BLACK, RGBColor(40, 40, 40))
            };
            let corners = [(x + 1, y + 1), (x + CELL_W - 1, y + CELL_H - 1)];
            root.draw(&Rectangle::new(corners, fill.filled()))
                .map_err(e)?;
            let border = if strong {
                BLACK.stroke_width(2)
            } else {
                RGBColor(200, 200, 200).stroke_width(1)
            };
            root.draw(&Rectangle::new(corners, border)).map_err(e)?;
            let (line1, line2) = match cell {
                Cell::Gain {
                    diff, low, high, ..
                } => (pts(*diff), format!("[{}, {}]", pts(*low), pts(*high))),
                Cell::Same => ("same task".into(), String::new()),
                Cell::Missing(_) => ("…".into(), String::new()),
            };
            let cx = x + CELL_W / 2;
            root.draw(&Text::new(
                line1,
                (cx, y + 15),
                style(13, &ink, HPos::Center),
            ))
            .map_err(e)?;
            if !line2.is_empty() {
                root.draw(&Text::new(
                    line2,
                    (cx, y + 31),
                    style(11, &soft, HPos::Center),
                ))
                .map_err(e)?;
            }
        }
    }
    let (done, possible) = m.progress();
    let foot = format!("{done} of {possible} cells; outlined: the interval excludes 0");
    let y = TOP + CELL_H * m.rows.len().max(1) as i32 + 18;
    root.draw(&Text::new(foot, (10, y), style(11, &BLACK, HPos::Left)))
        .map_err(e)?;
    Ok(())
}

/// The heat map as SVG text (no font needed).
pub fn svg(m: &Matrix) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size(m)).into_drawing_area();
        draw(m, &root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

/// Renders the PNG to `path` atomically. Needs a registered font
/// ([`super::figure::register_font`]).
pub fn write_png(m: &Matrix, path: &std::path::Path) -> Result<(), ReportError> {
    stilts_io::fs::persist_with(path, |tmp| {
        let root = BitMapBackend::new(tmp, size(m)).into_drawing_area();
        draw(m, &root)
            .and_then(|()| root.present().map_err(|e| e.to_string()))
            .map_err(|message| ReportError::Plot {
                path: path.to_path_buf(),
                message,
            })
    })
}

/// The file stem of a matrix's pictures: `transfer-<regime>` for a grid of one encoder, else
/// with the encoder's name (made safe for a file name).
pub fn stem(m: &Matrix, encoders: usize) -> String {
    let regime = m.regime.label();
    if encoders <= 1 {
        return format!("transfer-{regime}");
    }
    let safe: String = m
        .encoder
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("transfer-{regime}-{safe}")
}
