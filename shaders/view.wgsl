// tamperscope image view: the photo and the analysis layers blended in one pass.
//
// Bindings (group 0):
//   0 uniform View     per pane, rewritten every frame (transform, opacities, colour maps)
//   1 photo_tex        RGBA8 photo with a box-filtered mip chain (uploaded once per image)
//   2 heat_tex         RGBA8 array at the working resolution, four maps per texel: slot k is
//                      channel k % 4 of layer k / 4. Slots: 0 ELA, 1 A_2, 2 A_3, 3 A_4,
//                      4 A (fused), 5..8 H per segmenter, 9 A-DJPG, 10 NA-DJPG,
//                      11 compression (combined), 12 prior, 13 copy-move
//   3 index_tex        RG16Uint array at the working resolution, one layer per segmenter:
//                      r = region index + 1 per pixel (0 = no region), g = distance to the
//                      nearest region boundary in 1/16 working pixels
//   4 linear_sampler   trilinear, clamp to edge
//   5 nearest_sampler  nearest, for pixel peeping when zoomed in (level 0)
//
// The colour maps are the same polynomial fits as `tamperscope::colormap::ColorMap::rgb`.
//
// Which layers are on, their colour maps and the sampling mode are pipeline-overridable
// constants (one pipeline per combination, made on first use and cached by `gpu.rs`), and the
// per-layer code is unrolled by hand. A GPU would branch on uniforms cheaply, but a software
// rasteriser (Mesa lavapipe) runs both sides of every branch for every pixel: with uniforms
// alone, each pixel paid for all fourteen layers, all four colour maps and all four segmenters.
// Opacities, the chosen region and the highlighted region stay uniforms (sliders and
// hovering do not make new pipelines).

// Bit k: heat slot k is drawn.
override HEAT_ON: u32 = 0u;
// Bits 2k..2k+1: colour map of heat slot k.
override HEAT_CMAPS: u32 = 0u;
// Bit s: segmenter s draws all its masks / darkens outside its chosen mask / may be highlighted.
override SEG_MASKS: u32 = 0u;
override SEG_CHOSEN: u32 = 0u;
override SEG_HIGHLIGHT: u32 = 0u;
// Nearest photo sampling (pixel peeping), sRGB (linear) target.
override NEAREST_PHOTO: bool = false;
override LINEAR_TARGET: bool = false;

