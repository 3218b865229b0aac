//! `curves.png`: the training loss and the validation PSNR per task against the step, drawn
//! from `metrics.jsonl` (the run's source of truth, so a resumed run plots its whole history)
//! and refreshed while training goes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

use ipt_data::rgb::Rgb;
use plotters::coord::combinators::{LogCoord, WithKeyPoints};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use serde_json::Value;

use crate::TrainError;

/// Width and height of the plot in pixels.
const SIZE: (u32, u32) = (1200, 480);

/// The curves of one run; a step logged twice (after a resume) keeps its last value.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Curves {
    /// Mean training loss per logged step.
    pub loss: BTreeMap<usize, f64>,
    /// Validation PSNR (dB) per series ("mean" or a task name), per step.
    pub validation: BTreeMap<String, BTreeMap<usize, f64>>,
    /// PSNR (dB) of the degraded validation inputs per task: the floor each curve must beat.
    pub input: BTreeMap<String, f64>,
    /// Training wall time (seconds, over all sessions) at each validated step.
    pub wall_seconds: BTreeMap<usize, f64>,
}

impl Curves {
    /// Parses the records of a `metrics.jsonl` text; lines that are not complete JSON objects
    /// (a run killed mid-line) and non-finite values are skipped.
    pub fn parse(text: &str) -> Self {
        let mut curves = Self::default();
        for record in text.lines().filter_map(|line| serde_json::from_str::<Value>(line).ok()) {
            let Some(step) = record["step"].as_u64().map(|step| step as usize) else {
                continue;
            };
            if let Some(loss) = record["loss"].as_f64().filter(|loss| loss.is_finite() && *loss > 0.0) {
                curves.loss.insert(step, loss);
            }
            if let Some(mean) = record["mean_psnr"].as_f64() {
                curves.validation.entry("mean".into()).or_default().insert(step, mean);
                if let Some(wall) = record["wall_s"].as_f64().filter(|wall| wall.is_finite()) {
                    curves.wall_seconds.insert(step, wall);
                }
            }
            if let Some(per_task) = record["validation_psnr"].as_object() {
                for (task, psnr) in per_task {
                    if let Some(psnr) = psnr.as_f64().filter(|psnr| psnr.is_finite()) {
                        curves.validation.entry(task.clone()).or_default().insert(step, psnr);
                    }
                }
            }
            if let Some(per_task) = record["input_psnr"].as_object() {
                for (task, psnr) in per_task {
                    if let Some(psnr) = psnr.as_f64().filter(|psnr| psnr.is_finite()) {
                        curves.input.insert(task.clone(), psnr);
                    }
                }
            }
        }
        curves
    }

