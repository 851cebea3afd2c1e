#!/usr/bin/env bash
# Everything tamperscope needs on a fresh Debian machine, from the package registries only.
#
#   ./packaging/setup.sh              the app: system packages, the Python venv of the model tools
#                                     (training/requirements-app-lock.txt, ~0.3 GB, no torch), the ONNX
#                                     Runtime library (from the PyPI onnxruntime wheel, into
#                                     third_party/onnxruntime/lib where the binary finds it by itself),
#                                     the stand-in models, the converted DeepLab model, a release build.
#   ./packaging/setup.sh --training   the same, plus the training environment in the same venv
#                                     (training/requirements-lock.txt: torch and the rest, ~5 GB), needed
#                                     by training/ and its tests (packaging/test.sh uses it).
#
# Safe to re-run; each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ORT_VERSION=1.31.1
PY=${PYTHON:-python3}
TRAINING=0
for arg in "$@"; do
  case "$arg" in
    --training) TRAINING=1 ;;
    -h|--help) sed -n '2,13p' packaging/setup.sh; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

# Wall time of each step, printed at the end.
T0=$SECONDS; STEP=""; STEP_T=$SECONDS; TIMES=()
log() {
  [ -z "$STEP" ] || TIMES+=("$(printf '%5d s  %s' $((SECONDS - STEP_T)) "$STEP")")
  STEP=$1; STEP_T=$SECONDS
  printf '\n== %s\n' "$*" >&2
}

if [ "${TAMPERSCOPE_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null; then
  need=()
  for p in xvfb mesa-vulkan-drivers libvulkan1 poppler-utils libxkbcommon-x11-0 libgl1 libegl1 unzip; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    log "system packages" "${need[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

# A fresh set-up needs about 0.3 GB for the app's venv (5 GB with --training) and 3 GB for the
# build; say so before pip or cargo fail half-way with "No space left on device".
need_gb=0
if [ "$TRAINING" = 1 ] && ! .venv/bin/python -c "import torch" 2>/dev/null; then need_gb=$((need_gb + 5))
elif [ ! -x .venv/bin/python ]; then need_gb=$((need_gb + 1)); fi
[ -x target/release/tamperscope ] || need_gb=$((need_gb + 3))
free_gb=$(df -Pk . | awk 'NR==2 {print int($4 / 1048576)}')
if [ "$need_gb" -gt 0 ] && [ "${free_gb:-0}" -lt "$need_gb" ]; then
  echo "warning: $free_gb GB free under $ROOT; a fresh set-up needs about $need_gb GB" >&2
fi

log "Python venv (.venv) for the model tools"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# No wheel cache, and one package per pip call: with --training the venv takes ~5 GB (torch's CUDA
# libraries), and a fresh install then never needs room for every downloaded wheel at once as well.
PIP=(.venv/bin/python -m pip --no-cache-dir)
# pip unpacks each wheel under TMPDIR (torch's is 1 GB unpacked); keep that on the project's disk, not in
# a /tmp that may be a small RAM disk.
export TMPDIR="$ROOT/.cache/tmp"
mkdir -p "$TMPDIR"
"${PIP[@]}" install -q pip==26.3
# Installs the pins of a lock file that are not installed at that version, one at a time, --no-deps.
install_lock() {
  local missing
  missing=$(.venv/bin/python - "$1" <<'PYEOF'
import re, sys
from importlib import metadata
canon = lambda n: re.sub(r"[-_.]+", "-", n).lower()
have = {canon(d.metadata["Name"]): d.version for d in metadata.distributions()}
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        name, version = line.split("==")
        if have.get(canon(name)) != version:
            print(line)
PYEOF
)
  if [ -n "$missing" ]; then
    echo "installing $(echo "$missing" | wc -l) pinned packages ($1)" >&2
    for pin in $missing; do
      "${PIP[@]}" install -q --no-deps "$pin"
    done
  fi
}
# The app's set-up (ONNX Runtime download, stand-in models, DeepLab conversion): no torch.
install_lock training/requirements-app-lock.txt
if [ "$TRAINING" = 1 ]; then
  log "training environment (torch and the rest, ~5 GB)"
  install_lock training/requirements-lock.txt
fi

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
# Its licence and third-party notices (shipped in the Debian package), from the venv's onnxruntime
# of the same version (training/requirements-app-lock.txt).
if [ ! -f third_party/onnxruntime/LICENSE ] || [ ! -f third_party/onnxruntime/ThirdPartyNotices.txt ]; then
  .venv/bin/python - "$ORT_VERSION" third_party/onnxruntime <<'PYEOF'
import importlib.util, os, shutil, sys
from importlib import metadata
version, dest = sys.argv[1], sys.argv[2]
if metadata.version("onnxruntime") != version:
    sys.exit(f"the venv has onnxruntime {metadata.version('onnxruntime')}, the library is {version}")
src = importlib.util.find_spec("onnxruntime").submodule_search_locations[0]
for name in ("LICENSE", "ThirdPartyNotices.txt"):
    shutil.copyfile(os.path.join(src, name), os.path.join(dest, name))
PYEOF
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
log done
echo "set-up times:" >&2
printf '  %s\n' "${TIMES[@]}" >&2
printf '%5d s  total\n' $((SECONDS - T0)) | sed 's/^/  /' >&2
if [ "$TRAINING" = 1 ]; then
  echo "setup done: target/release/tamperscope (with the training environment)" >&2
else
  echo "setup done: target/release/tamperscope (training environment: ./packaging/setup.sh --training)" >&2
fi