struct View {
    // xy: framebuffer position (px) of the photo's top-left corner; z: framebuffer px per photo px;
    // w: 1 when the target is an sRGB (linear) framebuffer.
    origin_scale: vec4<f32>,
    // xy: photo size (px), zw: working size (px).
    sizes: vec4<f32>,
    // Opacity per heat slot (0 = hidden), packed 4 per vec4.
    heat_opacity: array<vec4<f32>, 4>,
    // Colour map id per heat slot (0 inferno, 1 viridis, 2 turbo, 3 gray).
    heat_cmap: array<vec4<u32>, 4>,
    // Per segmenter: opacity of all masks (outlined in distinct colours), of the chosen mask.
    mask_opacity: vec4<f32>,
    chosen_opacity: vec4<f32>,
    // Per segmenter: index of the chosen (evidence) region, -1 for none.
    chosen_index: vec4<i32>,
    // x: segmenter, y: region of the highlighted mask (-1 = none).
    highlight: vec4<i32>,
    // x: display threshold (slots in THRESHOLD_SLOTS), y: background grey, z: 1 = nearest photo sampling.
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

// Region index (-1 = none) of segmenter `s` at working-resolution position `p`, and whether
// `p` lies within `step` working pixels of that region's outline.
struct RegionHit {
    region: i32,
    edge: bool,
};

fn region_at(p: vec2<f32>, s: u32, step: f32) -> RegionHit {
    let size = vec2<i32>(view.sizes.zw);
    let q = clamp(vec2<i32>(floor(p)), vec2<i32>(0), size - vec2<i32>(1));
    let t = textureLoad(index_tex, q, s, 0);
    return RegionHit(i32(t.r) - 1, f32(t.g) < step * 16.0);
}

fn srgb_to_linear(c: vec3<f32>) -> vec3<f32> {
    let lo = c / 12.92;
    let hi = pow((c + 0.055) / 1.055, vec3<f32>(2.4));
    return select(hi, lo, c <= vec3<f32>(0.04045));
}

fn finish(c: vec3<f32>) -> vec4<f32> {
    if LINEAR_TARGET {
        return vec4<f32>(srgb_to_linear(c), 1.0);
    }
    return vec4<f32>(c, 1.0);
}

// The four heat slots of texture layer `l`, sampled only if one of them is shown.
fn heat_texel(l: u32, uv: vec2<f32>) -> vec4<f32> {
    if (HEAT_ON & (15u << (4u * l))) == 0u {
        return vec4<f32>(0.0);
    }
    return textureSampleLevel(heat_tex, linear_sampler, uv, l, 0.0);
}

// Bit k: the display threshold applies to heat slot k: the localisation maps A_2, A_3, A_4,
// A (fused), H per segmenter and the prior; ELA and the compression maps are always drawn in
// full (gpu.rs `THRESHOLD_SLOTS`, checked by a test).
const THRESHOLD_SLOTS: u32 = 0x11feu;

// Heat slot `k` (value `v`) over `c` (k is a literal at every call, so the tests fold away).
// Blending rule, the same as `tamperscope::output::heat_alpha` for the CPU exports: the colour
// of value v covers the photo with alpha = opacity * v, so value 0 leaves the photo untouched
// and only high values hide it; in THRESHOLD_SLOTS values below the threshold are not drawn.
fn heat_layer(c: vec3<f32>, k: u32, v: f32) -> vec3<f32> {
    if (HEAT_ON & (1u << k)) == 0u {
        return c;
    }
    let op = view.heat_opacity[k / 4u][k % 4u];
    let hidden = (THRESHOLD_SLOTS & (1u << k)) != 0u && v < view.misc.x;
    let alpha = select(clamp(op * clamp(v, 0.0, 1.0), 0.0, 1.0), 0.0, hidden);
    return mix(c, colormap((HEAT_CMAPS >> (2u * k)) & 3u, v), alpha);
}

// Segmenter `s`'s masks, chosen mask and highlight over `c` (s is a literal at every call).
fn seg_layer(c_in: vec3<f32>, s: u32, p: vec2<f32>, step: f32) -> vec3<f32> {
    let masks = (SEG_MASKS & (1u << s)) != 0u;
    let chosen_on = (SEG_CHOSEN & (1u << s)) != 0u;
    let may_highlight = (SEG_HIGHLIGHT & (1u << s)) != 0u;
    if !masks && !chosen_on && !may_highlight {
        return c_in;
    }
    var c = c_in;
    let hit = region_at(p, s, step);
    let r = hit.region;
    let edge = r >= 0 && hit.edge;
    if masks {
        let mo = view.mask_opacity[s];
        c = mix(c, region_color(r), select(0.0, select(0.25, 1.0, edge) * mo, r >= 0));
    }
    if chosen_on {
        let co = view.chosen_opacity[s];
        let chosen = view.chosen_index[s];
        if r != chosen {
            c = c * (1.0 - co * 0.67);
        } else if edge {
            c = mix(c, vec3<f32>(0.0, 1.0, 1.0), co);
        }
    }
    if may_highlight && view.highlight.x == i32(s) && r >= 0 && r == view.highlight.y {
        if edge {
            c = vec3<f32>(1.0, 1.0, 0.2);
        } else {
            c = mix(c, vec3<f32>(1.0, 1.0, 0.6), 0.3);
        }
    }
    return c;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    let img = (in.position.xy - view.origin_scale.xy) / view.origin_scale.z;
    let uv = img / view.sizes.xy;
    if uv.x < 0.0 || uv.y < 0.0 || uv.x >= 1.0 || uv.y >= 1.0 {
        return finish(vec3<f32>(view.misc.y));
    }
    var c: vec3<f32>;
    if NEAREST_PHOTO {
        c = textureSampleLevel(photo_tex, nearest_sampler, uv, 0.0).rgb;
    } else {
        // The zoom is the same over the whole pane, so is the mip level: one explicit, whole
        // level (the sharper of the two around the zoom), so one bilinear lookup, not two.
        let lod = floor(max(0.0, -log2(view.origin_scale.z)));
        c = textureSampleLevel(photo_tex, linear_sampler, uv, lod).rgb;
    }
    let h0 = heat_texel(0u, uv);
    let h1 = heat_texel(1u, uv);
    let h2 = heat_texel(2u, uv);
    let h3 = heat_texel(3u, uv);
    // Photo-wide maps first, H of the segmenters on top (gpu.rs `DRAW_ORDER`).
    c = heat_layer(c, 0u, h0[0]);
    c = heat_layer(c, 1u, h0[1]);
    c = heat_layer(c, 2u, h0[2]);
    c = heat_layer(c, 3u, h0[3]);
    c = heat_layer(c, 4u, h1[0]);
    c = heat_layer(c, 9u, h2[1]);
    c = heat_layer(c, 10u, h2[2]);
    c = heat_layer(c, 11u, h2[3]);
    c = heat_layer(c, 12u, h3[0]);
    c = heat_layer(c, 13u, h3[1]);
    c = heat_layer(c, 5u, h1[1]);
    c = heat_layer(c, 6u, h1[2]);
    c = heat_layer(c, 7u, h1[3]);
    c = heat_layer(c, 8u, h2[0]);

    let p = uv * view.sizes.zw;
    // Outlines about 1.5 screen pixels wide at any zoom.
    let screen_per_work = view.origin_scale.z * view.sizes.x / view.sizes.z;
    let step = max(1.5 / screen_per_work, 0.5);
    c = seg_layer(c, 0u, p, step);
    c = seg_layer(c, 1u, p, step);
    c = seg_layer(c, 2u, p, step);
    c = seg_layer(c, 3u, p, step);
    return finish(c);
}
