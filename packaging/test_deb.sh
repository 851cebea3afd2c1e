#!/usr/bin/env bash
# The Debian package, tested without touching the system: build it with cargo-deb from the release
# build (`cargo deb --no-build`), install it with dpkg into an empty root under a temporary folder
# (dpkg --root; its dependencies are the host's), analyse a sample with the installed binary and a
# clean environment (no ORT_DYLIB_PATH / TAMPERSCOPE_MODELS, an empty HOME), check that the result
# exists, came from the installed library and models and names the DeepLab segmenter, then remove
# the package with dpkg and check that nothing of it is left. The desktop app from the package is also
# started under Xvfb on the sample. Needs packaging/setup.sh first.
#
#   ./packaging/test_deb.sh   (KEEP=1 keeps the temporary folder; DEB_OUT=DIR keeps the .deb;
#                              DEB_FAST=0 compresses it as `cargo deb` does by default)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CARGO_DEB_VERSION=3.8.0
SAMPLE=assets/samples/kleiber_spliced.jpg

fail() { echo "test_deb: FAIL: $*" >&2; exit 1; }

# The package ships the converted DeepLab model, which set-up makes only from ../shared/models (the
# project does not redistribute the TFLite file). Without it no package can be built: say so and skip,
# as the other tests that need ../shared do.
if [ ! -e models/deeplabv3_257_mv_gpu.onnx ]; then
  echo "test_deb: SKIP: models/deeplabv3_257_mv_gpu.onnx is absent (no ../shared/models at set-up; set TAMPERSCOPE_SHARED): the package needs it" >&2
  exit 0
fi
for f in target/release/tamperscope third_party/onnxruntime/lib/libonnxruntime.so \
         third_party/onnxruntime/LICENSE models/deeplabv3_257_mv_gpu.onnx models/wcbnet.onnx; do
  [ -e "$f" ] || fail "$f is missing: run ./packaging/setup.sh first"
