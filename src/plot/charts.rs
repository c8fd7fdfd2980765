//! The three chart shapes the report uses, drawn with plotters' SVG
//! backend: lines (timeseries, sweeps), grouped bars (percentiles per
//! flow, endpoint shares) and stacked horizontal bars (where the time
//! goes). Every chart has a title, axis descriptions with units and a
//! legend naming each series.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Chart size [px].
const SIZE: (u32, u32) = (800, 440);

/// One named series of values.
pub struct Series {
    /// Its legend entry.
    pub name: String,
    /// Its points (x, y); for bars, x is the group index.
    pub points: Vec<(f64, f64)>,
}

fn color(i: usize) -> RGBColor {
    // A qualitative palette (Tableau 10), readable on white.
    const C: [(u8, u8, u8); 10] = [
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
    let (r, g, b) = C[i % C.len()];
    RGBColor(r, g, b)
}

fn err(e: impl std::fmt::Display) -> String {
    format!("drawing a chart: {e}")
}

/// The upper end of an axis holding `max`: a little headroom, never 0.
fn top(max: f64) -> f64 {
    if max > 0.0 && max.is_finite() {
        max * 1.08
    } else {
        1.0
    }
}

/// The legend's corner: the one the data cross least, `samples` being
/// points along the drawn lines and bars, in chart coordinates.
fn corner(samples: &[(f64, f64)], x: (f64, f64), y: (f64, f64)) -> SeriesLabelPosition {
    let nx = |v: f64| (v - x.0) / (x.1 - x.0).max(f64::MIN_POSITIVE);
    let ny = |v: f64| (v - y.0) / (y.1 - y.0).max(f64::MIN_POSITIVE);
    let mut hits = [0usize; 4]; // upper left, upper right, lower right, lower left
    for &(a, b) in samples {
        let (a, b) = (nx(a), ny(b));
        let (left, right, up, down) = (a < 0.45, a > 0.55, b > 0.55, b < 0.45);
        hits[0] += usize::from(left && up);
        hits[1] += usize::from(right && up);
        hits[2] += usize::from(right && down);
        hits[3] += usize::from(left && down);
    }
    let best = (0..4).min_by_key(|&i| hits[i]).unwrap_or(0);
    [
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::LowerRight,
        SeriesLabelPosition::LowerLeft,
    ][best]
        .clone()
}

/// Points along the segments of `pts`, 16 per segment.
fn along(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = pts.to_vec();
    for w in pts.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        out.extend((1..16).map(|k| {
            let t = k as f64 / 16.0;
            (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
        }));
    }
    out
}

/// A line chart. `x_names`: category names for x = 0, 1, ... (`None`: a
/// numeric x axis).
pub fn lines(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    x_names: Option<&[String]>,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let pts = series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0f64);
        for &(x, y) in pts {
            (x0, x1, y1) = (x0.min(x), x1.max(x), y1.max(y));
        }
        if x0 > x1 {
            (x0, x1) = (0.0, 1.0);
        }
        if x0 == x1 {
            (x0, x1) = (x0 - 0.5, x1 + 0.5);
        }
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, 0f64..top(y1))
            .map_err(err)?;
        let names = x_names.map(|n| n.to_vec());
        let fmt = move |x: &f64| match &names {
            Some(n) if (x.fract()).abs() < 1e-9 && *x >= 0.0 => n.get(*x as usize).cloned().unwrap_or_default(),
            Some(_) => String::new(),
            None => trim(*x),
        };
        let ticks = x_names.map_or(10, |n| n.len().max(2));
        c.configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_labels(ticks)
            .x_label_formatter(&fmt)
            .y_label_formatter(&|y| trim(*y))
            .draw()
            .map_err(err)?;
        let n = series.len();
        for (i, s) in series.iter().enumerate() {
            let col = color(i);
            // Earlier lines a little wider, so that lines lying on top of
            // each other still show every colour.
            let width = 2 + (n - 1 - i).min(3) as u32;
            c.draw_series(LineSeries::new(s.points.iter().copied(), col.stroke_width(width)))
                .map_err(err)?
                .label(s.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2)));
            c.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, col.filled()))).map_err(err)?;
        }
        let samples: Vec<(f64, f64)> = series.iter().flat_map(|s| along(&s.points)).collect();
        legend(&mut c, corner(&samples, (x0, x1), (0.0, top(y1))))?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

