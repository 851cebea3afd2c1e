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
# ONNX Runtime build: where an NVIDIA GPU answers (`nvidia-smi --query-gpu=name,driver_version` succeeds),
# the library, its CUDA provider and the shared-provider library come from the PyPI onnxruntime-gpu wheel
# of the same version (~255 MB download, ~310 MB unpacked; it needs CUDA 13.x and cuDNN 9.x, looked for
# and reported, never installed here); elsewhere from the CPU wheel. Environment:
#   TAMPERSCOPE_ORT=gpu | cpu           force that build (default: auto, by nvidia-smi)
#   TAMPERSCOPE_ORT_DRY_RUN=1           print the choice and the CUDA/cuDNN check, install nothing, exit
#   TAMPERSCOPE_ORT_WHEEL=FILE.whl      use this downloaded wheel of that build and version, not PyPI
#   ./packaging/setup.sh --ort-only     only this step (after a first set-up), e.g. to switch builds
# A re-run after a change of build replaces the library (third_party/onnxruntime/lib/VERSION: "1.31.1 gpu").
#
# Safe to re-run; each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ORT_VERSION=1.31.1
PY=${PYTHON:-python3}
TRAINING=0
ORT_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --training) TRAINING=1 ;;
    --ort-only) ORT_ONLY=1 ;;
    -h|--help) sed -n '2,23p' packaging/setup.sh; exit 0 ;;
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

# Which ONNX Runtime build: gpu where an NVIDIA GPU answers nvidia-smi, else cpu; TAMPERSCOPE_ORT forces it.
ORT_DIR=third_party/onnxruntime/lib
GPU_INFO=""
if command -v nvidia-smi >/dev/null; then
  GPU_INFO=$(timeout 30 nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1) || GPU_INFO=""
  [[ "$GPU_INFO" == *,\ [0-9]* ]] || GPU_INFO=""   # "<name>, <driver version>", as a working nvidia-smi answers
fi
case "${TAMPERSCOPE_ORT:-auto}" in
  gpu) ORT_VARIANT=gpu; ORT_WHY="forced by TAMPERSCOPE_ORT=gpu" ;;
  cpu) ORT_VARIANT=cpu; ORT_WHY="forced by TAMPERSCOPE_ORT=cpu" ;;
  auto)
    if [ -n "$GPU_INFO" ]; then ORT_VARIANT=gpu; ORT_WHY="NVIDIA GPU found by nvidia-smi"
    elif command -v nvidia-smi >/dev/null; then ORT_VARIANT=cpu; ORT_WHY="nvidia-smi is there but does not answer"
    else ORT_VARIANT=cpu; ORT_WHY="no nvidia-smi"; fi ;;
  *) echo "setup.sh: TAMPERSCOPE_ORT must be gpu, cpu or auto (is '$TAMPERSCOPE_ORT')" >&2; exit 2 ;;
esac
ORT_PACKAGE=onnxruntime; [ "$ORT_VARIANT" = cpu ] || ORT_PACKAGE=onnxruntime-gpu
ORT_TAG="$ORT_VERSION $ORT_VARIANT"

