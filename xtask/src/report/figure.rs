//! The paper's Figure 1: the distribution of dev scores across restarts per target task, with
//! and without STILTs, one panel per encoder and data regime. Each restart is a cross (jittered
//! deterministically); beside them a bar shows the mean ± 1 standard deviation.
//!
//! Everything is drawn from plotters primitives and `Text` elements placed by hand (no chart
//! mesh), so the SVG needs no font: the SVG backend writes text elements as they are, and only
//! text *measurement* (which a mesh needs) would. The PNG rasterizes text through plotters'
//! `ab_glyph` feature, which needs a TrueType font registered at runtime ([`register_font`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use stilts_data::rng::SplitMix64;

use super::ReportError;
use super::model::{Applies, ReportModel, Stats};

/// The font family every text element names (registered for the PNG).
pub const FAMILY: &str = "sans-serif";

/// One condition's scores on one target, ×100, by restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Index of the condition in the grid's condition order (its colour).
    pub condition: usize,
    pub values: Vec<f64>,
}

/// One target's series.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub target: String,
    pub series: Vec<Series>,
}

/// One encoder × regime.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub groups: Vec<Group>,
}

/// The figure's data.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub panels: Vec<Panel>,
    /// Condition labels, by condition index (the legend).
    pub legend: Vec<String>,
}

const PANEL_H: i32 = 300;
const TOP: i32 = 56;
const BOTTOM: i32 = 34;
const LEFT: i32 = 66;
const RIGHT: i32 = 18;
const SLOT: i32 = 34;
const GAP: i32 = 26;

const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

fn colour(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// The figure's data from the model: every condition with a cell of its own in a target's
/// column (substituted cells are the baseline's runs, shown once).
pub fn build(model: &ReportModel<'_>) -> Figure {
    let mut panels = Vec::new();
    for enc in &model.encoders {
        for &regime in &model.regimes {
            let groups = model
                .targets
                .iter()
                .map(|t| Group {
                    target: t.name.clone(),
                    series: model
                        .conditions
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| model.applies(c, t) == Applies::Yes)
                        .map(|(i, c)| Series {
                            condition: i,
                            values: model
                                .cell(enc, c, t, regime)
                                .map(|cell| cell.scores().iter().map(|v| v * 100.0).collect())
                                .unwrap_or_default(),
                        })
                        .collect(),
                })
                .collect();
            let title = match regime.train_examples() {
                None => format!("{enc}: full training data"),
                Some(_) => format!("{enc}: {} training examples", regime.label()),
            };
            panels.push(Panel { title, groups });
        }
    }
    let legend = model
        .conditions
        .iter()
        .map(|c| match c.kind {
            super::model::ConditionKind::Baseline => "no intermediate (baseline)".to_string(),
            _ => format!("STILTs: {}", c.short_label()),
        })
        .collect();
    Figure { panels, legend }
}

impl Figure {
    /// Pixel size.
    pub fn size(&self) -> (u32, u32) {
        let plot_w = self
            .panels
            .iter()
            .map(|p| {
                p.groups
                    .iter()
                    .map(|g| g.series.len().max(1) as i32 * SLOT + GAP)
                    .sum::<i32>()
            })
            .max()
            .unwrap_or(0);
        let legend_w: i32 = self.legend.iter().map(|l| legend_item_width(l)).sum();
        let w = (LEFT + RIGHT + plot_w)
            .max(legend_w + LEFT + RIGHT)
            .max(520);
        (w as u32, (PANEL_H * self.panels.len().max(1) as i32) as u32)
    }
}

/// Width a legend item takes (text width estimated at 7 px per character: no font needed).
fn legend_item_width(label: &str) -> i32 {
    26 + 7 * label.chars().count() as i32 + 18
}

/// A step of 1, 2 or 5 times a power of ten near `span / 5`.
fn nice_step(span: f64) -> f64 {
    let raw = (span / 5.0).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let r = raw / mag;
    mag * if r < 1.5 {
        1.0
    } else if r < 3.5 {
        2.0
    } else if r < 7.5 {
        5.0
    } else {
        10.0
    }
}

/// Deterministic jitter in `[-1, 1)` for a point.
fn jitter(panel: usize, group: usize, condition: usize, restart: usize) -> f64 {
    let key = ((panel as u64) << 48)
        ^ ((group as u64) << 32)
        ^ ((condition as u64) << 16)
        ^ restart as u64;
    let x = SplitMix64::new(key ^ 0x5354_494c_5473).next_u64();
    (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

type DrawResult = Result<(), String>;

fn text_style(size: u32, h: HPos, v: VPos) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK).pos(Pos::new(h, v))
}

