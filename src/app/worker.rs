//! The analysis worker: a thread that owns the [`Engine`], runs one image through the method
//! stage after stage and sends each stage's result back as soon as it is done. The UI thread
//! never blocks on it; every message wakes the UI with `request_repaint`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

use image::RgbImage;
use tamperscope::engine::copymove::CopyMove;
use tamperscope::engine::imageio::ImageInfo;
use tamperscope::engine::pipeline::{
    AnalysisParams, CompressionMaps, Engine, Progress, Unavailable, VariantResult,
    compression_maps, copy_move_on_working, downscale_rgb,
};
use tamperscope::engine::raster::{Map, working_size};
use tamperscope::engine::segment::felzenszwalb::{self, FelzenszwalbParams};
use tamperscope::engine::segment::{MaskRule, Segmentation};
use tamperscope::models::registry::install_hint;

use super::gpu::PhotoMips;

/// Largest photo texture side (wgpu's default limit).
pub const MAX_TEXTURE_SIDE: u32 = 8192;

pub enum Request {
    /// Analyse an image; `rule` is the minimum-area rule for built-in segmenters (semantic ones
    /// return every component and are filtered in the UI).
    Analyze {
        job: u64,
        path: PathBuf,
        cancel: Arc<AtomicBool>,
        rule: MaskRule,
    },
    /// Re-run only the built-in (cheap) segmenters of the last image with another rule.
    Resegment {
        job: u64,
        rule: MaskRule,
    },
    /// Close the engine and open it again from the model folders (after installing a model).
    Reload,
    Shutdown,
}

pub enum Reply {
    EngineOpened {
        error: Option<String>,
        unavailable: Vec<Unavailable>,
        missing: Vec<(String, String)>,
        segmenters: Vec<String>,
        classifiers: Vec<String>,
    },
    Progress {
        job: u64,
        progress: Progress,
    },
    Photo {
        job: u64,
        info: ImageInfo,
        photo: Arc<RgbImage>,
        mips: Arc<PhotoMips>,
    },
    Prepared {
        job: u64,
        working: Arc<RgbImage>,
        ela: Map,
    },
    /// Compression-history evidence at the working resolution (before the classifier runs).
    Compression {
        job: u64,
        maps: Box<CompressionMaps>,
    },
    /// Copy-move evidence: map at the working resolution, regions in pixels of the file.
    CopyMove {
        job: u64,
        evidence: Box<CopyMove>,
    },
    Classified {
        job: u64,
        variants: Vec<VariantResult>,
        fused: Map,
    },
    Segmented {
        job: u64,
        name: String,
        segmentation: Segmentation,
        ms: f64,
    },
    SegmenterFailed {
        job: u64,
        name: String,
        reason: String,
    },
    Done {
        job: u64,
        total_ms: f64,
    },
    Failed {
        job: u64,
        error: String,
    },
    Cancelled {
        job: u64,
    },
}

/// The UI's end of the worker.
pub struct WorkerHandle {
    pub tx: Sender<Request>,
    pub rx: Receiver<Reply>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Run the analysis below the UI's priority: the window (and a software rasteriser's threads)
