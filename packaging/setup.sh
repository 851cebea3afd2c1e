#!/usr/bin/env bash
# Everything tamperscope needs on a fresh Debian machine, from the package registries only:
# system packages, the ONNX Runtime library (from the PyPI onnxruntime wheel, into
# third_party/onnxruntime/lib where the binary finds it by itself), the Python venv of the
# model tools, the converted DeepLab model, and a release build. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ORT_VERSION=1.31.1
PY=${PYTHON:-python3}

log() { printf '\n== %s\n' "$*" >&2; }

if [ "${TAMPERSCOPE_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null; then
  need=()
  for p in xvfb mesa-vulkan-drivers libvulkan1 poppler-utils libxkbcommon-x11-0 libgl1 libegl1 unzip; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    log "system packages: ${need[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

log "Python venv (.venv) for the model tools"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r training/requirements-tools.txt -r training/requirements-train.txt

log "ONNX Runtime $ORT_VERSION library from the PyPI wheel"
ORT_DIR=third_party/onnxruntime/lib
if [ ! -f "$ORT_DIR/libonnxruntime.so" ] || [ "$(cat "$ORT_DIR/VERSION" 2>/dev/null)" != "$ORT_VERSION" ]; then
  tmp=$(mktemp -d)
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "onnxruntime==$ORT_VERSION"
  mkdir -p "$ORT_DIR"
  .venv/bin/python - "$tmp" "$ORT_DIR" <<'PYEOF'
import glob, os, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "onnxruntime-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if "/capi/libonnxruntime" in n and ".so" in n]
    for n in names:
        base = os.path.basename(n)
        with z.open(n) as src, open(os.path.join(dest, base + ".tmp"), "wb") as out:
            out.write(src.read())
        os.replace(os.path.join(dest, base + ".tmp"), os.path.join(dest, base))
    main = [os.path.basename(n) for n in names if os.path.basename(n).startswith("libonnxruntime.so")][0]
link = os.path.join(dest, "libonnxruntime.so")
if os.path.lexists(link):
    os.remove(link)
os.symlink(main, link)
print("installed", main, "from", os.path.basename(wheel))
PYEOF
  echo "$ORT_VERSION" > "$ORT_DIR/VERSION"
  rm -rf "$tmp"
fi

log "stand-in models (generated, deterministic)"
PYTHONPATH=training .venv/bin/python -m tamperscope_training.standin --out-dir models >/dev/null

SHARED=${TAMPERSCOPE_SHARED:-$ROOT/../shared}
if [ -f "$SHARED/models/deeplabv3_257_mv_gpu.tflite" ]; then
  if [ ! -f models/deeplabv3_257_mv_gpu.onnx ]; then
    log "DeepLabV3 (TFLite -> ONNX) from $SHARED/models"
    PYTHONPATH=training .venv/bin/python -m tamperscope_training.convert_deeplab --tflite "$SHARED/models/deeplabv3_257_mv_gpu.tflite" \
      --out models/deeplabv3_257_mv_gpu.onnx --report /tmp/deeplabv3_conversion.json
  fi
else
  log "no $SHARED/models: DeepLab is not installed (the built-in segmenter still works)"
fi

log "build (release)"
cargo build --release --locked
echo "setup done: target/release/tamperscope" >&2