type Ctx<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn legend<'b>(c: &mut Ctx<'b, 'b>, at: SeriesLabelPosition) -> Result<(), String> {
    c.configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(err)
}

/// Bars grouped by `groups` (x), one bar per series in each group.
pub fn grouped_bars(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    groups: &[String],
    series: &[Series],
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let y1 = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0f64, f64::max);
        let n = groups.len().max(1);
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top(y1) * 1.15)
            .map_err(err)?;
        let names = groups.to_vec();
        c.configure_mesh()
            .disable_x_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_labels(n + 1)
            .x_label_formatter(&|x| {
                if (x.fract()).abs() < 1e-9 && *x >= 0.0 {
                    names.get(*x as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| trim(*y))
            .draw()
            .map_err(err)?;
        let k = series.len().max(1) as f64;
        let w = 0.8 / k;
        for (i, s) in series.iter().enumerate() {
            let col = color(i);
            let left = -0.4 + i as f64 * w;
            c.draw_series(
                s.points
                    .iter()
                    .map(|&(g, v)| Rectangle::new([(g + left, 0.0), (g + left + w * 0.92, v)], col.filled())),
            )
            .map_err(err)?
            .label(s.name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], col.filled()));
        }
        let samples: Vec<(f64, f64)> =
            series.iter().flat_map(|s| s.points.iter().flat_map(|&(g, v)| along(&[(g, 0.0), (g, v)]))).collect();
        legend(&mut c, corner(&samples, (-0.5, n as f64 - 0.5), (0.0, top(y1) * 1.15)))?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Horizontal bars, one per row, each stacked from its series' values in
/// order (the series' points are (row index, value)).
pub fn stacked_bars(title: &str, x_desc: &str, rows: &[String], series: &[Series]) -> Result<String, String> {
    let mut svg = String::new();
    let height = (SIZE.1).max(120 + 28 * rows.len() as u32);
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0 + 160, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut totals = vec![0f64; rows.len()];
        for s in series {
            for &(r, v) in &s.points {
                totals[r as usize] += v;
            }
        }
        let x1 = totals.iter().copied().fold(0f64, f64::max);
        let n = rows.len().max(1);
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(230)
            .build_cartesian_2d(0f64..top(x1) * 1.3, -0.5f64..(n as f64 - 0.5))
            .map_err(err)?;
        let names = rows.to_vec();
        c.configure_mesh()
            .disable_y_mesh()
            .x_desc(x_desc)
            .y_labels(n + 1)
            .y_label_formatter(&|y| {
                if (y.fract()).abs() < 1e-9 && *y >= 0.0 {
                    names.get(*y as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_label_formatter(&|x| trim(*x))
            .draw()
            .map_err(err)?;
        let mut base = vec![0f64; rows.len()];
        for (i, s) in series.iter().enumerate() {
            let col = color(i);
            let bars: Vec<_> = s
                .points
                .iter()
                .map(|&(r, v)| {
                    let b = base[r as usize];
                    base[r as usize] += v;
                    Rectangle::new([(b, r - 0.35), (b + v, r + 0.35)], col.filled())
                })
                .collect();
            c.draw_series(bars)
                .map_err(err)?
                .label(s.name.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], col.filled()));
        }
        legend(&mut c, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A chart that says there is nothing to draw, and why.
pub fn empty(title: &str, why: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, 120)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let style = TextStyle::from(("sans-serif", 20).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        root.draw_text(title, &style, (SIZE.0 as i32 / 2, 12)).map_err(err)?;
        let style = TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        root.draw_text(why, &style, (SIZE.0 as i32 / 2, 60)).map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A number as short as it can be: no trailing zeros.
fn trim(v: f64) -> String {
    let s = if v.abs() >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}
