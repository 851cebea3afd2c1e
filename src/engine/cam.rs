//! Grad-CAM per scale and their geometric mean (METHOD.md section 3).

use crate::engine::raster::{Map, resize_bilinear};

/// Small constant of the log-space geometric mean.
pub const GEOMEAN_EPS: f32 = 1e-6;

/// `ReLU(sum_k alpha_k F_k)` at the feature resolution. `features` is C x h x w, C-major.
pub fn class_activation(
    features: &[f32],
    channels: usize,
    h: usize,
    w: usize,
    alpha: &[f32],
) -> Map {
    assert_eq!(
        features.len(),
        channels * h * w,
        "features do not match their shape"
    );
    assert_eq!(
        alpha.len(),
        channels,
        "alpha does not match the channel count"
    );
    let mut acc = vec![0f32; h * w];
    for (k, &a) in alpha.iter().enumerate() {
        if a == 0.0 {
            continue;
        }
        let plane = &features[k * h * w..(k + 1) * h * w];
        for (dst, &f) in acc.iter_mut().zip(plane) {
            *dst += a * f;
        }
    }
    for v in &mut acc {
        *v = v.max(0.0);
    }
    Map::new(w, h, acc)
}

/// `A_i`: the activation upsampled (bilinear, half-pixel centres) to the working size and
/// min-max normalised to [0, 1].
pub fn grad_cam(
    features: &[f32],
    channels: usize,
    h: usize,
    w: usize,
    alpha: &[f32],
    width: usize,
    height: usize,
) -> Map {
    let low = class_activation(features, channels, h, w, alpha);
    Map::new(
        width,
        height,
        resize_bilinear(&low.data, w, h, width, height),
    )
    .normalized()
}

/// `A = (prod_i A_i)^(1/n)` pixel-wise, computed in log space: `exp(mean ln(A_i + eps)) - eps`,
/// clipped to [0, 1].
pub fn geometric_mean(maps: &[&Map]) -> Option<Map> {
    let first = maps.first()?;
    if maps
        .iter()
        .any(|m| m.width != first.width || m.height != first.height)
    {
        return None;
    }
    let n = maps.len() as f32;
    let data = (0..first.data.len())
        .map(|i| {
            let log_sum: f32 = maps.iter().map(|m| (m.data[i] + GEOMEAN_EPS).ln()).sum();
            ((log_sum / n).exp() - GEOMEAN_EPS).clamp(0.0, 1.0)
        })
        .collect();
    Some(Map::new(first.width, first.height, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_is_relu_of_weighted_sum() {
        // 2 channels, 1x2 map.
        let f = [1.0, 2.0, 3.0, -4.0];
        let m = class_activation(&f, 2, 1, 2, &[1.0, 1.0]);
        assert_eq!(m.data, vec![4.0, 0.0]);
    }

    #[test]
    fn geometric_mean_of_equal_maps_is_the_map() {
        let a = Map::new(2, 1, vec![0.25, 1.0]);
        let g = geometric_mean(&[&a, &a, &a]).expect("same size");
        assert!((g.data[0] - 0.25).abs() < 1e-5 && (g.data[1] - 1.0).abs() < 1e-5);
    }

    #[test]
    fn geometric_mean_is_zero_where_any_map_is_zero() {
        let a = Map::new(1, 1, vec![0.0]);
        let b = Map::new(1, 1, vec![1.0]);
        let g = geometric_mean(&[&a, &b, &b]).expect("same size");
        assert!(g.data[0] < 0.01);
    }
}
