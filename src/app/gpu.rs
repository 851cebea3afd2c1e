//! The wgpu side of the viewer: the render pipelines of `shaders/view.wgsl` (one per
//! combination of visible layers, see [`ShaderKey`]), the textures of the current image, and
//! one small uniform buffer per view pane. Lives in egui-wgpu's
//! `callback_resources`; the paint callback (`viewer.rs`) carries only `Arc`s to the CPU data and
//! the per-frame uniforms, and a texture layer is written only when its generation changes.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use egui_wgpu::wgpu;
use image::RgbImage;

/// Heat-map slots of the `heat_tex` array: ELA, A_2, A_3, A_4, A, H per segmenter, then the
/// compression layers (A-DJPG, NA-DJPG, combined), the prior and the copy-move map. A and H
/// share a texel, so the default view (A and one H) costs one texture sample.
pub const HEAT_SLOTS: usize = 14;
pub const SLOT_ELA: usize = 0;
pub const SLOT_FUSED: usize = 4;
pub const SLOT_REFINED0: usize = 5;
pub const SLOT_ADJPG: usize = 9;
pub const SLOT_NA_DJPG: usize = 10;
pub const SLOT_COMPRESSION: usize = 11;
pub const SLOT_PRIOR: usize = 12;
pub const SLOT_COPY_MOVE: usize = 13;
/// The order in which the shader blends the slots over the photo (H on top), as `fs_main` in
/// `shaders/view.wgsl`; the CPU composition of "Export layers" follows it.
pub const DRAW_ORDER: [usize; HEAT_SLOTS] = [0, 1, 2, 3, 4, 9, 10, 11, 12, 13, 5, 6, 7, 8];
/// Bit k: the display threshold applies to heat slot k. It hides the low values of the
/// localisation maps (A_2, A_3, A_4, A, H of each segmenter, the prior); ELA and the compression
/// maps are always drawn in full. The shader has the same constant (`THRESHOLD_SLOTS`).
pub const THRESHOLD_SLOTS: u32 = (1 << 1)
    | (1 << 2)
    | (1 << 3)
    | (1 << SLOT_FUSED)
    | (((1 << MAX_SEGMENTERS) - 1) << SLOT_REFINED0)
    | (1 << SLOT_PRIOR);
/// The layers the display threshold applies to, as the slider names them.
pub const THRESHOLD_SCOPE: &str = "A, A_2-4, H, prior";
/// Whether the display threshold applies to heat slot `slot`.
pub fn thresholded(slot: usize) -> bool {
    slot < 32 && THRESHOLD_SLOTS & (1 << slot) != 0
}
// `ShaderKey` packs 2 bits of colour map per slot in one u32 pipeline constant.
const _: () = assert!(2 * HEAT_SLOTS <= 32, "too many heat slots for HEAT_CMAPS");
/// The heat slots are packed four to a texel: `heat_tex` is an RGBA8 array with this many layers,
/// so the slots a pane shows usually cost one texture sample, not one each.
pub const HEAT_TEXTURE_LAYERS: usize = HEAT_SLOTS.div_ceil(4);
/// Segmenters the shader can show at once (masks, chosen mask, H).
pub const MAX_SEGMENTERS: usize = 4;
/// Compare view panes (the main view is pane 0).
pub const MAX_PANES: usize = 4;

/// Slot of a heat layer.
pub fn heat_slot(layer: super::state::HeatLayer) -> usize {
    use super::state::HeatLayer;
    match layer {
        HeatLayer::Ela => SLOT_ELA,
        HeatLayer::Cam2 => 1,
        HeatLayer::Cam3 => 2,
        HeatLayer::Cam4 => 3,
        HeatLayer::Fused => SLOT_FUSED,
        HeatLayer::Adjpg => SLOT_ADJPG,
        HeatLayer::NaDjpg => SLOT_NA_DJPG,
        HeatLayer::Compression => SLOT_COMPRESSION,
        HeatLayer::Prior => SLOT_PRIOR,
        HeatLayer::CopyMove => SLOT_COPY_MOVE,
    }
}

/// Slot of `A_v` for classifier variant `v` (2, 3 or 4).
pub fn slot_cam(variant: u32) -> Option<usize> {
    match variant {
        2..=4 => Some(variant as usize - 1),
        _ => None,
    }
}

