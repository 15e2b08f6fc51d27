//! A run's curves as one SVG beside its results (`curves.svg`): the training loss per logged
//! window of steps (and the auxiliary loss, when the run has one) on the left, the dev score
//! per epoch on the right. Rewritten after every epoch, so a run in progress shows what it has
//! done so far.
//!
//! Drawn from plotters primitives with text placed by hand (no chart mesh), so writing the SVG
//! needs no font, as `xtask`'s figures are drawn.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Result, TrainError};
use crate::results::{EpochRecord, LossPoint};

/// The file name of a run's curves.
pub const CURVES_FILE: &str = "curves.svg";

/// About how many points a run's loss curve has.
const CURVE_POINTS: u64 = 200;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 360;
const MARGIN: (i32, i32, i32, i32) = (64, 16, 44, 48); // left, right, top, bottom
const LOSS: RGBColor = RGBColor(31, 119, 180);
const AUX: RGBColor = RGBColor(255, 127, 14);
const DEV: RGBColor = RGBColor(44, 160, 44);

/// Steps per point of the loss curve for a run of `total_steps`.
pub fn curve_interval(total_steps: u64) -> u64 {
    total_steps.div_ceil(CURVE_POINTS).max(1)
}

/// Writes `run_dir/curves.svg` atomically.
pub fn write(
    run_dir: &Path,
    title: &str,
    loss: &[LossPoint],
    history: &[EpochRecord],
) -> Result<()> {
    let path = run_dir.join(CURVES_FILE);
    let svg = render(title, loss, history).map_err(|message| TrainError::Plot {
        path: path.clone(),
        message,
    })?;
    stilts_io::fs::write_atomic(&path, svg.as_bytes()).map_err(TrainError::from)
}

/// The SVG text of the curves.
pub fn render(
    title: &str,
    loss: &[LossPoint],
    history: &[EpochRecord],
) -> std::result::Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (left, right) = root.split_horizontally(WIDTH / 2);
        let train: Vec<(f64, f64)> = loss.iter().map(|p| (p.step as f64, p.loss)).collect();
        let aux: Vec<(f64, f64)> = loss
            .iter()
            .filter_map(|p| Some((p.step as f64, p.aux_loss?)))
            .collect();
        let mut series = vec![Series {
            label: "training loss",
            colour: LOSS,
            points: train,
            marks: false,
        }];
        if !aux.is_empty() {
            series.push(Series {
                label: "auxiliary loss",
                colour: AUX,
                points: aux,
                marks: false,
            });
        }
        panel(&left, &format!("{title}: training loss"), "step", &series)?;
        let dev = vec![Series {
            label: "dev score",
            colour: DEV,
            points: history
                .iter()
                .map(|r| (r.epoch as f64, r.dev_score))
                .collect(),
            marks: true,
        }];
        panel(&right, &format!("{title}: dev score"), "epoch", &dev)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

struct Series {
    label: &'static str,
    colour: RGBColor,
    points: Vec<(f64, f64)>,
    /// A dot on every point (few points: epochs).
    marks: bool,
}

fn text(size: u32, h: HPos, v: VPos) -> TextStyle<'static> {
    ("sans-serif", size)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(h, v))
}

/// The range of the finite values with 5% room on each side (5% of the value when flat).
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi - lo < 1e-9 {
        lo.abs().max(1e-3) * 0.05
    } else {
        (hi - lo) * 0.05
    };
    (lo - pad, hi + pad)
}