    /// Reads `metrics.jsonl` at `path`.
    pub fn read(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io { path: path.into(), source })?;
        Ok(Self::parse(&text))
    }

    /// Series `name` of the validation PSNR against the training wall time in minutes (steps
    /// validated without a recorded wall time are left out).
    pub fn against_minutes(&self, name: &str) -> Vec<(f64, f64)> {
        let Some(series) = self.validation.get(name) else {
            return Vec::new();
        };
        series.iter().filter_map(|(step, psnr)| Some((self.wall_seconds.get(step)? / 60.0, *psnr))).collect()
    }

    /// The last step with any record.
    fn last_step(&self) -> usize {
        let last_loss = self.loss.keys().next_back().copied().unwrap_or(0);
        let last_validation = self.validation.values().filter_map(|series| series.keys().next_back().copied()).max().unwrap_or(0);
        last_loss.max(last_validation)
    }

    /// Draws the two panels (loss on a log axis, validation PSNR per task) as an RGB image.
    pub fn render(&self, title: &str) -> Result<Rgb, PlotError> {
        draw_image(SIZE, |root| {
            let root = root.titled(title, ("sans-serif", 22)).map_err(|error| error.to_string())?;
            let (left, right) = root.split_horizontally(SIZE.0 / 2);
            let steps = 0.0..self.last_step().max(1) as f64;
            self.draw_loss(&left, steps.clone()).map_err(|error| error.to_string())?;
            self.draw_validation(&right, steps).map_err(|error| error.to_string())
        })
    }

    fn draw_loss<'b>(
        &self,
        area: &DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
        steps: std::ops::Range<f64>,
    ) -> Result<(), Box<dyn std::error::Error + 'b>> {
        let mut chart = loss_chart(area, ("training loss", 18), steps, self.loss.values().copied(), "loss")?;
        chart.draw_series(LineSeries::new(self.loss.iter().map(|(step, loss)| (*step as f64, *loss)), BLUE.stroke_width(2)))?;
        Ok(())
    }

    fn draw_validation(
        &self,
        area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
        steps: std::ops::Range<f64>,
    ) -> Result<(), Box<dyn std::error::Error + '_>> {
        let values = self.validation.values().flat_map(|series| series.values().copied()).chain(self.input.values().copied());
        let (low, high) = padded_range(values, 0.5, 0.5);
        let mut chart = ChartBuilder::on(area)
            .caption("validation PSNR (dB, EMA weights; thin: the inputs)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(steps.clone(), low..high)?;
        chart.configure_mesh().x_desc("step").x_label_formatter(&|step| format!("{step:.0}")).y_desc("PSNR (dB)").draw()?;
        let tasks = self.validation.iter().filter(|(name, _)| name.as_str() != "mean");
        let mean = self.validation.iter().filter(|(name, _)| name.as_str() == "mean");
        for (index, (name, series)) in tasks.chain(mean).enumerate() {
            let style = if name == "mean" { BLACK.stroke_width(3) } else { Palette99::pick(index).stroke_width(2) };
            if let Some(&floor) = self.input.get(name) {
                // The task's input PSNR, thin, in the task's colour.
                let thin = Palette99::pick(index).mix(0.6).stroke_width(1);
                chart.draw_series(LineSeries::new([(steps.start, floor), (steps.end, floor)], thin))?;
            }
            let points = series.iter().map(|(step, psnr)| (*step as f64, *psnr));
            chart
                .draw_series(LineSeries::new(points, style).point_size(3))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
        if !self.validation.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::LowerRight)
                .draw()?;
        }
        Ok(())
    }
}

/// The training losses of several runs on one log axis (experiment reports compare arms).
pub fn render_losses(runs: &[(String, Curves)], title: &str) -> Result<Rgb, PlotError> {
    draw_image(SINGLE, |root| draw_losses(root, runs, title).map_err(|error| error.to_string()))
}

/// Why a chart could not be drawn (plotters' own error, as text: its type borrows the canvas).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("drawing a chart: {0}")]
pub struct PlotError(pub String);

/// Size of a single-panel chart.
const SINGLE: (u32, u32) = (SIZE.0 * 2 / 3, SIZE.1);

/// Draws on a white `size` canvas with `draw` and returns the picture.
fn draw_image(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<(), String>,
) -> Result<Rgb, PlotError> {
    register_font();
    let mut buffer = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, size).into_drawing_area();
        root.fill(&WHITE).map_err(|error| PlotError(error.to_string()))?;
        draw(&root).map_err(PlotError)?;
        root.present().map_err(|error| PlotError(error.to_string()))?;
    }
    let image = image::RgbImage::from_raw(size.0, size.1, buffer).expect("the buffer holds width x height RGB pixels");
    Ok(Rgb::from_rgb8(&image))
}

fn draw_losses<'a>(
    area: &DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>,
    runs: &[(String, Curves)],
    title: &str,
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let last = runs.iter().map(|(_, curves)| curves.last_step()).max().unwrap_or(1).max(1);
    let losses = runs.iter().flat_map(|(_, curves)| curves.loss.values().copied());
    let mut chart = loss_chart(area, (title, 20), 0.0..last as f64, losses, "training loss")?;
    for (index, (label, curves)) in runs.iter().enumerate() {
        let style = Palette99::pick(index).stroke_width(2);
        chart
            .draw_series(LineSeries::new(curves.loss.iter().map(|(step, loss)| (*step as f64, *loss)), style))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    if !runs.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    Ok(())
}

/// A line chart of named `(x, y)` series on linear axes, with point markers and `x_labels`
/// naming the integer x positions (experiment reports: a value per U-Net position).
pub fn render_series(title: &str, y_label: &str, x_labels: &[&str], series: &[(String, Vec<(f64, f64)>)]) -> Result<Rgb, PlotError> {
    draw_image(SINGLE, |root| draw_series(root, title, y_label, x_labels, series).map_err(|error| error.to_string()))
}