/// Per-frame, per-pane uniforms; layout mirrors `struct View` in `shaders/view.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub struct ViewUniforms {
    pub origin_scale: [f32; 4],
    pub sizes: [f32; 4],
    pub heat_opacity: [[f32; 4]; HEAT_TEXTURE_LAYERS],
    pub heat_cmap: [[u32; 4]; HEAT_TEXTURE_LAYERS],
    pub mask_opacity: [f32; 4],
    pub chosen_opacity: [f32; 4],
    pub chosen_index: [i32; 4],
    pub highlight: [i32; 4],
    pub misc: [f32; 4],
}

impl ViewUniforms {
    pub fn set_heat(&mut self, slot: usize, opacity: f32, cmap: u32) {
        self.heat_opacity[slot / 4][slot % 4] = opacity;
        self.heat_cmap[slot / 4][slot % 4] = cmap;
    }
    pub fn heat(&self, slot: usize) -> f32 {
        self.heat_opacity[slot / 4][slot % 4]
    }
}

/// What the view shader is specialised for: the pipeline-overridable constants of
/// `shaders/view.wgsl`, derived from a pane's uniforms. Layers that are off cost nothing, even
/// on a software rasteriser that would otherwise run every branch for every pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShaderKey {
    heat_on: u32,
    heat_cmaps: u32,
    seg_masks: u32,
    seg_chosen: u32,
    seg_highlight: u32,
    nearest_photo: bool,
    linear_target: bool,
}

impl ShaderKey {
    pub fn of(u: &ViewUniforms) -> ShaderKey {
        let mut key = ShaderKey {
            heat_on: 0,
            heat_cmaps: 0,
            seg_masks: 0,
            seg_chosen: 0,
            seg_highlight: 0,
            nearest_photo: u.misc[2] > 0.5,
            linear_target: u.origin_scale[3] > 0.5,
        };
        for slot in 0..HEAT_SLOTS {
            if u.heat(slot) > 0.0 {
                key.heat_on |= 1 << slot;
                key.heat_cmaps |= (u.heat_cmap[slot / 4][slot % 4] & 3) << (2 * slot);
            }
        }
        for s in 0..MAX_SEGMENTERS {
            if u.mask_opacity[s] > 0.0 {
                key.seg_masks |= 1 << s;
            }
            if u.chosen_opacity[s] > 0.0 && u.chosen_index[s] >= 0 {
                key.seg_chosen |= 1 << s;
            }
            if u.highlight[0] == s as i32 && u.highlight[1] >= 0 {
                key.seg_highlight |= 1 << s;
            }
        }
        key
    }

