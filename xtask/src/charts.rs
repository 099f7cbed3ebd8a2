//! SVG charts of a report: one per layer, time per element of each benchmark, one bar per allocator.

use std::path::Path;

use plotters::prelude::*;

use crate::{Result, report::Report};

const COLORS: [RGBColor; 3] = [
    RGBColor(66, 133, 244),
    RGBColor(219, 68, 55),
    RGBColor(15, 157, 88),
];

/// Writes `dir/<layer>.svg` for every layer of the report.
pub(crate) fn write(report: &Report, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(crate::io_at(dir))?;
    for layer in report.layers() {
        let mut ids: Vec<&str> = Vec::new();
        for b in report.benches.iter().filter(|b| b.layer == layer) {
            if !ids.contains(&b.id.as_str()) {
                ids.push(&b.id);
            }
        }
        let values: Vec<f64> = report
            .benches
            .iter()
            .filter(|b| b.layer == layer)
            .map(|b| b.ns_per_element)
            .collect();
        let (lo, hi) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        if values.is_empty() {
            continue;
        }
        let path = dir.join(format!("{layer}.svg"));
        let height = 80 + 28 * ids.len() as u32 * report.allocators.len().max(1) as u32;
        let root = SVGBackend::new(&path, (900, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let rows = ids.len() as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{layer}: time per element (log scale, lower is better)"),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(260)
            .build_cartesian_2d((lo / 2.0..hi * 2.0).log_scale(), 0.0..rows)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(ids.len() * 2 + 1)
            .y_label_formatter(&|y| {
                let i = y.floor() as usize;
                if (y - y.floor() - 0.5).abs() < 0.01 && i < ids.len() {
                    ids[ids.len() - 1 - i].to_string()
                } else {
                    String::new()
                }
            })
            .x_label_formatter(&|x| crate::report::format_time(*x))
            .draw()?;
        let n = report.allocators.len().max(1) as f64;
        for (ai, allocator) in report.allocators.iter().enumerate() {
            let color = COLORS[ai % COLORS.len()];
            let bars: Vec<_> =
                ids.iter()
                    .enumerate()
                    .filter_map(|(i, id)| {
                        let b = report.benches.iter().find(|b| {
                            b.layer == layer && b.id == *id && b.allocator == *allocator
                        })?;
                        let row = (ids.len() - 1 - i) as f64;
                        let y0 = row + 0.1 + 0.8 * ai as f64 / n;
                        let y1 = row + 0.1 + 0.8 * (ai + 1) as f64 / n;
                        Some(Rectangle::new(
                            [(lo / 2.0, y0), (b.ns_per_element, y1)],
                            color.filled(),
                        ))
                    })
                    .collect();
            chart
                .draw_series(bars)?
                .label(allocator.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(())
}
