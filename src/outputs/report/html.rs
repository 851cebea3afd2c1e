//! The report as one self-contained HTML page (figures inlined as PNG data URIs).

use base64::Engine as _;

use super::{
    Figure, FigureRow, Figures, ReportDoc, TABLE_ROWS, header_rows, model_rows, param_rows,
    table_rows, verdict_rows,
};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn data_uri(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// One row of figures as HTML under its heading.
fn html_row(h: &mut String, row: &FigureRow, legend: &str) {
    h.push_str(&format!("<h3>{}</h3>\n<div>\n", esc(&row.heading)));
    for f in &row.figures {
        html_figure(h, f, legend);
    }
    h.push_str("</div>\n");
    for n in &row.notes {
        h.push_str(&format!("<p>{}</p>\n", esc(n)));
    }
}

/// One figure with its caption and, for heat maps, the colour scale (`legend`: data URI).
fn html_figure(h: &mut String, f: &Figure, legend: &str) {
    h.push_str(&format!(
        "<figure><img src=\"{}\" alt=\"{}\" width=\"{}\" height=\"{}\"><figcaption>{}",
        data_uri(&f.png),
        esc(&f.title),
        f.width,
        f.height,
        esc(&f.title)
    ));
    if f.legend {
        h.push_str(&format!(
            "<div class=\"legend\">0 <img src=\"{legend}\" alt=\"colour scale 0 to 1\"> 1</div>"
        ));
    }
    h.push_str("</figcaption></figure>\n");
}

/// A self-contained HTML page: images embedded as base64 PNG data URIs, no external resource.
pub fn render_html(doc: &ReportDoc, figs: &Figures) -> String {
    let a = &doc.analysis;
    let mut h = String::new();
    let legend = data_uri(&figs.legend_png);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str(&format!(
        "<title>tamperscope report: {}</title>\n",
        esc(&a.input.info.file_name)
    ));
    h.push_str("<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}table{border-collapse:collapse}code,.mono{font-family:monospace}figure{display:inline-block;margin:4px;vertical-align:top}figure img{max-width:520px}.legend{display:flex;align-items:center;gap:4px}.legend img{width:256px;height:12px}.warn{color:#a00;font-weight:bold}</style>\n</head>\n<body>\n");
    h.push_str(&format!(
        "<h1>Case report: {}</h1>\n<h2>Case</h2>\n<table>\n",
        esc(&a.input.info.file_name)
    ));
    for (k, v) in header_rows(doc) {
        h.push_str(&format!(
            "<tr><th>{}</th><td class=\"mono\">{}</td></tr>\n",
            esc(&k),
            esc(&v)
        ));
    }
    // Page-1 order (issue 16): the answer and its figure first, provenance after the figures.
    h.push_str("</table>\n<h2>Verdict</h2>\n<ul>\n");
    for v in verdict_rows(doc) {
        let class = if v.contains("stand-in") {
            " class=\"warn\""
        } else {
            ""
        };
        h.push_str(&format!("<li{class}>{}</li>\n", esc(&v)));
    }
    h.push_str(&format!(
        "</ul>\n<p><b>Limitation - measured accuracy:</b> {}</p>\n",
        esc(&doc.accuracy.statement)
    ));
    html_row(&mut h, &figs.main, &legend);
    h.push_str("<h2>Figures</h2>\n");
    for row in &figs.rows {
        html_row(&mut h, row, &legend);
    }
    h.push_str("<h2>Models</h2>\n<ul>\n");
    for m in model_rows(doc) {
        h.push_str(&format!("<li>{}</li>\n", esc(&m)));
    }
    h.push_str("</ul>\n<h2>Parameters</h2>\n<ul class=\"mono\">\n");
    for p in param_rows(&a.params) {
        h.push_str(&format!("<li>{}</li>\n", esc(&p)));
    }
    h.push_str("</ul>\n");
    let pixels = a.working_size[0] * a.working_size[1];
    h.push_str("<h2>Similarity</h2>\n");
    for s in &a.segmenters {
        h.push_str(&format!(
            "<h3>{} (top {} of {} masks; r1 = {}, r0 = {})</h3>\n<table>\n<tr><th>rank</th><th>mask</th><th>area %</th><th>S paper</th><th>S normalized</th><th>chosen</th></tr>\n",
            esc(&s.name),
            TABLE_ROWS.min(s.regions.len()),
            s.regions.len(),
            s.likelihoods.map_or("-".into(), |l| format!("{:.5}", l.r1)),
            s.likelihoods.map_or("-".into(), |l| format!("{:.5}", l.r0)),
        ));
        for r in table_rows(s, pixels) {
            h.push_str("<tr>");
            for c in r {
                h.push_str(&format!("<td>{}</td>", esc(&c)));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }
    h.push_str(&format!(
        "<h2>Method</h2>\n<p>{}</p>\n<h3>Limitations</h3>\n<ul>\n",
        esc(&doc.methods)
    ));
    for l in &doc.limitations {
        h.push_str(&format!("<li>{}</li>\n", esc(l)));
    }
    h.push_str("</ul>\n<h2>Analyst's notes</h2>\n");
    if doc.notes.trim().is_empty() {
        h.push_str("<p><i>none</i></p>\n");
    } else {
        for para in doc.notes.split("\n\n") {
            h.push_str(&format!("<p>{}</p>\n", esc(para).replace('\n', "<br>")));
        }
    }
    h.push_str("<h2>Bookmarked views</h2>\n");
    if figs.bookmarks.is_empty() {
        h.push_str("<p><i>none</i></p>\n");
    }
    for f in &figs.bookmarks {
        html_figure(&mut h, f, &legend);
    }
    h.push_str("</body>\n</html>\n");
    h
}