fn draw_series<'a>(
    area: &DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    x_labels: &[&str],
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let (low, high) = padded_range(series.iter().flat_map(|(_, points)| points.iter().map(|(_, y)| *y)), 0.05, 0.05);
    let last = x_labels.len().max(1) as f64 - 1.0;
    let labels: Vec<String> = x_labels.iter().map(|label| label.to_string()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.3..last + 0.3, low..high)?;
    chart
        .configure_mesh()
        .x_labels(labels.len().max(2))
        .x_label_formatter(&|x| {
            let index = x.round();
            if (x - index).abs() < 1e-6 && index >= 0.0 { labels.get(index as usize).cloned().unwrap_or_default() } else { String::new() }
        })
        .y_desc(y_label)
        .draw()?;
    for (index, (name, points)) in series.iter().enumerate() {
        let style = Palette99::pick(index).stroke_width(2);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style).point_size(4))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    if !series.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
    }
    Ok(())
}

/// One chart of a panel grid: named `(x, y)` series and an optional floor drawn as a thin line.
#[derive(Clone, Debug, Default)]
pub struct Panel {
    /// The panel's caption.
    pub title: String,
    /// A reference level (e.g. the degraded inputs' PSNR), drawn thin and grey.
    pub floor: Option<f64>,
    /// The lines, each labelled; a label keeps its colour across panels.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// Panels on a grid of `columns`, sharing the x label (experiment reports: validation PSNR per
/// task against wall time, one line per arm). The legend is drawn on the first panel.
pub fn render_panels(title: &str, x_label: &str, y_label: &str, columns: usize, panels: &[Panel]) -> Result<Rgb, PlotError> {
    let columns = columns.max(1);
    let rows = panels.len().div_ceil(columns).max(1);
    let size = (PANEL.0 * columns as u32, PANEL.1 * rows as u32 + 40);
    draw_image(size, |root| {
        let root = root.titled(title, ("sans-serif", 22)).map_err(|error| error.to_string())?;
        let cells = root.split_evenly((rows, columns));
        for (index, (panel, cell)) in panels.iter().zip(&cells).enumerate() {
            draw_panel(cell, panel, x_label, y_label, index == 0).map_err(|error| error.to_string())?;
        }
        Ok(())
    })
}

/// Size of one panel of [`render_panels`].
const PANEL: (u32, u32) = (420, 340);

fn draw_panel<'a>(
    area: &DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>,
    panel: &Panel,
    x_label: &str,
    y_label: &str,
    legend: bool,
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let xs = panel.series.iter().flat_map(|(_, points)| points.iter().map(|(x, _)| *x));
    let right = xs.fold(0.0f64, f64::max).max(1e-6);
    let ys = panel.series.iter().flat_map(|(_, points)| points.iter().map(|(_, y)| *y)).chain(panel.floor);
    let (low, high) = padded_range(ys, 0.3, 0.3);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(44)
        .build_cartesian_2d(0.0..right * 1.02, low..high)?;
    chart.configure_mesh().x_desc(x_label).y_desc(y_label).x_labels(6).y_labels(6).draw()?;
    if let Some(floor) = panel.floor {
        chart.draw_series(LineSeries::new([(0.0, floor), (right * 1.02, floor)], BLACK.mix(0.4).stroke_width(1)))?;
    }
    for (index, (name, points)) in panel.series.iter().enumerate() {
        let style = Palette99::pick(index).stroke_width(2);
        let drawn = chart.draw_series(LineSeries::new(points.iter().copied(), style).point_size(3))?;
        if legend {
            drawn.label(name.as_str()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
    }
    if legend && !panel.series.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 12))
            .draw()?;
    }
    Ok(())
}

/// Redraws `<run_dir>/curves.png` from `<run_dir>/metrics.jsonl`, atomically.
pub fn refresh(run_dir: &Path, title: &str) -> Result<(), TrainError> {
    let path = run_dir.join("curves.png");
    let image = Curves::read(&run_dir.join("metrics.jsonl"))?
        .render(title)
        .map_err(|error| TrainError::Checkpoint { path: path.clone(), message: error.to_string() })?;
    image.write_png(&path)?;
    Ok(())
}

/// The range of `values` widened by `below`/`above` (factors for a log axis, when `below` is
/// 1 or more; dB otherwise), or a unit range when there are no values.
fn padded_range(values: impl Iterator<Item = f64>, below: f64, above: f64) -> (f64, f64) {
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| (low.min(value), high.max(value)));
    match (low.is_finite(), below >= 1.0) {
        (false, true) => (0.01, 1.0),
        (false, false) => (0.0, 40.0),
        (true, true) => (low / above, high * above),
        (true, false) => (low - below, high + above),
    }
}