/// Whole-number ticks (steps, epochs) over `lo..=hi`: multiples of 1, 2 or 5 times a power
/// of ten, at most six.
fn int_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = ((hi - lo) / 5.0).max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    let every = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&step| step >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / every).ceil() as i64;
    let last = (hi / every).floor() as i64;
    (first..=last).map(|k| k as f64 * every).collect()
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    series: &[Series],
) -> std::result::Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let (w, h) = area.dim_in_pixel();
    let (x0, x1) = (MARGIN.0, w as i32 - MARGIN.1);
    let (y0, y1) = (MARGIN.2, h as i32 - MARGIN.3);
    area.draw(&Text::new(
        title.to_owned(),
        (x0, 10),
        text(14, HPos::Left, VPos::Top),
    ))
    .map_err(e)?;
    let all = || series.iter().flat_map(|s| s.points.iter());
    let (xmin, xmax) = range(all().map(|p| p.0));
    let xmin = if all().next().is_some() {
        xmin.max(0.0)
    } else {
        xmin
    };
    let (ymin, ymax) = range(all().map(|p| p.1));
    let px = |x: f64| x0 + ((x - xmin) / (xmax - xmin) * f64::from(x1 - x0)).round() as i32;
    let py = |y: f64| y1 - ((y - ymin) / (ymax - ymin) * f64::from(y1 - y0)).round() as i32;
    let grid = RGBColor(225, 225, 225);
    for i in 0..=4 {
        let f = f64::from(i) / 4.0;
        let (y, yv) = (
            y1 - (f * f64::from(y1 - y0)) as i32,
            ymin + f * (ymax - ymin),
        );
        area.draw(&PathElement::new(vec![(x0, y), (x1, y)], grid))
            .map_err(e)?;
        area.draw(&Text::new(
            format!("{yv:.3}"),
            (x0 - 6, y),
            text(11, HPos::Right, VPos::Center),
        ))
        .map_err(e)?;
    }
    for xv in int_ticks(xmin, xmax) {
        let x = px(xv);
        area.draw(&PathElement::new(vec![(x, y1), (x, y1 + 4)], BLACK))
            .map_err(e)?;
        area.draw(&Text::new(
            format!("{xv:.0}"),
            (x, y1 + 6),
            text(11, HPos::Center, VPos::Top),
        ))
        .map_err(e)?;
    }
    area.draw(&Rectangle::new([(x0, y0), (x1, y1)], BLACK))
        .map_err(e)?;
    area.draw(&Text::new(
        x_label.to_owned(),
        ((x0 + x1) / 2, y1 + 24),
        text(12, HPos::Center, VPos::Top),
    ))
    .map_err(e)?;
    for (i, s) in series.iter().enumerate() {
        let points: Vec<(i32, i32)> = s
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|&(x, y)| (px(x), py(y)))
            .collect();
        area.draw(&PathElement::new(points.clone(), s.colour.stroke_width(2)))
            .map_err(e)?;
        if s.marks {
            for p in points {
                area.draw(&Circle::new(p, 3, s.colour.filled()))
                    .map_err(e)?;
            }
        }
        let ly = y0 + 8 + 16 * i as i32;
        area.draw(&PathElement::new(
            vec![(x1 - 130, ly), (x1 - 110, ly)],
            s.colour.stroke_width(2),
        ))
        .map_err(e)?;
        area.draw(&Text::new(
            s.label,
            (x1 - 104, ly),
            text(11, HPos::Left, VPos::Center),
        ))
        .map_err(e)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, dev_score: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            step: epoch as u64 * 10,
            train_loss: 0.5,
            aux_loss: None,
            dev: Vec::new(),
            dev_score,
        }
    }

    #[test]
    fn curves_hold_both_panels_and_every_point() {
        let loss: Vec<LossPoint> = (1..=30)
            .map(|step| LossPoint {
                step,
                loss: 1.0 / step as f64,
                aux_loss: Some(2.0),
            })
            .collect();
        let history = [record(1, 0.6), record(2, f64::NAN), record(3, 0.7)];
        let svg = render("rte · seed 1", &loss, &history).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("rte · seed 1: training loss"));
        assert!(svg.contains("rte · seed 1: dev score"));
        assert!(svg.contains("auxiliary loss"));
        // Two dev points drawn (the NaN epoch is left out), each a circle.
        assert_eq!(svg.matches("<circle").count(), 2);
        // Flat or empty series still draw.
        assert!(render("x", &[], &[]).unwrap().contains("dev score"));
    }

    #[test]
    fn ticks_are_whole_and_few() {
        assert_eq!(int_ticks(0.9, 3.1), [1.0, 2.0, 3.0]);
        assert_eq!(int_ticks(0.0, 240.0), [0.0, 50.0, 100.0, 150.0, 200.0]);
        assert_eq!(
            int_ticks(0.0, 36_000.0),
            [0.0, 10_000.0, 20_000.0, 30_000.0]
        );
        assert_eq!(int_ticks(0.4, 0.6), Vec::<f64>::new());
    }

    #[test]
    fn about_two_hundred_points() {
        assert_eq!(curve_interval(0), 1);
        assert_eq!(curve_interval(150), 1);
        assert_eq!(curve_interval(201), 2);
        assert_eq!(curve_interval(36_000), 180);
    }
}
