//! The report as a PDF of A4 pages (krilla), laid out from the same rows as the HTML page.

use crate::error::{EngineError, Result};

use super::{
    FigureRow, Figures, ReportDoc, TABLE_ROWS, header_rows, model_rows, param_rows, table_rows,
    verdict_rows,
};

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 40.0;

enum Item {
    Text {
        x: f32,
        y: f32,
        size: f32,
        mono: bool,
        text: String,
    },
    Image {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        png: Vec<u8>,
    },
}

/// A flow layout: items placed top to bottom, a new page when the next block does not fit.
struct Layout {
    pages: Vec<Vec<Item>>,
    y: f32,
}

impl Layout {
    fn new() -> Self {
        Self {
            pages: vec![Vec::new()],
            y: MARGIN,
        }
    }

    fn need(&mut self, h: f32) {
        if self.y + h > PAGE_H - MARGIN && self.y > MARGIN {
            self.new_page();
        }
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN;
    }

    fn push(&mut self, item: Item) {
        if let Some(p) = self.pages.last_mut() {
            p.push(item);
        }
    }

    /// Wrapped text at indent `x`.
    fn text(&mut self, x: f32, size: f32, mono: bool, text: &str) {
        let char_w = size * if mono { 0.6 } else { 0.5 };
        let per_line = (((PAGE_W - MARGIN - x) / char_w) as usize).max(10);
        for line in wrap(text, per_line) {
            self.need(size * 1.3);
            self.y += size * 1.3;
            self.push(Item::Text {
                x,
                y: self.y - size * 0.3,
                size,
                mono,
                text: line,
            });
        }
    }

    /// Two figures per row under the row's heading, with captions and colour scales.
    fn figure_row(&mut self, row: &FigureRow, legend_png: &[u8], col_w: f32) {
        let l = self;
        let img_h = row
            .figures
            .iter()
            .map(|f| col_w * f.height as f32 / f.width.max(1) as f32)
            .fold(0.0, f32::max);
        l.need(img_h + 60.0);
        l.heading(10.0, &row.heading);
        let top = l.y;
        for (i, f) in row.figures.iter().enumerate() {
            let x = MARGIN + i as f32 * (col_w + 10.0);
            let h = col_w * f.height as f32 / f.width.max(1) as f32;
            l.push(Item::Image {
                x,
                y: top,
                w: col_w,
                h,
                png: f.png.clone(),
            });
            l.push(Item::Text {
                x,
                y: top + h + 10.0,
                size: 7.5,
                mono: false,
                text: f.title.clone(),
            });
            if f.legend {
                l.push(Item::Text {
                    x,
                    y: top + h + 24.0,
                    size: 7.0,
                    mono: false,
                    text: "0".into(),
                });
                l.push(Item::Image {
                    x: x + 8.0,
                    y: top + h + 17.0,
                    w: 128.0,
                    h: 8.0,
                    png: legend_png.to_vec(),
                });
                l.push(Item::Text {
                    x: x + 140.0,
                    y: top + h + 24.0,
                    size: 7.0,
                    mono: false,
                    text: "1".into(),
                });
            }
        }
        l.y = top + img_h + if row.figures.is_empty() { 0.0 } else { 34.0 };
        for n in &row.notes {
            l.text(MARGIN, 8.5, false, n);
            l.y += 3.0;
        }
    }

    fn heading(&mut self, size: f32, text: &str) {
        self.need(size * 3.0);
        self.y += size * 0.6;
        self.text(MARGIN, size, false, text);
        self.y += size * 0.3;
    }
}

