//! Statistics of the samples: rates, and how the synchronizer's memory grew
//! with the sightings archived (least-squares slope included).

use std::time::Duration;

use super::fixtures::Layout;
use super::sampling::Sample;

/// RSS growth per 100 000 sightings below which the memory is called flat:
/// 10 bytes a sighting, less than any per-event leak could be.
pub(super) const FLAT_GROWTH: f64 = 1_000_000.0;
/// How far the peak RSS may rise over the last quarter of a run and still
/// count as levelled off: allocator noise.
pub(super) const NEW_HIGH_MARGIN: f64 = 2_000_000.0;
/// Samples after 10 % archived needed for a verdict on the RSS growth.
pub(super) const MIN_VERDICT_SAMPLES: usize = 5;

/// Items per second.
pub(super) fn rate(items: u64, elapsed: Duration) -> f64 {
    items as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// The index of the first sample with at least `share` of `total` sightings.
pub(super) fn first_past(samples: &[Sample], total: u64, share: f64) -> Option<usize> {
    samples
        .iter()
        .position(|sample| sample.sightings as f64 >= share * total as f64)
}

/// How the synchronizer's RSS grew from the first sample past `share` of
/// the sightings to the last sample.
#[derive(Debug, Clone, Copy)]
pub(super) struct Growth {
    /// Bytes per 100 000 sightings, between the two samples.
    pub(super) per_100k: f64,
    /// Bytes per 100 000 sightings, least-squares slope over every sample
    /// between them.
    pub(super) slope: Option<f64>,
    /// Bytes in all.
    pub(super) total: f64,
    /// Sightings archived between the two samples.
    pub(super) sightings: f64,
    /// Samples counted.
    pub(super) samples: usize,
    /// The peak RSS (`VmHWM`) before the last quarter of the sightings
    /// counted, and at the end; samples in the last quarter.
    pub(super) peak_before: f64,
    pub(super) peak_end: f64,
    pub(super) late_samples: usize,
}

/// The growth of the RSS from the first sample past `share` of the
/// sightings to the last sample; `None` without two samples apart.
pub(super) fn growth_from(samples: &[Sample], layout: &Layout, share: f64) -> Option<Growth> {
    let from = first_past(samples, layout.sightings, share)?;
    let tail: Vec<(f64, f64)> = samples[from..]
        .iter()
        .filter_map(|sample| Some((sample.sightings as f64, sample.rss? as f64)))
        .collect();
    let (&(first_x, first_y), &(last_x, last_y)) = (tail.first()?, tail.last()?);
    let sightings = last_x - first_x;
    if sightings < 1.0 {
        return None;
    }
    // The peak (VmHWM) only rises: where it stood before the last quarter
    // of the sightings counted, and at the end.
    let late_from = first_x + 0.75 * sightings;
    let peak_before = samples[from..]
        .iter()
        .filter(|sample| (sample.sightings as f64) < late_from)
        .filter_map(|sample| sample.peak)
        .max()?;
    let peak_end = samples[from..]
        .iter()
        .filter_map(|sample| sample.peak)
        .max()?;
    Some(Growth {
        per_100k: (last_y - first_y) / sightings * 100_000.0,
        slope: least_squares_slope(&tail).map(|slope| slope * 100_000.0),
        total: last_y - first_y,
        sightings,
        samples: tail.len(),
        peak_before: peak_before as f64,
        peak_end: peak_end as f64,
        late_samples: tail.iter().filter(|(x, _)| *x >= late_from).count(),
    })
}

/// The slope of the least-squares line through `points`.
fn least_squares_slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 3 {
        return None;
    }
    let mean_x = points.iter().map(|(x, _)| x).sum::<f64>() / n;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in points {
        sxy += (x - mean_x) * (y - mean_y);
        sxx += (x - mean_x) * (x - mean_x);
    }
    (sxx > 0.0).then(|| sxy / sxx)
}