# The libraries the CUDA provider of onnxruntime-gpu $ORT_VERSION loads: CUDA 13.x and cuDNN 9.x (the
# wheel's "cuda" and "cudnn" extras on PyPI: nvidia-cuda-runtime~=13.0, nvidia-cuda-nvrtc~=13.0,
# nvidia-cufft~=12.0, nvidia-curand~=10.0, nvidia-cudnn-cu13~=9.0, which brings nvidia-cublas). Looked
# for in the dynamic loader's cache, LD_LIBRARY_PATH, /usr/local/cuda*, and the venv's nvidia-* packages
# (torch's, with --training). Reports only: the CPU provider works from the GPU build whatever is missing.
CUDA_LIBS=(libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcufft.so.12 libcurand.so.10 libnvrtc.so.13 libcudnn.so.9)
CUDA_PIP="nvidia-cuda-runtime~=13.0 nvidia-cuda-nvrtc~=13.0 nvidia-cufft~=12.0 nvidia-curand~=10.0 nvidia-cudnn-cu13~=9.0"
CUDA_NOTE=""
cuda_check() {
  local ldcache lib dir found missing=() extra_dirs=() dirs=()
  ldcache=$( (ldconfig -p || /sbin/ldconfig -p) 2>/dev/null || true)
  IFS=: read -r -a dirs <<< "${LD_LIBRARY_PATH:-}"
  dirs+=(/usr/local/cuda/lib64 /usr/local/cuda-13*/lib64 "$ROOT"/.venv/lib/python3*/site-packages/nvidia/*/lib)
  echo "CUDA provider of onnxruntime-gpu $ORT_VERSION needs CUDA 13.x and cuDNN 9.x (NVIDIA driver >= 580):" >&2
  if [ -n "$GPU_INFO" ]; then
    echo "  GPU, driver: $GPU_INFO" >&2
    local major=${GPU_INFO##*, }; major=${major%%.*}
    if [[ "$major" =~ ^[0-9]+$ ]] && [ "$major" -lt 580 ]; then
      echo "  warning: driver $major is older than the 580 series that CUDA 13 needs" >&2
    fi
  else
    echo "  GPU: none answers nvidia-smi" >&2
  fi
  for lib in "${CUDA_LIBS[@]}"; do
    found=$(awk -v l="$lib" '$1 == l {print $NF; exit}' <<< "$ldcache")
    if [ -n "$found" ]; then echo "  $lib: $found (loader cache)" >&2; continue; fi
    for dir in "${dirs[@]}"; do
      [ -n "$dir" ] && [ -e "$dir/$lib" ] || continue
      found=$dir/$lib; break
    done
    if [ -n "$found" ]; then
      echo "  $lib: $found" >&2
      dir=${found%/*}
      case ":${LD_LIBRARY_PATH:-}:" in *":$dir:"*) ;; *)
        [[ " ${extra_dirs[*]} " == *" $dir "* ]] || extra_dirs+=("$dir") ;;
      esac
    else
      echo "  $lib: missing" >&2; missing+=("$lib")
    fi
  done
  if [ ${#extra_dirs[@]} -gt 0 ]; then
    local joined; joined=$(IFS=:; echo "${extra_dirs[*]}")
    echo "  not on the loader's path; before running tamperscope:" >&2
    echo "    export LD_LIBRARY_PATH=$joined\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" >&2
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "  missing: ${missing[*]}. Install CUDA 13 and cuDNN 9 from NVIDIA, or from PyPI:" >&2
    local quoted; quoted=$(printf "'%s' " $CUDA_PIP)
    echo "    .venv/bin/python -m pip install ${quoted% }" >&2
    echo "  Until then the CUDA provider cannot load and '--provider auto' runs on the CPU (and says so)." >&2
    CUDA_NOTE="CUDA provider installed; missing ${missing[*]} (see above); --provider auto runs on the CPU until then"
  elif [ ${#extra_dirs[@]} -gt 0 ]; then
    CUDA_NOTE="CUDA provider installed; CUDA/cuDNN found, set LD_LIBRARY_PATH as printed above"
  else
    CUDA_NOTE="CUDA provider installed; CUDA/cuDNN found on the loader's path"
  fi
}

if [ "${TAMPERSCOPE_ORT_DRY_RUN:-0}" = 1 ]; then
  echo "ONNX Runtime build: $ORT_VARIANT ($ORT_WHY)"
  echo "wheel: $ORT_PACKAGE==$ORT_VERSION -> $ORT_DIR (VERSION \"$ORT_TAG\")"
  [ "$ORT_VARIANT" = cpu ] || cuda_check
  echo "dry run (TAMPERSCOPE_ORT_DRY_RUN=1): nothing installed"
  exit 0
fi
if [ "$ORT_ONLY" = 1 ] && [ ! -x .venv/bin/python ]; then
  echo "setup.sh --ort-only: no .venv yet; run ./packaging/setup.sh first" >&2; exit 2
fi

if [ "$ORT_ONLY" = 0 ] && [ "${TAMPERSCOPE_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null; then
  need=()
  for p in xvfb mesa-vulkan-drivers libvulkan1 poppler-utils libjpeg-turbo-progs libxkbcommon-x11-0 libgl1 libegl1 unzip; do
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
# The GPU wheel is downloaded whole (~255 MB) and its CUDA provider is 284 MB unpacked.
[ "$ORT_VARIANT" = cpu ] || [ "$(cat "$ORT_DIR/VERSION" 2>/dev/null)" = "$ORT_TAG" ] || need_gb=$((need_gb + 1))
free_gb=$(df -Pk . | awk 'NR==2 {print int($4 / 1048576)}')
if [ "$ORT_ONLY" = 0 ] && [ "$need_gb" -gt 0 ] && [ "${free_gb:-0}" -lt "$need_gb" ]; then
  echo "warning: $free_gb GB free under $ROOT; a fresh set-up needs about $need_gb GB" >&2
fi

if [ "$ORT_ONLY" = 0 ]; then
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
fi  # ORT_ONLY

log "ONNX Runtime $ORT_VERSION library, $ORT_VARIANT build ($ORT_WHY), from the PyPI $ORT_PACKAGE wheel"
# VERSION holds "<version> <cpu|gpu>"; a bare version is an older set-up's CPU build.
have=$(cat "$ORT_DIR/VERSION" 2>/dev/null || true)
[ "$have" != "$ORT_VERSION" ] || have="$ORT_VERSION cpu"
if [ ! -f "$ORT_DIR/libonnxruntime.so" ] || [ "$have" != "$ORT_TAG" ] ||
   { [ "$ORT_VARIANT" = gpu ] && [ ! -f "$ORT_DIR/libonnxruntime_providers_cuda.so" ]; }; then
  [ -z "$have" ] || echo "replacing the installed build ($have)" >&2
  tmp=$(mktemp -d)
  if [ -n "${TAMPERSCOPE_ORT_WHEEL:-}" ]; then
    case "${TAMPERSCOPE_ORT_WHEEL##*/}" in
      "${ORT_PACKAGE//-/_}-$ORT_VERSION-"*.whl) cp "$TAMPERSCOPE_ORT_WHEEL" "$tmp/" ;;
      *) echo "setup.sh: TAMPERSCOPE_ORT_WHEEL is not a ${ORT_PACKAGE//-/_}-$ORT_VERSION-*.whl: $TAMPERSCOPE_ORT_WHEEL" >&2; exit 2 ;;
    esac
  else
    [ "$ORT_VARIANT" = cpu ] || echo "downloading $ORT_PACKAGE==$ORT_VERSION (~255 MB)" >&2
    .venv/bin/python -m pip download -q --no-cache-dir --no-deps --only-binary=:all: -d "$tmp" "$ORT_PACKAGE==$ORT_VERSION"
  fi
  mkdir -p "$ORT_DIR"
  rm -f "$ORT_DIR/VERSION"
  .venv/bin/python - "$tmp" "$ORT_DIR" "$ORT_VARIANT" <<'PYEOF'
