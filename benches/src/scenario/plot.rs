//! Draws a scenario's throughput and p99 over time, Tessera beside Redis, as PNG and SVG.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;

use super::load::{OpStats, INTERVAL};
use super::{Report, Scenario, Side};
use crate::driver::BoxError;

/// The plots' text: DejaVu Sans cut to ASCII (benches/assets/FONT-LICENSE), built in so
/// plotting needs no font on the machine.
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-ascii.ttf");

fn load_font() -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            register_font("sans-serif", FontStyle::Normal, FONT)
                .map_err(|_| "the built-in plot font does not parse".to_string())
        })
        .clone()
}

/// Writes `<dir>/<scenario>.png` and `.svg`; returns their paths.
///
/// # Errors
/// No font, or the files cannot be written.
pub fn draw(dir: &Path, scenario: Scenario, reports: &[Report]) -> Result<Vec<PathBuf>, BoxError> {
    load_font()?;
    std::fs::create_dir_all(dir)?;
    let png = dir.join(format!("{}.png", scenario.name()));
    let svg = dir.join(format!("{}.svg", scenario.name()));
    let size = (1200, 900);
    let title = format!(
        "{}: operations per second and p99 over time",
        scenario.name()
    );
    draw_on(
        BitMapBackend::new(&png, size).into_drawing_area(),
        &title,
        reports,
    )?;
    draw_on(
        SVGBackend::new(&svg, size).into_drawing_area(),
        &title,
        reports,
    )?;
    Ok(vec![png, svg])
}

/// One line: an operation on one server, `(seconds, value)` per interval.
struct Line<'a> {
    op: &'a OpStats,
    side: Side,
    colour: RGBColor,
}

fn lines(reports: &[Report]) -> Vec<Line<'_>> {
    let mut names: Vec<&'static str> = Vec::new();
    let mut lines = Vec::new();
    for report in reports {
        let plotted = &report.outcome.plotted;
        for op in report
            .ops
            .iter()
            .filter(|op| plotted.is_empty() || plotted.contains(&op.name))
        {
            let index = match names.iter().position(|name| *name == op.name) {
                Some(index) => index,
                None => {
                    names.push(op.name);
                    names.len() - 1
                }
            };
            let colour = Palette99::pick(index).to_rgba();
            lines.push(Line {
                op,
                side: report.side,
                colour: RGBColor(colour.0, colour.1, colour.2),
            });
        }
    }
    lines
}

/// The operation's value per interval, at the interval's middle; the last interval, cut
/// short by the end of the run, is left out.
fn points(
    op: &OpStats,
    seconds: f64,
    value: impl Fn(&hdrhistogram::Histogram<u64>) -> f64,
) -> Vec<(f64, f64)> {
    let width = INTERVAL.as_secs_f64();
    op.intervals
        .iter()
        .enumerate()
        .filter(|(slot, histogram)| {
            !histogram.is_empty() && (*slot as f64 + 1.0) * width <= seconds + 1e-9
        })
        .map(|(slot, histogram)| (slot as f64 * width + width / 2.0, value(histogram)))
        .collect()
}

fn draw_on<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    reports: &[Report],
) -> Result<(), BoxError> {
    let failed =
        |error: DrawingAreaErrorKind<DB::ErrorType>| -> BoxError { error.to_string().into() };
    root.fill(&WHITE).map_err(failed)?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(failed)?;
    let (upper, lower) = root.split_vertically(420);
    let lines = lines(reports);
    let seconds = reports.iter().map(|r| r.seconds).fold(1.0, f64::max);
    let throughput: Vec<(&Line, Vec<(f64, f64)>)> = lines
        .iter()
        .map(|line| {
            (
                line,
                points(line.op, seconds, |h| {
                    h.len() as f64 / INTERVAL.as_secs_f64()
                }),
            )
        })
        .collect();
    let latency: Vec<(&Line, Vec<(f64, f64)>)> = lines
        .iter()
        .map(|line| {
            let p99 = |h: &hdrhistogram::Histogram<u64>| {
                (h.value_at_quantile(0.99) as f64 / 1000.0).max(0.01)
            };
            (line, points(line.op, seconds, p99))
        })
        .collect();
    let peak = |series: &[(&Line, Vec<(f64, f64)>)]| {
        series
            .iter()
            .flat_map(|(_, points)| points.iter().map(|p| p.1))
            .fold(0.0, f64::max)
    };
    let top = peak(&throughput).max(1.0) * 2.0;
    let mut chart = ChartBuilder::on(&upper)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..seconds, (0.5..top).log_scale())
        .map_err(failed)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("per second (log)")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(failed)?;
    for (line, points) in &throughput {
        series(&mut chart, line, points.clone()).map_err(failed)?;
    }
    legend(&mut chart).map_err(failed)?;
    let slowest = peak(&latency).max(1.0) * 2.0;
    let mut chart = ChartBuilder::on(&lower)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..seconds, (0.01..slowest).log_scale())
        .map_err(failed)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("p99 ms (log)")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(failed)?;
    for (line, points) in &latency {
        series(&mut chart, line, points.clone()).map_err(failed)?;
    }
    legend(&mut chart).map_err(failed)?;
    root.present().map_err(failed)?;
    Ok(())
}

/// Tessera's lines are solid, Redis's dashed, one colour per operation.
fn series<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    line: &Line,
    points: Vec<(f64, f64)>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let style = line.colour.stroke_width(2);
    let label = format!("{} ({})", line.op.name, line.side.name());
    let colour = line.colour;
    let drawn = match line.side {
        Side::Tessera => chart.draw_series(LineSeries::new(points, style))?,
        Side::Redis => chart.draw_series(DashedLineSeries::new(points, 6, 4, style))?,
    };
    drawn
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
    Ok(())
}

fn legend<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}
