//! The layers of ARCHITECTURE.md, checked on the source tree: every `crate::`, `super::`, `self::`
//! and `tamperscope::` path in `src/` (outside comments) is resolved to the module it names, and
//!
//! 1. each top-level layer imports only the layers below it:
//!    `error` <- `models` <- `engine` <- `outputs` <- {`cli`, `app`}; `cli` and `app` never import
//!    each other (`lib.rs` and `main.rs` only declare and wire them);
//! 2. inside every folder the files form no import circle (a file may use its folder's `mod.rs`,
//!    the folder's root, which declares it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level layers, lowest first. A module may import its own layer and lower ones.
const LAYERS: &[(&str, u32)] = &[
    ("error", 0),
    ("models", 1),
    ("engine", 2),
    ("outputs", 3),
    ("cli", 4),
    ("app", 4),
];

/// A module: its path from its crate's root ("engine::segment::sam"), "" for a crate root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Module {
    bin: bool,
    path: Vec<String>,
}

impl Module {
    fn name(&self) -> String {
        match (self.bin, self.path.is_empty()) {
            (false, true) => "lib.rs".into(),
            (true, true) => "main.rs".into(),
            _ => self.path.join("::"),
        }
    }
}

/// The source files of the crate: module -> text.
fn sources(src: &Path) -> BTreeMap<Module, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read src") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).expect("under src");
        let mut path: Vec<String> = rel
            .iter()
            .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if path
            .last()
            .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
        {
            path.pop();
        }
        let top = path.first().map(String::as_str);
        let bin = rel == Path::new("main.rs") || top == Some("cli") || top == Some("app");
        let text = std::fs::read_to_string(&f).expect("read source");
        out.insert(Module { bin, path }, text);
    }
    out
}