import glob, os, shutil, sys, zipfile
tmp, dest, variant = sys.argv[1], sys.argv[2], sys.argv[3]
wheel = glob.glob(os.path.join(tmp, "onnxruntime*.whl"))[0]
# The core library, the shared-provider library and, from the GPU wheel, the CUDA provider (not the
# TensorRT one: tamperscope does not ask for it).
keep = lambda base: base.startswith("libonnxruntime.so") or base == "libonnxruntime_providers_shared.so" or (
    variant == "gpu" and base == "libonnxruntime_providers_cuda.so")
installed = []
with zipfile.ZipFile(wheel) as z:
    for n in z.namelist():
        base = os.path.basename(n)
        if "/capi/" not in n or not keep(base):
            continue
        with z.open(n) as src, open(os.path.join(dest, base + ".tmp"), "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        os.replace(os.path.join(dest, base + ".tmp"), os.path.join(dest, base))
        installed.append(base)
main = [b for b in installed if b.startswith("libonnxruntime.so")][0]
link = os.path.join(dest, "libonnxruntime.so")
if os.path.lexists(link):
    os.remove(link)
os.symlink(main, link)
# What the other build left (its CUDA provider, another version's core library).
for f in os.listdir(dest):
    if f.startswith("libonnxruntime") and f not in installed and f != "libonnxruntime.so":
        os.remove(os.path.join(dest, f))
print("installed", ", ".join(sorted(installed)), "from", os.path.basename(wheel))
PYEOF
  echo "$ORT_TAG" > "$ORT_DIR/VERSION"
  rm -rf "$tmp"
fi
[ "$ORT_VARIANT" = cpu ] || cuda_check
if [ "$ORT_ONLY" = 1 ]; then
  echo "ONNX Runtime: $ORT_TAG in $ORT_DIR ($ORT_WHY)${CUDA_NOTE:+; $CUDA_NOTE}" >&2
  exit 0
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
echo "ONNX Runtime: $ORT_TAG ($ORT_WHY)${CUDA_NOTE:+; $CUDA_NOTE}" >&2
if [ "$TRAINING" = 1 ]; then
  echo "setup done: target/release/tamperscope (with the training environment)" >&2
else
  echo "setup done: target/release/tamperscope (training environment: ./packaging/setup.sh --training)" >&2
fi