fn wrap(text: &str, per_line: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.lines() {
        let mut line = String::new();
        for word in para.split(' ') {
            let mut word = word.to_string();
            // Break words longer than a line (hashes, paths).
            while word.chars().count() > per_line {
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                let head: String = word.chars().take(per_line).collect();
                word = word.chars().skip(per_line).collect();
                lines.push(head);
            }
            if line.chars().count() + word.chars().count() + 1 > per_line && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        lines.push(line);
    }
    lines
}

/// A rendered PDF and its number of pages.
pub struct Pdf {
    pub bytes: Vec<u8>,
    pub pages: usize,
}

fn lay_out(doc: &ReportDoc, figs: &Figures) -> Layout {
    let a = &doc.analysis;
    let mut l = Layout::new();
    l.heading(18.0, &format!("Case report: {}", a.input.info.file_name));
    for (k, v) in header_rows(doc) {
        l.text(
            MARGIN,
            8.0,
            k == "SHA-256" || k == "MD5",
            &format!("{k}: {v}"),
        );
    }
    // Page 1 (issue 16): the case, the answer in words, its accuracy and the main figure;
    // the other figures, then models and parameters follow.
    l.heading(12.0, "Verdict");
    for v in verdict_rows(doc) {
        l.text(MARGIN, 9.0, false, &v);
    }
    l.y += 4.0;
    l.text(
        MARGIN,
        9.0,
        false,
        &format!("Limitation - measured accuracy: {}", doc.accuracy.statement),
    );
    let col_w = (PAGE_W - 2.0 * MARGIN - 10.0) / 2.0;
    l.figure_row(&figs.main, &figs.legend_png, col_w);
    l.new_page();
    l.heading(14.0, "Figures");
    for row in &figs.rows {
        l.figure_row(row, &figs.legend_png, col_w);
    }
    l.new_page();
    l.heading(12.0, "Models");
    for m in model_rows(doc) {
        l.text(MARGIN, 8.0, false, &m);
        l.y += 2.0;
    }
    l.heading(12.0, "Parameters");
    for p in param_rows(&a.params) {
        l.text(MARGIN, 8.0, true, &p);
    }
    // Tables.
    l.need(120.0);
    l.heading(14.0, "Similarity of the masks to the fused map");
    let pixels = a.working_size[0] * a.working_size[1];
    let cols = [0.0, 30.0, 200.0, 260.0, 340.0, 430.0];
    for s in &a.segmenters {
        l.heading(
            10.0,
            &format!(
                "{}: top {} of {} masks; r1 = {}, r0 = {}",
                s.name,
                TABLE_ROWS.min(s.regions.len()),
                s.regions.len(),
                s.likelihoods.map_or("-".into(), |x| format!("{:.5}", x.r1)),
                s.likelihoods.map_or("-".into(), |x| format!("{:.5}", x.r0)),
            ),
        );
        let header = [
            "rank",
            "mask",
            "area %",
            "S paper",
            "S normalized",
            "chosen",
        ]
        .map(String::from);
        for (k, r) in std::iter::once(header)
            .chain(table_rows(s, pixels))
            .enumerate()
        {
            l.need(12.0);
            l.y += 11.0;
            for (c, cell) in r.iter().enumerate() {
                let cell: String = cell.chars().take(34).collect();
                l.push(Item::Text {
                    x: MARGIN + cols[c],
                    y: l.y,
                    size: 8.0,
                    mono: k > 0 && c != 1,
                    text: cell,
                });
            }
        }
        l.y += 6.0;
    }
    l.heading(12.0, "Method");
    l.text(MARGIN, 9.0, false, &doc.methods);
    l.heading(11.0, "Limitations");
    for lim in &doc.limitations {
        l.text(MARGIN + 8.0, 8.5, false, &format!("- {lim}"));
    }
    l.heading(12.0, "Analyst's notes");
    if doc.notes.trim().is_empty() {
        l.text(MARGIN, 9.0, false, "none");
    } else {
        l.text(MARGIN, 9.0, false, &doc.notes);
    }
    l.heading(12.0, "Bookmarked views");
    if figs.bookmarks.is_empty() {
        l.text(MARGIN, 9.0, false, "none");
    }
    for f in &figs.bookmarks {
        let w = col_w * 1.4;
        let h = w * f.height as f32 / f.width.max(1) as f32;
        l.need(h + 30.0);
        let top = l.y + 4.0;
        l.push(Item::Image {
            x: MARGIN,
            y: top,
            w,
            h,
            png: f.png.clone(),
        });
        l.y = top + h;
        l.text(MARGIN, 9.0, false, &f.title);
        l.y += 8.0;
    }
    l
}

/// Render the report as PDF (A4 pages).
pub fn render_pdf(doc: &ReportDoc, figs: &Figures) -> Result<Pdf> {
    use krilla::Document;
    use krilla::geom::{Point, Size, Transform};
    use krilla::image::Image;
    use krilla::page::PageSettings;
    use krilla::text::{Font, TextDirection};

    let pdf_err = |what: &str, e: String| EngineError::Other(format!("PDF {what}: {e}"));
    let sans = Font::new(epaint_default_fonts::UBUNTU_LIGHT.into(), 0)
        .ok_or_else(|| pdf_err("font", "cannot load the sans-serif font".into()))?;
    let mono = Font::new(epaint_default_fonts::HACK_REGULAR.into(), 0)
        .ok_or_else(|| pdf_err("font", "cannot load the monospace font".into()))?;
    let layout = lay_out(doc, figs);
    let n = layout.pages.len();
    let mut document = Document::new();
    for (pi, items) in layout.pages.into_iter().enumerate() {
        let settings = PageSettings::from_wh(PAGE_W, PAGE_H)
            .ok_or_else(|| pdf_err("page", "bad page size".into()))?;
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        for item in items {
            match item {
                Item::Text {
                    x,
                    y,
                    size,
                    mono: m,
                    text,
                } => surface.draw_text(
                    Point::from_xy(x, y),
                    if m { mono.clone() } else { sans.clone() },
                    size,
                    &text,
                    false,
                    TextDirection::Auto,
                ),
                Item::Image { x, y, w, h, png } => {
                    let img = Image::from_png(png.into(), true).map_err(|e| pdf_err("image", e))?;
                    let size =
                        Size::from_wh(w, h).ok_or_else(|| pdf_err("image", "bad size".into()))?;
                    surface.push_transform(&Transform::from_translate(x, y));
                    surface.draw_image(img, size);
                    surface.pop();
                }
            }
        }
        surface.draw_text(
            Point::from_xy(PAGE_W - MARGIN - 60.0, PAGE_H - 20.0),
            sans.clone(),
            7.0,
            &format!("page {} of {n}", pi + 1),
            false,
            TextDirection::Auto,
        );
        surface.finish();
        page.finish();
    }
    let bytes = document
        .finish()
        .map_err(|e| pdf_err("writer", format!("{e:?}")))?;
    Ok(Pdf { bytes, pages: n })
}