/// Draws the figure on `root` (any plotters backend).
pub fn draw<DB: DrawingBackend>(fig: &Figure, root: &DrawingArea<DB, Shift>) -> DrawResult {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    if fig.panels.is_empty() {
        root.draw(&Text::new(
            "no regimes or encoders",
            (20, 20),
            text_style(14, HPos::Left, VPos::Top),
        ))
        .map_err(e)?;
        return Ok(());
    }
    let areas = root.split_evenly((fig.panels.len(), 1));
    for (pi, (panel, area)) in fig.panels.iter().zip(&areas).enumerate() {
        draw_panel(fig, pi, panel, area)?;
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    fig: &Figure,
    pi: usize,
    panel: &Panel,
    area: &DrawingArea<DB, Shift>,
) -> DrawResult {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let (x0, x1, y0, y1) = (LEFT, w - RIGHT, TOP, h - BOTTOM);
    area.draw(&Text::new(
        panel.title.clone(),
        (LEFT, 8),
        text_style(16, HPos::Left, VPos::Top),
    ))
    .map_err(e)?;
    // Legend: the conditions of this panel, in order.
    let mut present: Vec<usize> = panel
        .groups
        .iter()
        .flat_map(|g| g.series.iter().map(|s| s.condition))
        .collect();
    present.sort_unstable();
    present.dedup();
    let mut lx = LEFT;
    for &c in &present {
        let label = fig.legend.get(c).cloned().unwrap_or_default();
        let col = colour(c);
        area.draw(&Cross::new((lx + 6, 36), 5, col.stroke_width(2)))
            .map_err(e)?;
        area.draw(&Text::new(
            label.clone(),
            (lx + 18, 36),
            text_style(13, HPos::Left, VPos::Center),
        ))
        .map_err(e)?;
        lx += legend_item_width(&label);
    }
    // Scale.
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for s in panel.groups.iter().flat_map(|g| &g.series) {
        for &v in s.values.iter().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if let Some(st) = Stats::of(&s.values)
            && st.std.is_finite()
        {
            lo = lo.min(st.mean - st.std);
            hi = hi.max(st.mean + st.std);
        }
    }
    let empty = !lo.is_finite();
    if empty {
        (lo, hi) = (0.0, 100.0);
    }
    if hi - lo < 2.0 {
        let mid = (hi + lo) / 2.0;
        (lo, hi) = (mid - 1.0, mid + 1.0);
    }
    let pad = (hi - lo) * 0.06;
    let step = nice_step(hi - lo + 2.0 * pad);
    let (lo, hi) = (
        ((lo - pad) / step).floor() * step,
        ((hi + pad) / step).ceil() * step,
    );
    let y_of = |v: f64| y1 - ((v - lo) / (hi - lo) * (y1 - y0) as f64).round() as i32;
    // Grid lines and y ticks.
    let grid = RGBColor(225, 225, 225);
    let mut t = lo;
    let decimals = if step < 1.0 { 1 } else { 0 };
    while t <= hi + step * 1e-6 {
        let y = y_of(t);
        area.draw(&PathElement::new(vec![(x0, y), (x1, y)], grid))
            .map_err(e)?;
        area.draw(&PathElement::new(vec![(x0 - 4, y), (x0, y)], BLACK))
            .map_err(e)?;
        area.draw(&Text::new(
            format!("{t:.decimals$}"),
            (x0 - 7, y),
            text_style(12, HPos::Right, VPos::Center),
        ))
        .map_err(e)?;
        t += step;
    }
    area.draw(&Text::new(
        "dev score (×100)",
        (14, (y0 + y1) / 2),
        text_style(12, HPos::Center, VPos::Center).transform(FontTransform::Rotate270),
    ))
    .map_err(e)?;
    // Groups, spread over the width (the figure is as wide as its widest panel or legend).
    let needed: i32 = panel
        .groups
        .iter()
        .map(|g| g.series.len().max(1) as i32 * SLOT + GAP)
        .sum();
    let gap = GAP + ((x1 - x0) - needed).max(0) / panel.groups.len().max(1) as i32;
    let mut gx = x0 + gap / 2;
    for (gi, g) in panel.groups.iter().enumerate() {
        let gw = g.series.len().max(1) as i32 * SLOT;
        if gi > 0 {
            let sep = gx - gap / 2;
            area.draw(&PathElement::new(vec![(sep, y0), (sep, y1)], grid))
                .map_err(e)?;
        }
        area.draw(&Text::new(
            g.target.clone(),
            (gx + gw / 2, y1 + 8),
            text_style(13, HPos::Center, VPos::Top),
        ))
        .map_err(e)?;
        for (si, s) in g.series.iter().enumerate() {
            let cx = gx + si as i32 * SLOT + SLOT / 2;
            let col = colour(s.condition);
            for (r, &v) in s.values.iter().enumerate() {
                if !v.is_finite() {
                    continue;
                }
                let dx = (jitter(pi, gi, s.condition, r) * 7.0).round() as i32;
                area.draw(&Cross::new((cx - 4 + dx, y_of(v)), 4, col.stroke_width(1)))
                    .map_err(e)?;
            }
            if let Some(st) = Stats::of(&s.values)
                && st.mean.is_finite()
            {
                let bx = cx + 10;
                let (ym, ya, yb) = (
                    y_of(st.mean),
                    y_of(st.mean + st.std),
                    y_of(st.mean - st.std),
                );
                let bar = BLACK.stroke_width(1);
                area.draw(&PathElement::new(vec![(bx, ya), (bx, yb)], bar))
                    .map_err(e)?;
                for y in [ya, yb] {
                    area.draw(&PathElement::new(vec![(bx - 3, y), (bx + 3, y)], bar))
                        .map_err(e)?;
                }
                area.draw(&PathElement::new(
                    vec![(bx - 5, ym), (bx + 5, ym)],
                    col.stroke_width(3),
                ))
                .map_err(e)?;
            }
        }
        gx += gw + gap;
    }
    if empty {
        area.draw(&Text::new(
            "no finished runs",
            ((x0 + x1) / 2, (y0 + y1) / 2),
            text_style(14, HPos::Center, VPos::Center),
        ))
        .map_err(e)?;
    }
    // Axes.
    area.draw(&PathElement::new(vec![(x0, y0), (x0, y1), (x1, y1)], BLACK))
        .map_err(e)?;
    Ok(())
}

/// The figure as SVG text (no font needed).
pub fn svg(fig: &Figure) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, fig.size()).into_drawing_area();
        draw(fig, &root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

/// Renders the PNG to `path` atomically ([`stilts_io::fs::persist_with`]). Needs a registered
/// font ([`register_font`]).
pub fn write_png(fig: &Figure, path: &Path) -> Result<(), ReportError> {
    stilts_io::fs::persist_with(path, |tmp| {
        let root = BitMapBackend::new(tmp, fig.size()).into_drawing_area();
        draw(fig, &root)
            .and_then(|()| root.present().map_err(|e| e.to_string()))
            .map_err(|message| ReportError::Plot {
                path: path.to_path_buf(),
                message,
            })
    })
}

/// Where fonts are looked for, in order: `$STILTS_FONT`, DejaVu Sans, Liberation Sans, then
/// every `*.ttf` under `/usr/share/fonts`.
pub fn font_candidates() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(p) = std::env::var_os("STILTS_FONT") {
        v.push(PathBuf::from(p));
    }
    v.push("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into());
    v.push("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf".into());
    let mut found = Vec::new();
    find_ttf(Path::new("/usr/share/fonts"), 0, &mut found);
    found.sort();
    v.extend(found);
    v
}

fn find_ttf(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > 6 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() {
            find_ttf(&p, depth + 1, out);
        } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("ttf")) {
            out.push(p);
        }
    }
}