/// gets the cores first, the analysis takes what is left. Threads the worker starts (ONNX
/// Runtime's pool, the ELA strips) inherit it. Best effort: an error leaves the priority as is.
#[allow(unsafe_code)] // the one exception to the crate's rule: two libc calls, no pointers
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread, with no pointers.
    unsafe {
        // On Linux the nice value is per thread; `who` is this thread's id.
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

impl WorkerHandle {
    /// Start the worker; it opens the engine first (reported with [`Reply::EngineOpened`]).
    pub fn spawn(
        ctx: Option<egui::Context>,
        params: AnalysisParams,
    ) -> std::io::Result<WorkerHandle> {
        let (tx, req_rx) = channel();
        let (reply_tx, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("tamperscope-worker".into())
            .spawn(move || {
                let send = |r: Reply| {
                    let _ = reply_tx.send(r);
                    if let Some(ctx) = &ctx {
                        ctx.request_repaint();
                    }
                };
                lower_priority();
                Worker::new(params, &send).run(req_rx, &send);
            })?;
        Ok(WorkerHandle {
            tx,
            rx,
            thread: Some(thread),
        })
    }

    pub fn send(&self, r: Request) {
        let _ = self.tx.send(r);
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        let _ = self.tx.send(Request::Shutdown);
        // The worker may be inside a model run; do not wait for it.
        drop(self.thread.take());
    }
}

struct Worker {
    engine: Option<Engine>,
    params: AnalysisParams,
    /// The last image's working resolution, for `Resegment`.
    last: Option<(u64, Arc<RgbImage>)>,
}

impl Worker {
    fn new(params: AnalysisParams, send: &dyn Fn(Reply)) -> Worker {
        Worker {
            engine: Self::open_engine(&params, send),
            params,
            last: None,
        }
    }

    /// Open the engine from the registry and report what it has (and what is missing).
    fn open_engine(params: &AnalysisParams, send: &dyn Fn(Reply)) -> Option<Engine> {
        let mut missing = Vec::new();
        let opened = super::open_registry().and_then(|registry| {
            for (entry, status) in registry
                .manifest
                .models
                .iter()
                .zip(registry.statuses(false))
            {
                if status.path.is_none() && !entry.status.contains("test") {
                    missing.push((entry.name.clone(), install_hint(entry)));
                }
            }
            Engine::open(&registry, params.clone())
        });
        match opened {
            Ok(engine) => {
                send(Reply::EngineOpened {
                    error: None,
                    unavailable: engine.unavailable.clone(),
                    missing,
                    segmenters: engine
                        .segmenters
                        .iter()
                        .map(|s| s.name().to_string())
                        .collect(),
                    classifiers: engine
                        .classifier
                        .infos()
                        .iter()
                        .map(|i| i.model.clone())
                        .collect(),
                });
                Some(engine)
            }
            Err(e) => {
                send(Reply::EngineOpened {
                    error: Some(e.to_string()),
                    unavailable: Vec::new(),
                    missing,
                    segmenters: vec![felzenszwalb::NAME.to_string()],
                    classifiers: Vec::new(),
                });
                None
            }
        }
    }

    fn run(&mut self, rx: Receiver<Request>, send: &dyn Fn(Reply)) {
        while let Ok(req) = rx.recv() {
            match req {
                Request::Shutdown => return,
                Request::Analyze {
                    job,
                    path,
                    cancel,
                    rule,
                } => {
                    let t0 = Instant::now();
                    match self.analyze(job, &path, &cancel, rule, send) {
                        Ok(()) => send(Reply::Done {
                            job,
                            total_ms: t0.elapsed().as_secs_f64() * 1e3,
                        }),
                        Err(Stop::Cancelled) => send(Reply::Cancelled { job }),
                        Err(Stop::Failed(error)) => send(Reply::Failed { job, error }),
                    }
                }
                Request::Resegment { job, rule } => self.resegment(job, rule, send),
                Request::Reload => {
                    // Close the old sessions before opening new ones (memory).
                    self.engine = None;
                    self.last = None;
                    self.engine = Self::open_engine(&self.params, send);
                }
            }
        }
    }

    fn analyze(
        &mut self,
        job: u64,
        path: &std::path::Path,
        cancel: &AtomicBool,
        rule: MaskRule,
        send: &dyn Fn(Reply),
    ) -> Result<(), Stop> {
        let n_seg = self
            .engine
            .as_ref()
            .map(|e| e.segmenters.len())
            .unwrap_or(1);
        let has_classifier = self.engine.is_some();
        let copy_move_params = self
            .engine
            .as_ref()
            .map_or(self.params.copy_move, |e| e.params.copy_move);
        // load, ela, compression, copy-move (when on), classify (with a classifier), one per
        // segmenter.
        let total =
            3 + usize::from(copy_move_params.is_some()) + usize::from(has_classifier) + n_seg;
        let mut index = 0;
        let mut stage = |name: &str| -> Result<Instant, Stop> {
            if cancel.load(Ordering::Relaxed) {
                return Err(Stop::Cancelled);
            }
            index += 1;
            send(Reply::Progress {
                job,
                progress: Progress::Started {
                    stage: name.to_string(),
                    index,
                    total,
                },
            });
            Ok(Instant::now())
        };
        let done = |name: &str, t: Instant| {
            send(Reply::Progress {
                job,
                progress: Progress::Finished {
                    stage: name.to_string(),
                    ms: t.elapsed().as_secs_f64() * 1e3,
                },
            });
        };

        let t = stage("load")?;
        let loaded = tamperscope::engine::imageio::load_image(path)
            .map_err(|e| Stop::Failed(e.to_string()))?;
        let mips = Arc::new(PhotoMips::build(&loaded.rgb, MAX_TEXTURE_SIDE));
        let photo = Arc::new(loaded.rgb.clone());
        send(Reply::Photo {
            job,
            info: loaded.info.clone(),
            photo,
            mips,
        });
        done("load", t);

        let t = stage("ela")?;
        // The loaded image stays in `unprepared` when there is no engine to prepare it.
        let (working, unprepared, ela) = match &self.engine {
            Some(engine) => {
                let prepared = engine
                    .prepare(loaded)
                    .map_err(|e| Stop::Failed(e.to_string()))?;
                let ela = prepared.ela_map(engine.params.ela_box_radius);
                (Some(prepared), None, ela)
            }
            None => {
                // No classifier: plain ELA at quality 90 and the built-in segmenter still work.
                let (w, h) = working_size(
                    loaded.info.width,
                    loaded.info.height,
                    self.params.working_max_side,
                );
                let signed = tamperscope::engine::ela::signed_ela(&loaded.rgb, 90, 384, (w, h))
                    .map_err(|e| Stop::Failed(e.to_string()))?;
                let ela = signed.abs_map(w, h, self.params.ela_box_radius);
                let working = downscale_rgb(&loaded.rgb, w, h);
                self.last = Some((job, Arc::new(working)));
                (None, Some(loaded), ela)
            }
        };
        let working_arc = match &working {
            Some(p) => Arc::new(p.working.clone()),
            None => self
                .last
                .as_ref()
                .map(|(_, w)| w.clone())
                .ok_or_else(|| Stop::Failed("no working image".into()))?,
        };
        self.last = Some((job, working_arc.clone()));
        send(Reply::Prepared {
            job,
            working: working_arc.clone(),
            ela,
        });
        done("ela", t);

        // Compression history: read from the file's own DCT coefficients, no model needed.
        let t = stage("compression")?;
        let image = working
            .as_ref()
            .map(|p| &p.image)
            .or(unprepared.as_ref())
            .ok_or_else(|| Stop::Failed("no loaded image".into()))?;
        let params = self
            .engine
            .as_ref()
            .map_or(self.params.compression, |e| e.params.compression);
        let maps = compression_maps(image, &params, &working_arc);
        let file_width = image.info.width;
        drop(unprepared);
        send(Reply::Compression {
            job,
            maps: Box::new(maps),
        });
        done("compression", t);

        // Copy-move, as in `Engine::analyze`: on the working image, regions in file pixels. The
        // search itself cannot be interrupted (about a second); cancel is checked before it and
        // again before the next stage.
        if let Some(p) = &copy_move_params {
            let t = stage("copy-move")?;
            let evidence = copy_move_on_working(&working_arc, file_width, p);
            send(Reply::CopyMove {
                job,
                evidence: Box::new(evidence),
            });
            done("copy-move", t);
        }

        let Some(engine) = self.engine.as_mut() else {
            let t = stage("segment:felzenszwalb")?;
            let seg = felzenszwalb_segment(&working_arc, &self.params.felzenszwalb, &rule);
            let ms = t.elapsed().as_secs_f64() * 1e3;
            send(Reply::Segmented {
                job,
                name: felzenszwalb::NAME.into(),
                segmentation: seg,
                ms,
            });
            done("segment:felzenszwalb", t);
            return Ok(());
        };
        let prepared = working.ok_or_else(|| Stop::Failed("no prepared image".into()))?;

        let t = stage("classify")?;
        let (variants, fused) = engine
            .classify(&prepared)
            .map_err(|e| Stop::Failed(e.to_string()))?;
        send(Reply::Classified {
            job,
            variants,
            fused,
        });
        done("classify", t);

        // Semantic segmenters return every component (rule 0) so the UI can filter by area at once.
        let every = MaskRule {
            min_area_fraction: 0.0,
        };
        for s in engine.segmenters.iter_mut() {
            let name = format!("segment:{}", s.name());
            let t = stage(&name)?;
            let builtin = s.name() == felzenszwalb::NAME;
            match s.segment(&prepared.working, if builtin { &rule } else { &every }) {
                Ok(seg) => {
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    send(Reply::Segmented {
                        job,
                        name: s.name().to_string(),
                        segmentation: seg,
                        ms,
                    });
                    done(&name, t);
                }
                Err(e) => send(Reply::SegmenterFailed {
                    job,
                    name: s.name().to_string(),
                    reason: e.to_string(),
                }),
            }
        }
        Ok(())
    }

    fn resegment(&mut self, job: u64, rule: MaskRule, send: &dyn Fn(Reply)) {
        let Some((last_job, working)) = &self.last else {
            return;
        };
        if *last_job != job {
            return;
        }
        let has_builtin = self
            .engine
            .as_ref()
            .is_none_or(|e| e.segmenters.iter().any(|s| s.name() == felzenszwalb::NAME));
        if !has_builtin {
            return;
        }
        let t = Instant::now();
        let seg = felzenszwalb_segment(working, &self.params.felzenszwalb, &rule);
        send(Reply::Segmented {
            job,
            name: felzenszwalb::NAME.into(),
            segmentation: seg,
            ms: t.elapsed().as_secs_f64() * 1e3,
        });
    }
}

fn felzenszwalb_segment(
    working: &RgbImage,
    params: &FelzenszwalbParams,
    rule: &MaskRule,
) -> Segmentation {
    felzenszwalb::segment(
        working.as_raw(),
        working.width() as usize,
        working.height() as usize,
        params,
        rule,
    )
}

enum Stop {
    Cancelled,
    Failed(String),
}