/// A chart of loss against the step with its mesh drawn: `caption` (text, size) on top, the
/// loss on a log axis padded around `losses`, ticked by [`log_ticks`], labelled `loss_name`.
fn loss_chart<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    caption: (&str, u32),
    steps: std::ops::Range<f64>,
    losses: impl Iterator<Item = f64>,
    loss_name: &str,
) -> Result<LossChart<'a, 'b>, Box<dyn std::error::Error + 'b>> {
    let (low, high) = padded_range(losses, 1.0, 1.15);
    let mut chart = ChartBuilder::on(area)
        .caption(caption.0, ("sans-serif", caption.1))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(steps, (low..high).log_scale().with_key_points(log_ticks(low, high)))?;
    chart
        .configure_mesh()
        .x_desc("step")
        .x_label_formatter(&|step| format!("{step:.0}"))
        .y_desc(loss_name)
        .y_label_formatter(&|value| two_significant_digits(*value))
        .draw()?;
    Ok(chart)
}

/// What [`loss_chart`] draws on: linear steps, logarithmic loss with our ticks.
type LossChart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, WithKeyPoints<LogCoord<f64>>>>;

/// `value` with as many decimals as two significant digits need (a tick of [`log_ticks`]
/// printed as it was rounded: 0.25, 0.063, 0.0025, 1.0).
fn two_significant_digits(value: f64) -> String {
    let decimals = if value > 0.0 { (1.0 - value.log10().floor()).max(1.0) as usize } else { 1 };
    format!("{value:.decimals$}")
}

/// About six ticks evenly spaced on a log axis over `low..high`, each rounded to two
/// significant digits. Plotters' own log ticks are the powers of ten inside the range (with
/// subdivisions), so a loss within one decade, e.g. 0.25-0.45, would get no label at all.
fn log_ticks(low: f64, high: f64) -> Vec<f64> {
    const TICKS: i32 = 6;
    let round = |value: f64| {
        let scale = 10f64.powf(value.log10().floor() - 1.0);
        (value / scale).round() * scale
    };
    let mut ticks: Vec<f64> = (0..TICKS)
        .map(|index| round(low * (high / low).powf(f64::from(index) / f64::from(TICKS - 1))))
        .filter(|tick| (low..=high).contains(tick))
        .collect();
    ticks.dedup();
    ticks
}