/// Source without comments and string literals (so that neither can name a module).
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let end = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            i = end;
        } else if b[i] == b'r'
            && (i == 0 || !is_ident(b[i - 1] as char))
            && matches!(b.get(i + 1), Some(b'#' | b'"'))
        {
            // A raw string: r"..", r#".."#.
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            let close = format!("\"{}", "#".repeat(hashes));
            let body = i + 2 + hashes;
            i = text[body..]
                .find(&close)
                .map_or(b.len(), |e| body + e + close.len());
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            // An escaped char literal ('\'', '\n', '\u{..}').
            i = text[i + 3..].find('\'').map_or(b.len(), |e| i + 3 + e + 1);
            out.push_str("' '");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            // A char literal ('"'); lifetimes ('a) are left alone.
            i += 3;
            out.push_str("' '");
        } else {
            let ch = text[i..].chars().next().expect("char");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Paths that start with `crate`, `super`, `self` or `tamperscope`, with `use` groups expanded:
/// `use crate::a::{b::C, d}` gives `crate::a::b::C` and `crate::a::d`.
fn paths(code: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let boundary = i == 0 || !is_ident(chars[i - 1]) && chars[i - 1] != ':';
        if boundary && is_ident(chars[i]) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if matches!(word.as_str(), "crate" | "super" | "self" | "tamperscope")
                && chars[i..].starts_with(&[':', ':'])
            {
                parse_tail(&chars, &mut i, vec![word], &mut out);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Reads `::seg::seg` or `::{..}` after `prefix`, pushing every full path.
fn parse_tail(chars: &[char], i: &mut usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    loop {
        let skip_ws = |i: &mut usize| {
            while *i < chars.len() && chars[*i].is_whitespace() {
                *i += 1;
            }
        };
        skip_ws(i);
        if !chars[*i..].starts_with(&[':', ':']) {
            out.push(prefix);
            return;
        }
        *i += 2;
        skip_ws(i);
        if *i < chars.len() && chars[*i] == '{' {
            *i += 1;
            loop {
                skip_ws(i);
                if *i >= chars.len() {
                    return;
                }
                if chars[*i] == '}' {
                    *i += 1;
                    return;
                }
                if chars[*i] == ',' {
                    *i += 1;
                    continue;
                }
                let start = *i;
                while *i < chars.len() && is_ident(chars[*i]) {
                    *i += 1;
                }
                if start == *i {
                    // `*` or anything else: the group's prefix itself.
                    out.push(prefix.clone());
                    *i += 1;
                    continue;
                }
                let mut p = prefix.clone();
                p.push(chars[start..*i].iter().collect());
                parse_tail(chars, i, p, out);
                // `as Name`
                skip_ws(i);
                if chars[*i..].starts_with(&['a', 's', ' ']) {
                    *i += 3;
                    skip_ws(i);
                    while *i < chars.len() && is_ident(chars[*i]) {
                        *i += 1;
                    }
                }
            }
        }
        let start = *i;
        while *i < chars.len() && is_ident(chars[*i]) {
            *i += 1;
        }
        if start == *i {
            out.push(prefix);
            return;
        }
        prefix.push(chars[start..*i].iter().collect());
    }
}

/// The module a path names: the longest known module its segments lead to.
fn resolve(from: &Module, path: &[String], known: &BTreeSet<Module>) -> Option<Module> {
    let mut here = match path[0].as_str() {
        "crate" => Module {
            bin: from.bin,
            path: vec![],
        },
        "tamperscope" => Module {
            bin: false,
            path: vec![],
        },
        "self" => from.clone(),
        "super" => {
            let mut p = from.path.clone();
            p.pop();
            Module {
                bin: from.bin,
                path: p,
            }
        }
        _ => return None,
    };
    // The longest known module along the path (`crate::engine::pipeline::Analysis` names
    // `engine::pipeline`).
    let mut walk = here.clone();
    for seg in &path[1..] {
        if seg == "super" {
            walk.path.pop();
        } else {
            walk.path.push(seg.clone());
        }
        if known.contains(&walk) || walk.path.len() < here.path.len() {
            here = walk.clone();
        }
    }
    Some(here)
}

/// Every import edge between distinct modules.
fn edges(src: &BTreeMap<Module, String>) -> BTreeSet<(Module, Module)> {
    let known: BTreeSet<Module> = src.keys().cloned().collect();
    let mut out = BTreeSet::new();
    for (m, text) in src {
        for p in paths(&code_only(text)) {
            if let Some(to) = resolve(m, &p, &known)
                && &to != m
            {
                out.insert((m.clone(), to));
            }
        }
    }
    out
}

fn layer(m: &Module) -> Option<(&'static str, u32)> {
    let top = m.path.first()?;
    LAYERS.iter().find(|(n, _)| n == top).copied()
}

/// Breaches of rule 1.
fn layer_breaches(edges: &BTreeSet<(Module, Module)>) -> Vec<String> {
    let mut out = Vec::new();
    for (a, b) in edges {
        let (Some((la, na)), Some((lb, nb))) = (layer(a), layer(b)) else {
            continue;
        };
        if nb > na || (na == nb && la != lb) {
            out.push(format!(
                "{} imports {} (layer {la} may not use layer {lb})",
                a.name(),
                b.name()
            ));
        }
    }
    out
}

/// Import circles among the files of one folder (rule 2), each as "a -> b -> a".
fn circles(edges: &BTreeSet<(Module, Module)>) -> Vec<String> {
    // Edges between siblings: the children of the deepest common folder.
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (a, b) in edges {
        if a.bin != b.bin {
            continue;
        }
        let common = a
            .path
            .iter()
            .zip(&b.path)
            .take_while(|(x, y)| x == y)
            .count();
        if common == a.path.len() || common == b.path.len() {
            // One is the other's folder root (or above it): a file using its `mod.rs`, or a
            // `mod.rs` declaring its files.
            continue;
        }
        let sa = Module {
            bin: a.bin,
            path: a.path[..=common].to_vec(),
        };
        let sb = Module {
            bin: b.bin,
            path: b.path[..=common].to_vec(),
        };
        graph.entry(sa).or_default().insert(sb);
    }
    // Depth-first search with colours; every back edge is a circle.
    let mut colour: BTreeMap<Module, u8> = BTreeMap::new();
    let mut found = Vec::new();
    fn visit(
        m: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        colour: &mut BTreeMap<Module, u8>,
        stack: &mut Vec<Module>,
        found: &mut Vec<String>,
    ) {
        colour.insert(m.clone(), 1);
        stack.push(m.clone());
        for n in graph.get(m).into_iter().flatten() {
            match colour.get(n).copied().unwrap_or(0) {
                0 => visit(n, graph, colour, stack, found),
                1 => {
                    let at = stack.iter().position(|s| s == n).expect("on stack");
                    let mut names: Vec<String> = stack[at..].iter().map(Module::name).collect();
                    names.push(n.name());
                    found.push(names.join(" -> "));
                }
                _ => {}
            }
        }
        stack.pop();
        colour.insert(m.clone(), 2);
    }
    let nodes: Vec<Module> = graph.keys().cloned().collect();
    for m in nodes {
        if colour.get(&m).copied().unwrap_or(0) == 0 {
            visit(&m, &graph, &mut colour, &mut Vec::new(), &mut found);
        }
    }
    found
}

fn module(bin: bool, path: &str) -> Module {
    Module {
        bin,
        path: path.split("::").map(String::from).collect(),
    }
}

#[test]
fn layers_depend_only_downward_and_folders_have_no_import_circles() {
    let src = sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let edges = edges(&src);
    // The parser sees the imports it must see (a check that finds nothing proves nothing).
    for (a, b) in [
        ("engine::pipeline", "engine::classifier"),
        ("engine::classifier", "models::registry"),
        ("outputs::report", "engine::pipeline"),
        ("models::registry", "models::manifest"),
    ] {
        assert!(
            edges.contains(&(module(false, a), module(false, b))),
            "the checker no longer sees {a} -> {b}"
        );
    }
    assert!(edges.contains(&(
        module(true, "cli::analyze"),
        module(false, "engine::pipeline")
    )));
    assert!(edges.contains(&(module(true, "app::viewer"), module(true, "app::command"))));

    let breaches = layer_breaches(&edges);
    assert!(
        breaches.is_empty(),
        "imports against the layers (ARCHITECTURE.md):\n{}",
        breaches.join("\n")
    );
    let circles = circles(&edges);
    assert!(
        circles.is_empty(),
        "import circles (ARCHITECTURE.md):\n{}",
        circles.join("\n")
    );
}

#[test]
fn checker_finds_an_upward_import_and_a_circle() {
    let mut src = BTreeMap::new();
    src.insert(
        module(false, "engine::ela"),
        "use crate::outputs::report::ReportDoc; // crate::app in a comment\nfn f() { let s = \"crate::cli\"; }".to_string(),
    );
    src.insert(module(false, "outputs::report"), String::new());
    src.insert(
        module(true, "app::command"),
        "use super::{viewer::ViewTransform, TamperscopeApp};".to_string(),
    );
    src.insert(
        module(true, "app::viewer"),
        "fn f(c: &mut Vec<crate::app::command::Command>) {}".to_string(),
    );
    src.insert(
        Module {
            bin: true,
            path: vec!["app".into()],
        },
        "mod command; mod viewer;".to_string(),
    );
    let edges = edges(&src);
    assert_eq!(
        layer_breaches(&edges),
        vec!["engine::ela imports outputs::report (layer engine may not use layer outputs)"]
    );
    assert_eq!(
        circles(&edges),
        vec!["app::command -> app::viewer -> app::command"]
    );
}