done
if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  echo "test_deb: installing cargo-deb $CARGO_DEB_VERSION (a few minutes, once)" >&2
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tamperscope-deb.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/deb"
t0=$SECONDS
# --fast: quicker compression, a larger file; the same contents (DEB_FAST=0 for the release setting).
fast=(--fast); [ "${DEB_FAST:-1}" = 1 ] || fast=()
cargo deb --no-build --quiet "${fast[@]}" --output "$TMP/deb/" >/dev/null
DEB=$(ls "$TMP"/deb/*.deb)
echo "test_deb: built $(basename "$DEB") ($(du -h "$DEB" | cut -f1)) in $((SECONDS - t0)) s" >&2
[ -z "${DEB_OUT:-}" ] || { mkdir -p "$DEB_OUT"; cp "$DEB" "$DEB_OUT/"; }
dpkg-deb --field "$DEB" Package Version Depends Recommends Installed-Size | sed 's/^/  /' >&2

# The files a user gets.
dpkg-deb --contents "$DEB" | awk '{print $NF}' > "$TMP/contents"
for want in ./usr/bin/tamperscope ./usr/share/applications/tamperscope.desktop \
            ./usr/share/icons/hicolor/scalable/apps/tamperscope.svg \
            ./usr/lib/tamperscope/libonnxruntime.so \
            ./usr/share/tamperscope/models/manifest.toml ./usr/share/tamperscope/models/wcbnet.onnx \
            ./usr/share/tamperscope/models/deeplabv3_257_mv_gpu.onnx \
            ./usr/share/tamperscope/models/LICENSE.deeplabv3_257_mv_gpu \
            ./usr/share/doc/tamperscope/onnxruntime/LICENSE; do
  grep -qx -- "$want" "$TMP/contents" || fail "the package has no $want"
done
if grep -qiE 'python|\.venv|site-packages' "$TMP/contents"; then fail "the package holds Python files"; fi

# Install into an empty root: dpkg's own database there, the host's libraries for the dependencies.
R="$TMP/root"
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates"
touch "$R/var/lib/dpkg/status"
t_install=$SECONDS
dpkg --root="$R" --force-depends --force-not-root --force-script-chrootless -i "$DEB" >/dev/null 2>"$TMP/dpkg.err" \
  || { cat "$TMP/dpkg.err" >&2; fail "dpkg -i"; }
dpkg --root="$R" -s tamperscope | grep -q '^Status: install ok installed' || fail "dpkg does not list it as installed"

# Analyse the sample as a user would after `apt install ./tamperscope_*.deb`: nothing set up, no source
# tree on the binary's search path (the binary looks beside itself: <root>/usr/lib/tamperscope,
# <root>/usr/share/tamperscope/models).
mkdir -p "$TMP/home" "$TMP/out"
run() { env -i HOME="$TMP/home" PATH=/usr/bin:/bin LANG=C.UTF-8 ${LD_DEBUG:+LD_DEBUG=$LD_DEBUG LD_DEBUG_OUTPUT=$LD_DEBUG_OUTPUT} \
  "$R/usr/bin/tamperscope" "$@"; }
run models list > "$TMP/models.txt" 2>&1 || { cat "$TMP/models.txt" >&2; fail "models list"; }
t_analyse=$SECONDS
LD_DEBUG=files LD_DEBUG_OUTPUT="$TMP/ld" run analyze "$ROOT/$SAMPLE" --out "$TMP/out" > "$TMP/analyze.log" 2>&1 \
  || { tail -20 "$TMP/analyze.log" >&2; fail "analyze"; }
echo "test_deb: install + first analysis of $SAMPLE: $((SECONDS - t_install)) s (analysis $((SECONDS - t_analyse)) s)" >&2
n=$(find "$TMP/out" -type f | wc -l)
[ "$n" -gt 0 ] || fail "analyze wrote nothing to $TMP/out"
json=$(find "$TMP/out" -name '*.json' -type f | head -1)
[ -n "$json" ] || fail "no JSON result in $TMP/out"
grep -rqi 'deeplab' "$TMP/out" --include='*.json' || fail "the result does not name the DeepLab segmenter"
# The models and the library it used are the package's, not the source tree's.
grep -q "$R/usr/share/tamperscope/models" "$TMP/models.txt" || { cat "$TMP/models.txt" >&2; fail "models list does not read the installed models"; }
if grep -rq "$ROOT/models\|$ROOT/third_party" "$TMP/out" --include='*.json'; then
  fail "the result names files of the source tree $ROOT"
fi
# The ONNX Runtime library it loaded (the dynamic loader's log): the package's.
loaded=$(cat "$TMP"/ld.* 2>/dev/null | grep -o 'file=[^ ]*libonnxruntime\.so[^ ]*' | sort -u | sed 's/^file=//')
[ "$loaded" = "$R/usr/lib/tamperscope/libonnxruntime.so" ] || fail "loaded ONNX Runtime from '${loaded:-nowhere}', not the package"
echo "test_deb: analyze wrote $n files; the result names DeepLab and the installed models" >&2

# The desktop app from the package, headless (Xvfb, Mesa's software Vulkan): it must open the sample,
# finish the analysis and upload its layers (TAMPERSCOPE_APP_STATS logs the GPU uploads) within 20 s.
if command -v xvfb-run >/dev/null; then
  mkdir -p "$TMP/xdg" && chmod 700 "$TMP/xdg"
  rc=0
  env -i HOME="$TMP/home" XDG_RUNTIME_DIR="$TMP/xdg" TAMPERSCOPE_APP_STATS=1 PATH=/usr/bin:/bin LANG=C.UTF-8 \
    xvfb-run -a -s "-screen 0 1280x800x24" timeout 20 "$R/usr/bin/tamperscope" "$ROOT/$SAMPLE" \
    > "$TMP/app.log" 2>&1 || rc=$?
  [ "$rc" = 124 ] || { tail -20 "$TMP/app.log" >&2; fail "the desktop app exited with status $rc within 20 s"; }
  grep -q 'heat_layers: [1-9]' "$TMP/app.log" || { tail -20 "$TMP/app.log" >&2; fail "the desktop app drew no layers in 20 s"; }
  echo "test_deb: the desktop app opened the sample and drew its layers" >&2
else
  echo "test_deb: no xvfb-run: the desktop app was not started" >&2
fi

# Remove it: nothing of the package may be left.
dpkg --root="$R" --force-not-root --force-script-chrootless --purge tamperscope >/dev/null 2>"$TMP/dpkg.err" \
  || { cat "$TMP/dpkg.err" >&2; fail "dpkg --purge"; }
left=$(find "$R" -type f ! -path "$R/var/lib/dpkg/*" | head -5)
[ -z "$left" ] || fail "files left after removal: $left"
echo "test_deb: ok (installed, analysed, removed)" >&2
