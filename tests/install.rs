//! `models install` against a local HTTP server: good file, wrong hash, truncated transfer, 404,
//! an interrupted download followed by a retry; `--from` and unverified hashes. After every case
//! the model folder holds the installed file or nothing: never a half-written one.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// A server that answers successive connections with the given raw responses, then stops.
fn serve(responses: Vec<Vec<u8>>) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = std::thread::spawn(move || {
        for response in responses {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            // Read the request head.
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let _ = stream.write_all(&response);
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    });
    (format!("http://{addr}/model.onnx"), handle)
}

fn ok_response(body: &[u8], declared_len: usize) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {declared_len}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn not_found() -> Vec<u8> {
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found".to_vec()
}

fn payload() -> Vec<u8> {
    // 300 kB, so that the transfer takes several reads.
    (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A manifest with one model `m` (file model.onnx) at `url` with `sha256`.
fn manifest(dir: &Path, url: &str, sha256: &str) -> PathBuf {
    let text = format!(
        r#"schema = 1
[[model]]
name = "m"
role = "semantic-segmenter"
file = "model.onnx"
sha256 = "{sha256}"
status = "third-party-export"
licence = "test"
source = "test server"
url = "{url}"
input = {{ name = "input", shape = [1, 3, 8, 8], layout = "NCHW" }}
preprocess = {{ kind = "normalize", mean = [0.0, 0.0, 0.0], std = [1.0, 1.0, 1.0], resize = "bilinear" }}
outputs = {{ logits = "logits" }}
labels = ["a", "b"]
"#
    );
    let p = dir.join("manifest.toml");
    std::fs::write(&p, text).expect("manifest");
    p
}

fn install(manifest: &Path, dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tamperscope"))
        .args(["models", "install", "m", "--manifest"])
        .arg(manifest)
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .output()
        .expect("runs")
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn good_download_is_installed_atomically() {
    let tmp = tempfile::tempdir().expect("tmp");
    let body = payload();
    let (url, server) = serve(vec![ok_response(&body, body.len())]);
    let m = manifest(tmp.path(), &url, &sha(&body));
    let dir = tmp.path().join("models");
    let o = install(&m, &dir, &[]);
    server.join().expect("server");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(listing(&dir), ["model.onnx"]);
    assert_eq!(std::fs::read(dir.join("model.onnx")).expect("read"), body);
    // A progress bar went to stderr.
    assert!(stderr(&o).contains("100%"), "{}", stderr(&o));
}

#[test]
fn wrong_hash_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let body = payload();
    let (url, server) = serve(vec![ok_response(&body, body.len())]);
    let m = manifest(tmp.path(), &url, &sha(b"something else"));
    let dir = tmp.path().join("models");
    let o = install(&m, &dir, &[]);
    server.join().expect("server");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("sha256"), "{}", stderr(&o));
    assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
}

#[test]
fn truncated_transfer_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let body = payload();
    // Content-Length promises more than is sent before the connection closes.
    let (url, server) = serve(vec![ok_response(&body[..100_000], body.len())]);
    let m = manifest(tmp.path(), &url, &sha(&body));
    let dir = tmp.path().join("models");
    let o = install(&m, &dir, &["--attempts", "1"]);
    server.join().expect("server");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("cannot download"), "{}", stderr(&o));
    assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
}

#[test]
fn http_404_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (url, server) = serve(vec![not_found()]);
    let m = manifest(tmp.path(), &url, &sha(b"x"));
    let dir = tmp.path().join("models");
    let o = install(&m, &dir, &[]);
    server.join().expect("server");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("HTTP 404"), "{}", stderr(&o));
    assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
}

#[test]
fn interrupted_download_then_retry() {
    let tmp = tempfile::tempdir().expect("tmp");
    let body = payload();
    let dir = tmp.path().join("models");
    // One attempt: interrupted, nothing left; run again: installed.
    let (url, server) = serve(vec![
        ok_response(&body[..150_000], body.len()),
        ok_response(&body, body.len()),
    ]);
    let m = manifest(tmp.path(), &url, &sha(&body));
    let o = install(&m, &dir, &["--attempts", "1"]);
    assert!(!o.status.success());
    assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
    let o = install(&m, &dir, &["--attempts", "1"]);
    server.join().expect("server");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(listing(&dir), ["model.onnx"]);
    assert_eq!(std::fs::read(dir.join("model.onnx")).expect("read"), body);

    // Built-in retry: the first transfer breaks off, the second attempt of the same run succeeds.
    let dir2 = tmp.path().join("models2");
    let (url, server) = serve(vec![
        ok_response(&body[..10], body.len()),
        ok_response(&body, body.len()),
    ]);
    let m = manifest(tmp.path(), &url, &sha(&body));
    let o = install(&m, &dir2, &["--attempts", "2"]);
    server.join().expect("server");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(listing(&dir2), ["model.onnx"]);
}

#[test]
fn from_file_and_unverified_hashes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let body = payload();
    let file = tmp.path().join("downloaded.onnx");
    std::fs::write(&file, &body).expect("write");
    let dir = tmp.path().join("models");
    // Pinned hash, right file.
    let m = manifest(tmp.path(), "http://127.0.0.1:9/unused", &sha(&body));
    let o = install(&m, &dir, &["--from", &file.display().to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(listing(&dir), ["model.onnx"]);
    // Pinned hash, wrong file: refused, the installed file untouched.
    let wrong = tmp.path().join("wrong.onnx");
    std::fs::write(&wrong, b"not the model").expect("write");
    let o = install(&m, &dir, &["--from", &wrong.display().to_string()]);
    assert!(!o.status.success());
    assert_eq!(listing(&dir), ["model.onnx"]);
    assert_eq!(std::fs::read(dir.join("model.onnx")).expect("read"), body);
    // A user hash contradicting the manifest's is refused.
    let other = sha(b"other");
    let o = install(
        &m,
        &dir,
        &["--from", &file.display().to_string(), "--sha256", &other],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("differs"), "{}", stderr(&o));

    // Unverified: refused without --sha256, installed with the right one.
    let m = manifest(tmp.path(), "http://127.0.0.1:9/unused", "unverified");
    let dir = tmp.path().join("models3");
    let o = install(&m, &dir, &["--from", &file.display().to_string()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--sha256"), "{}", stderr(&o));
    assert!(listing(&dir).is_empty());
    let o = install(
        &m,
        &dir,
        &[
            "--from",
            &file.display().to_string(),
            "--sha256",
            &sha(&body),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(listing(&dir), ["model.onnx"]);
}