/// Registers the bundled Hack font as the plots' sans-serif face (plotters draws no text
/// without a registered font; a bundled one keeps plots identical on every machine).
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, epaint_default_fonts::HACK_REGULAR)
            .unwrap_or_else(|_| panic!("the bundled Hack font parses"));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"step":0,"input_psnr":{"denoise":14.5,"derain":17.0}}
{"step":25,"loss":0.2,"lr":0.0001}
{"step":50,"loss":0.1,"lr":0.0002}
{"step":50,"validation_psnr":{"denoise":20.5,"derain":18.0},"mean_psnr":19.25,"wall_s":90.0}
{"step":25,"loss":0.15,"lr":0.0001}
{"step":75,"loss":NaN
{"step":60,"skipped":"non-finite loss NaN"}
"#;

    #[test]
    fn parse_keeps_last_value_per_step_and_skips_broken_lines() {
        let curves = Curves::parse(LOG);
        assert_eq!(curves.loss, BTreeMap::from([(25, 0.15), (50, 0.1)]));
        assert_eq!(curves.validation["mean"], BTreeMap::from([(50, 19.25)]));
        assert_eq!(curves.validation["denoise"], BTreeMap::from([(50, 20.5)]));
        assert_eq!(curves.validation.len(), 3);
        assert_eq!(curves.input, BTreeMap::from([("denoise".to_string(), 14.5), ("derain".to_string(), 17.0)]));
        assert_eq!(curves.last_step(), 50);
        assert_eq!(curves.against_minutes("denoise"), [(1.5, 20.5)]);
        assert!(curves.against_minutes("deblur").is_empty());
    }

    #[test]
    fn render_panels_lays_out_a_grid_and_draws_each_series() {
        let panel = |floor| Panel {
            title: "denoise".into(),
            floor,
            series: vec![("a".into(), vec![(0.0, 20.0), (5.0, 24.0)]), ("b".into(), vec![(0.0, 20.0), (4.0, 22.0)])],
        };
        let image = render_panels("recipe", "minutes", "dB", 2, &[panel(Some(19.0)), panel(None), panel(None)]).unwrap().to_rgb8();
        assert_eq!(image.dimensions(), (PANEL.0 * 2, PANEL.1 * 2 + 40));
        let coloured = image.pixels().filter(|pixel| pixel.0[0].abs_diff(pixel.0[1]) > 60 || pixel.0[1].abs_diff(pixel.0[2]) > 60).count();
        assert!(coloured > 300, "the series are drawn ({coloured} pixels)");
    }

    #[test]
    fn render_draws_curves_and_text_on_white() {
        let image = Curves::parse(LOG).render("run").unwrap().to_rgb8();
        assert_eq!(image.dimensions(), SIZE);
        let dark = image.pixels().filter(|pixel| pixel.0.iter().all(|&value| value < 80)).count();
        let blue = image.pixels().filter(|pixel| pixel.0[2] > 200 && pixel.0[0] < 60 && pixel.0[1] < 60).count();
        let white = image.pixels().filter(|pixel| pixel.0 == [255, 255, 255]).count();
        assert!(white > image.pixels().len() / 2, "background is white");
        assert!(dark > 2_000, "axes, labels and the mean curve are drawn ({dark} dark pixels)");
        assert!(blue > 50, "the loss curve is drawn ({blue} blue pixels)");
    }

    #[test]
    fn render_losses_draws_one_curve_per_run() {
        let runs = vec![("a".to_string(), Curves::parse(LOG)), ("b".to_string(), Curves::default())];
        let image = render_losses(&runs, "arms").unwrap().to_rgb8();
        let coloured = image.pixels().filter(|pixel| pixel.0[0].abs_diff(pixel.0[1]) > 60 || pixel.0[1].abs_diff(pixel.0[2]) > 60).count();
        assert!(coloured > 50, "a coloured loss curve is drawn ({coloured} pixels)");
    }

    #[test]
    fn render_series_draws_its_points() {
        let series = vec![("energy".to_string(), vec![(0.0, 0.5), (1.0, 0.9), (2.0, 0.7)])];
        let image = render_series("depth", "E(r)", &["a", "b", "c"], &series).unwrap().to_rgb8();
        let coloured = image.pixels().filter(|pixel| pixel.0[0].abs_diff(pixel.0[1]) > 60 || pixel.0[1].abs_diff(pixel.0[2]) > 60).count();
        assert!(coloured > 50, "the series is drawn ({coloured} pixels)");
    }

    #[test]
    fn render_handles_an_empty_log() {
        let image = Curves::default().render("empty").unwrap();
        assert_eq!((image.width, image.height), (SIZE.0 as usize, SIZE.1 as usize));
    }

    #[test]
    fn a_loss_within_one_decade_still_gets_labelled_ticks() {
        for (low, high) in [(0.25, 0.45), (0.011, 0.019), (0.01, 1.0), (2.0, 2.2)] {
            let ticks = log_ticks(low, high);
            assert!(ticks.len() >= 3, "{low}..{high}: {ticks:?}");
            assert!(ticks.windows(2).all(|pair| pair[0] < pair[1]), "{ticks:?}");
            assert!(ticks.iter().all(|tick| (low..=high).contains(tick)), "{ticks:?}");
        }
        assert_eq!(log_ticks(0.01, 1.0), vec![0.01, 0.025, 0.063, 0.16, 0.4, 1.0]);
        let labels: Vec<String> = log_ticks(0.01, 1.0).into_iter().chain([0.0025, 16.0]).map(two_significant_digits).collect();
        assert_eq!(labels, ["0.010", "0.025", "0.063", "0.16", "0.40", "1.0", "0.0025", "16.0"], "labels keep the ticks' digits");
    }

    #[test]
    fn padded_range_widens_and_defaults() {
        assert_eq!(padded_range([2.0, 4.0].into_iter(), 1.0, 2.0), (1.0, 8.0));
        assert_eq!(padded_range([20.0].into_iter(), 0.5, 0.5), (19.5, 20.5));
        assert_eq!(padded_range(std::iter::empty(), 1.0, 2.0), (0.01, 1.0));
    }
}