    fn constants(&self) -> [(&'static str, f64); 7] {
        [
            ("HEAT_ON", f64::from(self.heat_on)),
            ("HEAT_CMAPS", f64::from(self.heat_cmaps)),
            ("SEG_MASKS", f64::from(self.seg_masks)),
            ("SEG_CHOSEN", f64::from(self.seg_chosen)),
            ("SEG_HIGHLIGHT", f64::from(self.seg_highlight)),
            ("NEAREST_PHOTO", f64::from(u8::from(self.nearest_photo))),
            ("LINEAR_TARGET", f64::from(u8::from(self.linear_target))),
        ]
    }
}

/// Pipelines kept at most; a session rarely uses more than a handful of layer combinations.
const MAX_PIPELINES: usize = 64;

/// The photo as RGBA8 with a 2x2 box-filtered mip chain (built on the worker).
pub struct PhotoMips {
    pub width: u32,
    pub height: u32,
    pub levels: Vec<Vec<u8>>,
}

impl PhotoMips {
    /// Mip chain of `rgb`, downscaled first (area) if a side exceeds `max_side`.
    pub fn build(rgb: &RgbImage, max_side: u32) -> PhotoMips {
        let (w, h) = (rgb.width(), rgb.height());
        let base: RgbImage = if w.max(h) > max_side {
            let (nw, nh) = tamperscope::engine::raster::working_size(w, h, max_side);
            tamperscope::engine::pipeline::downscale_rgb(rgb, nw, nh)
        } else {
            rgb.clone()
        };
        let (mut w, mut h) = (base.width() as usize, base.height() as usize);
        let mut level: Vec<u8> = Vec::with_capacity(w * h * 4);
        for p in base.pixels() {
            level.extend_from_slice(&[p.0[0], p.0[1], p.0[2], 255]);
        }
        let (width, height) = (w as u32, h as u32);
        let mut levels = vec![level];
        while w > 1 || h > 1 {
            let (nw, nh) = ((w / 2).max(1), (h / 2).max(1));
            let src = &levels[levels.len() - 1];
            let mut dst = vec![0u8; nw * nh * 4];
            for y in 0..nh {
                let (y0, y1) = ((2 * y).min(h - 1), (2 * y + 1).min(h - 1));
                for x in 0..nw {
                    let (x0, x1) = ((2 * x).min(w - 1), (2 * x + 1).min(w - 1));
                    for c in 0..4 {
                        let s = src[(y0 * w + x0) * 4 + c] as u32
                            + src[(y0 * w + x1) * 4 + c] as u32
                            + src[(y1 * w + x0) * 4 + c] as u32
                            + src[(y1 * w + x1) * 4 + c] as u32;
                        dst[(y * nw + x) * 4 + c] = ((s + 2) / 4) as u8;
                    }
                }
            }
            levels.push(dst);
            (w, h) = (nw, nh);
        }
        PhotoMips {
            width,
            height,
            levels,
        }
    }
}

/// A piece of CPU data to mirror on the GPU; `generation` is unique across the app's lifetime.
pub struct Upload<T> {
    pub generation: u64,
    pub data: Arc<T>,
}

impl<T> Clone for Upload<T> {
    fn clone(&self) -> Self {
        Self {
            generation: self.generation,
            data: self.data.clone(),
        }
    }
}

/// What the GPU should hold for the current image. Cheap to clone (only `Arc`s).
#[derive(Clone, Default)]
pub struct SceneData {
    pub photo: Option<Upload<PhotoMips>>,
    /// Working resolution of the maps and masks.
    pub work_size: (u32, u32),
    /// R8 per heat slot (`work_size`).
    pub heat: [Option<Upload<Vec<u8>>>; HEAT_SLOTS],
    /// Per segmenter slot, two u16 per pixel: region index + 1 (0 = none), and the distance to
    /// the nearest region boundary in 1/16 working pixels (see `IndexTexel`).
    pub index: [Option<Upload<Vec<u16>>>; MAX_SEGMENTERS],
}

struct LayeredTexture {
    size: (u32, u32),
    texture: wgpu::Texture,
    view: wgpu::TextureView,
    generations: Vec<u64>,
}

struct PaneGpu {
    uniforms: wgpu::Buffer,
    bind_group: Option<(u64, wgpu::BindGroup)>,
    key: Option<ShaderKey>,
}

/// Upload counters (for the stats log and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UploadStats {
    pub photo: u64,
    pub heat_layers: u64,
    pub index_layers: u64,
    pub bytes: u64,
    /// View pipelines compiled (one per combination of visible layers).
    pub pipelines: u64,
}

pub struct GpuResources {
    module: wgpu::ShaderModule,
    pipeline_layout: wgpu::PipelineLayout,
    target_format: wgpu::TextureFormat,
    pipelines: HashMap<ShaderKey, wgpu::RenderPipeline>,
    layout: wgpu::BindGroupLayout,
    linear: wgpu::Sampler,
    nearest: wgpu::Sampler,
    photo: LayeredTexture,
    heat: LayeredTexture,
    index: LayeredTexture,
    panes: Vec<PaneGpu>,
    /// Bumped whenever a texture object is replaced, so bind groups are rebuilt.
    epoch: u64,
    pub uploads: UploadStats,
}

const SHADER: &str = include_str!("../../shaders/view.wgsl");

