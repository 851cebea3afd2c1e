// tamperscope image view: the photo and the analysis layers blended in one pass.
//
// Bindings (group 0):
//   0 uniform View     per pane, rewritten every frame (transform, opacities, colour maps)
//   1 photo_tex        RGBA8 photo with a box-filtered mip chain (uploaded once per image)
//   2 heat_tex         R8 array at the working resolution, one layer per map:
//                      0 ELA, 1 A_2, 2 A_3, 3 A_4, 4 A (fused), 5.. H per segmenter
//   3 index_tex        R16Uint array at the working resolution, one layer per segmenter:
//                      region index + 1 per pixel, 0 = no region
//   4 linear_sampler   trilinear, clamp to edge
//   5 nearest_sampler  nearest, for pixel peeping when zoomed in (level 0)
//
// The colour maps are the same polynomial fits as `tamperscope::colormap::ColorMap::rgb`.

const HEAT_SLOTS: u32 = 9u;
const SEGMENTERS: u32 = 4u;

struct View {
    // xy: framebuffer position (px) of the photo's top-left corner; z: framebuffer px per photo px;
    // w: 1 when the target is an sRGB (linear) framebuffer.
    origin_scale: vec4<f32>,
    // xy: photo size (px), zw: working size (px).
    sizes: vec4<f32>,
    // Opacity per heat slot (0 = hidden), packed 4 per vec4.
    heat_opacity: array<vec4<f32>, 3>,
    // Colour map id per heat slot (0 inferno, 1 viridis, 2 turbo, 3 gray).
    heat_cmap: array<vec4<u32>, 3>,
    // Per segmenter: opacity of all masks (outlined in distinct colours), of the chosen mask.
    mask_opacity: vec4<f32>,
    chosen_opacity: vec4<f32>,
    // Per segmenter: index of the chosen (evidence) region, -1 for none.
    chosen_index: vec4<i32>,
    // x: segmenter, y: region of the highlighted mask (-1 = none).
    highlight: vec4<i32>,
    // x: display threshold for heat maps, y: background grey, z: 1 = nearest photo sampling.
    misc: vec4<f32>,
};

@group(0) @binding(0) var<uniform> view: View;
@group(0) @binding(1) var photo_tex: texture_2d<f32>;
@group(0) @binding(2) var heat_tex: texture_2d_array<f32>;
@group(0) @binding(3) var index_tex: texture_2d_array<u32>;
@group(0) @binding(4) var linear_sampler: sampler;
@group(0) @binding(5) var nearest_sampler: sampler;

struct VsOut {
    @builtin(position) position: vec4<f32>,
};

// One triangle covering the viewport egui gives the callback.
@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> VsOut {
    let x = f32(i32(i & 1u) * 4 - 1);
    let y = f32(i32(i >> 1u) * 4 - 1);
    var out: VsOut;
    out.position = vec4<f32>(x, y, 0.0, 1.0);
    return out;
}

fn poly7(c0: vec3<f32>, c1: vec3<f32>, c2: vec3<f32>, c3: vec3<f32>, c4: vec3<f32>, c5: vec3<f32>, c6: vec3<f32>, t: f32) -> vec3<f32> {
    return clamp(c0 + t * (c1 + t * (c2 + t * (c3 + t * (c4 + t * (c5 + t * c6))))), vec3<f32>(0.0), vec3<f32>(1.0));
}

fn colormap(id: u32, v: f32) -> vec3<f32> {
    let t = clamp(v, 0.0, 1.0);
    switch id {
        case 0u: {
            return poly7(
                vec3<f32>(0.00021894, 0.0016510046, -0.019480899),
                vec3<f32>(0.10651342, 0.5639564, 3.9327124),
                vec3<f32>(11.602493, -3.972854, -15.942394),
                vec3<f32>(-41.703995, 17.436398, 44.354145),
                vec3<f32>(77.16294, -33.40236, -81.80731),
                vec3<f32>(-71.31943, 32.626064, 73.20952),
                vec3<f32>(25.131126, -12.242669, -23.070326),
                t,
            );
        }
        case 1u: {
            return poly7(
                vec3<f32>(0.27772734, 0.0054073445, 0.3340998),
                vec3<f32>(0.10509304, 1.4046135, 1.3845902),
                vec3<f32>(-0.33086184, 0.21484756, 0.095095165),
                vec3<f32>(-4.6342305, -5.799101, -19.332441),
                vec3<f32>(6.22827, 14.179934, 56.69055),
                vec3<f32>(4.776385, -13.745146, -65.35303),
                vec3<f32>(-5.435456, 4.6458526, 26.312435),
                t,
            );
        }
        case 2u: {
            let r = 0.13572138 + t * (4.6153926 + t * (-42.660324 + t * (132.13108 + t * (-152.9424 + t * 59.28638))));
            let g = 0.09140261 + t * (2.1941884 + t * (4.8429666 + t * (-14.185034 + t * (4.2772986 + t * 2.829566))));
            let b = 0.1066733 + t * (12.641946 + t * (-60.58205 + t * (110.36276 + t * (-89.90311 + t * 27.34825))));
            return clamp(vec3<f32>(r, g, b), vec3<f32>(0.0), vec3<f32>(1.0));
        }
        default: {
            return vec3<f32>(t, t, t);
        }
    }
}

