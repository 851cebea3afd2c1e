// Records the commit the binary is built from, for reports and `--version`.
fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    let commit = if dirty && !commit.is_empty() {
        format!("{commit}-dirty")
    } else {
        commit
    };
    let version = env!("CARGO_PKG_VERSION");
    let long = if commit.is_empty() {
        version.to_string()
    } else {
        format!("{version} ({commit})")
    };
    println!("cargo:rustc-env=TAMPERSCOPE_COMMIT={commit}");
    println!("cargo:rustc-env=TAMPERSCOPE_VERSION_LONG={long}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
}