impl GpuResources {
    pub fn new(device: &wgpu::Device, target_format: wgpu::TextureFormat) -> GpuResources {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("tamperscope_view"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        let tex_entry = |binding: u32, sample_type, view_dimension| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Texture {
                multisampled: false,
                sample_type,
                view_dimension,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("tamperscope_view_layout"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: NonZeroU64::new(
                            std::mem::size_of::<ViewUniforms>() as u64
                        ),
                    },
                    count: None,
                },
                tex_entry(
                    1,
                    wgpu::TextureSampleType::Float { filterable: true },
                    wgpu::TextureViewDimension::D2,
                ),
                tex_entry(
                    2,
                    wgpu::TextureSampleType::Float { filterable: true },
                    wgpu::TextureViewDimension::D2Array,
                ),
                tex_entry(
                    3,
                    wgpu::TextureSampleType::Uint,
                    wgpu::TextureViewDimension::D2Array,
                ),
                wgpu::BindGroupLayoutEntry {
                    binding: 4,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 5,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("tamperscope_view_pipeline_layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let sampler = |filter: wgpu::FilterMode, mip: wgpu::MipmapFilterMode| {
            device.create_sampler(&wgpu::SamplerDescriptor {
                label: Some("tamperscope_view_sampler"),
                address_mode_u: wgpu::AddressMode::ClampToEdge,
                address_mode_v: wgpu::AddressMode::ClampToEdge,
                mag_filter: filter,
                min_filter: wgpu::FilterMode::Linear,
                mipmap_filter: mip,
                ..Default::default()
            })
        };
        let linear = sampler(wgpu::FilterMode::Linear, wgpu::MipmapFilterMode::Linear);
        let nearest = sampler(wgpu::FilterMode::Nearest, wgpu::MipmapFilterMode::Linear);
        let photo = make_texture(
            device,
            (1, 1),
            1,
            1,
            wgpu::TextureFormat::Rgba8Unorm,
            wgpu::TextureViewDimension::D2,
        );
        let heat = make_heat_texture(device, (1, 1));
        let index = make_index_texture(device, (1, 1));
        let panes = (0..MAX_PANES)
            .map(|_| PaneGpu {
                uniforms: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("tamperscope_view_uniforms"),
                    size: std::mem::size_of::<ViewUniforms>() as u64,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                bind_group: None,
                key: None,
            })
            .collect();
        GpuResources {
            module,
            pipeline_layout,
            target_format,
            pipelines: HashMap::new(),
            layout,
            linear,
            nearest,
            photo,
            heat,
            index,
            panes,
            epoch: 1,
            uploads: UploadStats::default(),
        }
    }

    /// The view pipeline specialised for `key` (compiled on first use).
    fn pipeline_for(&mut self, device: &wgpu::Device, key: ShaderKey) {
        if self.pipelines.contains_key(&key) {
            return;
        }
        if self.pipelines.len() >= MAX_PIPELINES {
            self.pipelines.clear();
        }
        let constants = key.constants();
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("tamperscope_view_pipeline"),
            layout: Some(&self.pipeline_layout),
            vertex: wgpu::VertexState {
                module: &self.module,
                entry_point: Some("vs_main"),
                buffers: &[],
                compilation_options: wgpu::PipelineCompilationOptions::default(),
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &self.module,
                entry_point: Some("fs_main"),
                targets: &[Some(wgpu::ColorTargetState {
                    format: self.target_format,
                    blend: None,
                    write_mask: wgpu::ColorWrites::ALL,
                })],
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    ..Default::default()
                },
            }),
            multiview_mask: None,
            cache: None,
        });
        self.pipelines.insert(key, pipeline);
        self.uploads.pipelines += 1;
    }

    /// Bring the textures in line with `scene`: only layers whose generation changed are written.
    pub fn sync(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, scene: &SceneData) {
        if let Some(photo) = &scene.photo
            && self.photo.generations[0] != photo.generation
        {
            let p = &photo.data;
            if self.photo.size != (p.width, p.height)
                || self.photo.texture.mip_level_count() != p.levels.len() as u32
            {
                self.photo = make_texture(
                    device,
                    (p.width, p.height),
                    1,
                    p.levels.len() as u32,
                    wgpu::TextureFormat::Rgba8Unorm,
                    wgpu::TextureViewDimension::D2,
                );
                self.epoch += 1;
            }
            let (mut w, mut h) = (p.width, p.height);
            for (mip, level) in p.levels.iter().enumerate() {
                write_layer(queue, &self.photo.texture, mip as u32, 0, (w, h), 4, level);
                self.uploads.bytes += level.len() as u64;
                (w, h) = ((w / 2).max(1), (h / 2).max(1));
            }
            self.photo.generations[0] = photo.generation;
            self.uploads.photo += 1;
        }
        let (w, h) = (scene.work_size.0.max(1), scene.work_size.1.max(1));
        if self.heat.size != (w, h) {
            self.heat = make_heat_texture(device, (w, h));
            self.index = make_index_texture(device, (w, h));
            self.epoch += 1;
        }
        let n = (w * h) as usize;
        for layer in 0..HEAT_TEXTURE_LAYERS {
            let slots = 4 * layer..(4 * layer + 4).min(HEAT_SLOTS);
            let generation = |slot: usize| {
                scene.heat[slot]
                    .as_ref()
                    .filter(|up| up.data.len() == n)
                    .map_or(0, |up| up.generation)
            };
            if slots
                .clone()
                .all(|slot| self.heat.generations[slot] == generation(slot))
            {
                continue;
            }
            // Interleave the layer's four slots (missing ones are zero).
            let mut texels = vec![0u8; 4 * n];
            for slot in slots.clone() {
                if let Some(up) = scene.heat[slot].as_ref().filter(|up| up.data.len() == n) {
                    for (t, &v) in texels[slot % 4..].iter_mut().step_by(4).zip(up.data.iter()) {
                        *t = v;
                    }
                }
                if self.heat.generations[slot] != generation(slot) {
                    self.uploads.heat_layers += 1;
                }
                self.heat.generations[slot] = generation(slot);
            }
            write_layer(
                queue,
                &self.heat.texture,
                0,
                layer as u32,
                (w, h),
                4,
                &texels,
            );
            self.uploads.bytes += texels.len() as u64;
        }
        for (slot, layer) in scene.index.iter().enumerate() {
            if let Some(up) = layer
                && self.index.generations[slot] != up.generation
                && up.data.len() == 2 * n
            {
                write_layer(
                    queue,
                    &self.index.texture,
                    0,
                    slot as u32,
                    (w, h),
                    4,
                    bytemuck::cast_slice(&up.data),
                );
                self.index.generations[slot] = up.generation;
                self.uploads.index_layers += 1;
                self.uploads.bytes += 2 * up.data.len() as u64;
            }
        }
    }

    /// Write a pane's uniforms (the only per-frame upload) and make sure its bind group is current.
    pub fn prepare_pane(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        pane: usize,
        uniforms: &ViewUniforms,
    ) {
        let epoch = self.epoch;
        let key = ShaderKey::of(uniforms);
        if pane >= self.panes.len() {
            return;
        }
        self.pipeline_for(device, key);
        let Some(p) = self.panes.get_mut(pane) else {
            return;
        };
        p.key = Some(key);
        queue.write_buffer(&p.uniforms, 0, bytemuck::bytes_of(uniforms));
        if p.bind_group.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let bg = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("tamperscope_view_bind_group"),
                layout: &self.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: p.uniforms.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::TextureView(&self.photo.view),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: wgpu::BindingResource::TextureView(&self.heat.view),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: wgpu::BindingResource::TextureView(&self.index.view),
                    },
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: wgpu::BindingResource::Sampler(&self.linear),
                    },
                    wgpu::BindGroupEntry {
                        binding: 5,
                        resource: wgpu::BindingResource::Sampler(&self.nearest),
                    },
                ],
            });
            p.bind_group = Some((epoch, bg));
        }
    }

    pub fn paint(&self, pane: usize, render_pass: &mut wgpu::RenderPass<'static>) {
        let Some(p) = self.panes.get(pane) else {
            return;
        };
        let (Some((_, bg)), Some(pipeline)) = (
            p.bind_group.as_ref(),
            p.key.and_then(|k| self.pipelines.get(&k)),
        ) else {
            return;
        };
        render_pass.set_pipeline(pipeline);
        render_pass.set_bind_group(0, bg, &[]);
        render_pass.draw(0..3, 0..1);
    }
}

