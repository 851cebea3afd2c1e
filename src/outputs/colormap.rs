//! Colour maps for heatmaps (perceptually ordered), shared by the PNG overlays, the reports and
//! the app's shaders (which use the same polynomial fits, see `shaders/`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ColorMap {
    #[default]
    Inferno,
    Viridis,
    Turbo,
    Gray,
}

impl ColorMap {
    pub const ALL: [ColorMap; 4] = [
        ColorMap::Inferno,
        ColorMap::Viridis,
        ColorMap::Turbo,
        ColorMap::Gray,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ColorMap::Inferno => "inferno",
            ColorMap::Viridis => "viridis",
            ColorMap::Turbo => "turbo",
            ColorMap::Gray => "gray",
        }
    }

    /// Index used by the shaders.
    pub fn shader_index(self) -> u32 {
        self as u32
    }

    /// RGB in [0, 1] for t in [0, 1].
    pub fn rgb(self, t: f32) -> [f32; 3] {
        let t = t.clamp(0.0, 1.0);
        let poly = |c: [[f32; 3]; 7]| -> [f32; 3] {
            let mut out = [0f32; 3];
            for (ch, o) in out.iter_mut().enumerate() {
                let mut v = c[6][ch];
                for k in (0..6).rev() {
                    v = v * t + c[k][ch];
                }
                *o = v.clamp(0.0, 1.0);
            }
            out
        };
        match self {
            // Polynomial fits of matplotlib's maps (Matt Zucker, CC0).
            ColorMap::Inferno => poly([
                [0.000_218_94, 0.001_651_004_6, -0.019_480_899],
                [0.106_513_42, 0.563_956_4, 3.932_712_4],
                [11.602_493, -3.972_854, -15.942_394],
                [-41.703_995, 17.436_398, 44.354_145],
                [77.162_94, -33.402_36, -81.807_31],
                [-71.319_43, 32.626_064, 73.209_52],
                [25.131_126, -12.242_669, -23.070_326],
            ]),
            ColorMap::Viridis => poly([
                [0.277_727_34, 0.005_407_344_5, 0.334_099_8],
                [0.105_093_04, 1.404_613_5, 1.384_590_2],
                [-0.330_861_84, 0.214_847_56, 0.095_095_165],
                [-4.634_230_5, -5.799_101, -19.332_441],
                [6.228_27, 14.179_934, 56.690_55],
                [4.776_385, -13.745_146, -65.353_03],
                [-5.435_456, 4.645_852_6, 26.312_435],
            ]),
            ColorMap::Turbo => {
                // Google's Turbo polynomial approximation (Apache-2.0).
                let r = 0.135_721_38
                    + t * (4.615_392_6
                        + t * (-42.660_324 + t * (132.131_08 + t * (-152.942_4 + t * 59.286_38))));
                let g = 0.091_402_61
                    + t * (2.194_188_4
                        + t * (4.842_966_6
                            + t * (-14.185_034 + t * (4.277_298_6 + t * 2.829_566))));
                let b = 0.106_673_3
                    + t * (12.641_946
                        + t * (-60.582_05 + t * (110.362_76 + t * (-89.903_11 + t * 27.348_25))));
                [r.clamp(0.0, 1.0), g.clamp(0.0, 1.0), b.clamp(0.0, 1.0)]
            }
            ColorMap::Gray => [t, t, t],
        }
    }

    pub fn rgb8(self, t: f32) -> [u8; 3] {
        let [r, g, b] = self.rgb(t);
        [
            (r * 255.0 + 0.5) as u8,
            (g * 255.0 + 0.5) as u8,
            (b * 255.0 + 0.5) as u8,
        ]
    }
}

impl std::str::FromStr for ColorMap {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ColorMap::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("unknown colour map '{s}' (inferno, viridis, turbo, gray)"))
    }
}

/// Distinct colours for region outlines (golden-angle hues).
pub fn region_color(i: usize) -> [u8; 3] {
    let h = (i as f32 * 137.507_76) % 360.0;
    let (s, v) = (0.85f32, 1.0f32);
    let c = v * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [
        ((r + m) * 255.0) as u8,
        ((g + m) * 255.0) as u8,
        ((b + m) * 255.0) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_dark_to_bright() {
        for cm in [ColorMap::Inferno, ColorMap::Viridis, ColorMap::Gray] {
            let lum = |c: [f32; 3]| 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
            assert!(
                lum(cm.rgb(0.0)) < lum(cm.rgb(0.5)) && lum(cm.rgb(0.5)) < lum(cm.rgb(1.0)),
                "{cm:?}"
            );
        }
    }
}