/// The font registered for [`FAMILY`] (plotters keeps one per family, process-wide).
static REGISTERED: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Registers the first readable TrueType font of `candidates` as [`FAMILY`] and returns its
/// path; [`ReportError::NoFont`] when none is.
pub fn register_font(candidates: &[PathBuf]) -> Result<PathBuf, ReportError> {
    let mut registered = REGISTERED.lock().unwrap_or_else(|p| p.into_inner());
    for path in candidates {
        if registered.as_deref() == Some(path.as_path()) {
            return Ok(path.clone());
        }
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        // plotters keeps a `'static` reference; one font per distinct path is leaked.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        if plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_ok() {
            *registered = Some(path.clone());
            return Ok(path.clone());
        }
    }
    Err(ReportError::NoFont {
        tried: candidates.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In this test binary no font is ever registered: the SVG must not need one.
    #[test]
    fn svg_needs_no_font() {
        let fig = Figure {
            panels: vec![Panel {
                title: "BERT: full training data".into(),
                groups: vec![Group {
                    target: "RTE".into(),
                    series: vec![
                        Series {
                            condition: 0,
                            values: vec![60.0, 65.0, 52.0],
                        },
                        Series {
                            condition: 1,
                            values: vec![70.0, 71.5],
                        },
                    ],
                }],
            }],
            legend: vec!["baseline".into(), "STILTs: MNLI".into()],
        };
        let s = svg(&fig).unwrap();
        assert!(s.starts_with("<svg"), "{}", &s[..100.min(s.len())]);
        assert!(s.contains("\nRTE\n</text>"), "{s}");
        assert!(s.contains("STILTs: MNLI"));
        assert!(s.contains("font-family=\"sans-serif\""));
    }

    #[test]
    fn steps_are_nice() {
        assert_eq!(nice_step(10.0), 2.0);
        assert_eq!(nice_step(40.0), 10.0);
        assert_eq!(nice_step(3.0), 0.5);
        assert!((-1.0..1.0).contains(&jitter(0, 1, 2, 3)));
    }
}