/// RGBA8 array: heat slot k is channel k % 4 of layer k / 4. Generations are kept per slot.
fn make_heat_texture(device: &wgpu::Device, size: (u32, u32)) -> LayeredTexture {
    let mut t = make_texture(
        device,
        size,
        HEAT_TEXTURE_LAYERS as u32,
        1,
        wgpu::TextureFormat::Rgba8Unorm,
        wgpu::TextureViewDimension::D2Array,
    );
    t.generations = vec![0; HEAT_SLOTS];
    t
}

/// RG16Uint array, one layer per segmenter: region index + 1, boundary distance (1/16 px).
fn make_index_texture(device: &wgpu::Device, size: (u32, u32)) -> LayeredTexture {
    make_texture(
        device,
        size,
        MAX_SEGMENTERS as u32,
        1,
        wgpu::TextureFormat::Rg16Uint,
        wgpu::TextureViewDimension::D2Array,
    )
}

fn make_texture(
    device: &wgpu::Device,
    size: (u32, u32),
    layers: u32,
    mips: u32,
    format: wgpu::TextureFormat,
    dimension: wgpu::TextureViewDimension,
) -> LayeredTexture {
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("tamperscope_layer"),
        size: wgpu::Extent3d {
            width: size.0.max(1),
            height: size.1.max(1),
            depth_or_array_layers: layers,
        },
        mip_level_count: mips,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    let view = texture.create_view(&wgpu::TextureViewDescriptor {
        dimension: Some(dimension),
        ..Default::default()
    });
    LayeredTexture {
        size,
        texture,
        view,
        generations: vec![0; layers as usize],
    }
}