// Same golden-angle hues as `tamperscope::colormap::region_color`.
fn region_color(i: i32) -> vec3<f32> {
    let h = (f32(i) * 137.50776) % 360.0;
    let c = 0.85;
    let x = c * (1.0 - abs((h / 60.0) % 2.0 - 1.0));
    let sector = u32(h / 60.0);
    var rgb = vec3<f32>(c, 0.0, x);
    if sector == 0u {
        rgb = vec3<f32>(c, x, 0.0);
    } else if sector == 1u {
        rgb = vec3<f32>(x, c, 0.0);
    } else if sector == 2u {
        rgb = vec3<f32>(0.0, c, x);
    } else if sector == 3u {
        rgb = vec3<f32>(0.0, x, c);
    } else if sector == 4u {
        rgb = vec3<f32>(x, 0.0, c);
    }
    return rgb + vec3<f32>(1.0 - c);
}

// Region index (-1 = none) of segmenter `s` at working-resolution position `p`.
fn region_at(p: vec2<f32>, s: u32) -> i32 {
    let size = vec2<i32>(view.sizes.zw);
    let q = vec2<i32>(floor(p));
    if q.x < 0 || q.y < 0 || q.x >= size.x || q.y >= size.y {
        return -1;
    }
    return i32(textureLoad(index_tex, q, s, 0).r) - 1;
}

// Whether `p` lies inside region `r` within `step` working pixels of its outline.
fn on_edge(p: vec2<f32>, s: u32, r: i32, step: f32) -> bool {
    return region_at(p + vec2<f32>(step, 0.0), s) != r || region_at(p - vec2<f32>(step, 0.0), s) != r
        || region_at(p + vec2<f32>(0.0, step), s) != r || region_at(p - vec2<f32>(0.0, step), s) != r;
}

fn srgb_to_linear(c: vec3<f32>) -> vec3<f32> {
    let lo = c / 12.92;
    let hi = pow((c + 0.055) / 1.055, vec3<f32>(2.4));
    return select(hi, lo, c <= vec3<f32>(0.04045));
}

fn finish(c: vec3<f32>) -> vec4<f32> {
    if view.origin_scale.w > 0.5 {
        return vec4<f32>(srgb_to_linear(c), 1.0);
    }
    return vec4<f32>(c, 1.0);
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    let img = (in.position.xy - view.origin_scale.xy) / view.origin_scale.z;
    let uv = img / view.sizes.xy;
    if uv.x < 0.0 || uv.y < 0.0 || uv.x >= 1.0 || uv.y >= 1.0 {
        return finish(vec3<f32>(view.misc.y));
    }
    // The zoom is the same over the whole pane, so is the mip level: explicit LOD, one sample.
    let lod = max(0.0, -log2(view.origin_scale.z));
    var c: vec3<f32>;
    if view.misc.z > 0.5 {
        c = textureSampleLevel(photo_tex, nearest_sampler, uv, 0.0).rgb;
    } else {
        c = textureSampleLevel(photo_tex, linear_sampler, uv, lod).rgb;
    }

    for (var k = 0u; k < HEAT_SLOTS; k++) {
        let op = view.heat_opacity[k / 4u][k % 4u];
        if op > 0.0 {
            let v = textureSampleLevel(heat_tex, linear_sampler, uv, k, 0.0).r;
            if v >= view.misc.x {
                c = mix(c, colormap(view.heat_cmap[k / 4u][k % 4u], v), op);
            }
        }
    }

    let p = uv * view.sizes.zw;
    // Outlines about 1.5 screen pixels wide at any zoom.
    let screen_per_work = view.origin_scale.z * view.sizes.x / view.sizes.z;
    let step = max(1.5 / screen_per_work, 0.5);
    for (var s = 0u; s < SEGMENTERS; s++) {
        let mo = view.mask_opacity[s];
        let co = view.chosen_opacity[s];
        let highlighted = view.highlight.x == i32(s) && view.highlight.y >= 0;
        if mo <= 0.0 && co <= 0.0 && !highlighted {
            continue;
        }
        let r = region_at(p, s);
        if r < 0 && co <= 0.0 {
            continue;
        }
        // One outline test per segmenter, shared by the three uses below.
        let edge = r >= 0 && on_edge(p, s, r, step);
        if mo > 0.0 && r >= 0 {
            c = mix(c, region_color(r), select(0.25, 1.0, edge) * mo);
        }
        let chosen = view.chosen_index[s];
        if co > 0.0 && chosen >= 0 {
            if r != chosen {
                c = c * (1.0 - co * 0.67);
            } else if edge {
                c = mix(c, vec3<f32>(0.0, 1.0, 1.0), co);
            }
        }
        if highlighted && r == view.highlight.y {
            if edge {
                c = vec3<f32>(1.0, 1.0, 0.2);
            } else {
                c = mix(c, vec3<f32>(1.0, 1.0, 0.6), 0.3);
            }
        }
    }
    return finish(c);
}