fn write_layer(
    queue: &wgpu::Queue,
    texture: &wgpu::Texture,
    mip: u32,
    layer: u32,
    (w, h): (u32, u32),
    bytes_per_px: u32,
    data: &[u8],
) {
    queue.write_texture(
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: mip,
            origin: wgpu::Origin3d {
                x: 0,
                y: 0,
                z: layer,
            },
            aspect: wgpu::TextureAspect::All,
        },
        data,
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(w * bytes_per_px),
            rows_per_image: Some(h),
        },
        wgpu::Extent3d {
            width: w,
            height: h,
            depth_or_array_layers: 1,
        },
    );
}

/// The paint callback of one view pane.
pub struct ViewCallback {
    pub pane: usize,
    pub scene: SceneData,
    pub uniforms: ViewUniforms,
}

impl egui_wgpu::CallbackTrait for ViewCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(gpu) = resources.get_mut::<GpuResources>() {
            gpu.sync(device, queue, &self.scene);
            gpu.prepare_pane(device, queue, self.pane, &self.uniforms);
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(gpu) = resources.get::<GpuResources>() {
            gpu.paint(self.pane, render_pass);
        }
    }
}

/// Install the pipeline in egui-wgpu's callback resources. Returns false without a wgpu renderer.
pub fn install(render_state: Option<&egui_wgpu::RenderState>) -> bool {
    let Some(rs) = render_state else { return false };
    let gpu = GpuResources::new(&rs.device, rs.target_format);
    rs.renderer.write().callback_resources.insert(gpu);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_layout_matches_wgsl() {
        // vec4 blocks: origin_scale, sizes, 4 heat_opacity, 4 heat_cmap, 5 more.
        assert_eq!(std::mem::size_of::<ViewUniforms>(), 16 * 15);
        assert!(SHADER.contains("heat_opacity: array<vec4<f32>, 4>"));
        assert!(SHADER.contains("heat_cmap: array<vec4<u32>, 4>"));
        assert!(
            SHADER.contains(&format!(
                "const THRESHOLD_SLOTS: u32 = {THRESHOLD_SLOTS:#x}u;"
            )),
            "the shader's THRESHOLD_SLOTS is {THRESHOLD_SLOTS:#x}"
        );
    }

    #[test]
    fn the_threshold_leaves_ela_and_the_compression_maps_alone() {
        for slot in [
            SLOT_ELA,
            SLOT_ADJPG,
            SLOT_NA_DJPG,
            SLOT_COMPRESSION,
            SLOT_COPY_MOVE,
        ] {
            assert!(!thresholded(slot), "slot {slot}");
        }
        for slot in [
            1,
            2,
            3,
            SLOT_FUSED,
            SLOT_REFINED0,
            SLOT_REFINED0 + 3,
            SLOT_PRIOR,
        ] {
            assert!(thresholded(slot), "slot {slot}");
        }
    }

    #[test]
    fn every_slot_is_drawn_once_and_layers_have_their_own_slot() {
        let mut order = DRAW_ORDER.to_vec();
        order.sort_unstable();
        assert_eq!(order, (0..HEAT_SLOTS).collect::<Vec<_>>());
        let mut slots: Vec<usize> = super::super::state::HeatLayer::ALL
            .into_iter()
            .map(heat_slot)
            .collect();
        slots.extend((0..MAX_SEGMENTERS).map(|i| SLOT_REFINED0 + i));
        slots.sort_unstable();
        assert_eq!(slots, (0..HEAT_SLOTS).collect::<Vec<_>>());
        for v in 2..=4 {
            let layer = super::super::state::HeatLayer::ALL[v as usize - 1];
            assert_eq!(slot_cam(v), Some(heat_slot(layer)));
        }
    }

    #[test]
    fn mips_halve_to_one_pixel() {
        let img = RgbImage::from_fn(5, 3, |x, _| image::Rgb([x as u8 * 50, 0, 0]));
        let m = PhotoMips::build(&img, 8192);
        assert_eq!((m.width, m.height), (5, 3));
        assert_eq!(m.levels.len(), 3);
        assert_eq!(m.levels[2].len(), 4);
    }
}
