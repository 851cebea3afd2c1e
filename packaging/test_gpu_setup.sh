#!/usr/bin/env bash
# The set-up's choice of ONNX Runtime build (issue 16 item 7), without a GPU and without the 255 MB
# onnxruntime-gpu wheel:
#   1. packaging/setup.sh in dry-run mode (TAMPERSCOPE_ORT_DRY_RUN=1), run from a copy in a temporary
#      folder (no .venv there, so the CUDA/cuDNN search sees only what the test puts in), with a fake
#      nvidia-smi first in PATH that answers like a real one, one that fails, none at all, and with
#      TAMPERSCOPE_ORT=gpu|cpu|bogus; a fake ldconfig for the CUDA/cuDNN report.
#   2. setup.sh --ort-only on small synthetic wheels (TAMPERSCOPE_ORT_WHEEL): which files are installed,
#      VERSION, switching gpu -> cpu removes the CUDA provider, a re-run installs nothing.
#   3. The binary's fallback (skipped when target/release/tamperscope or the library is absent): with this
#      checkout's CPU library, --provider cuda fails with a clear message and --provider auto says CPU ran;
#      with the real GPU build's core library but no CUDA provider library (libonnxruntime.so.1.31.1 and
#      the shared-provider library, ~11 MB read out of the PyPI wheel with HTTP range requests, cached in
#      .cache/; skipped offline or with TAMPERSCOPE_TEST_OFFLINE=1), --provider cuda fails naming the
#      missing library and --provider auto falls back to CPU and says why.
# CUDA itself is not run: no GPU here.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ORT_VERSION=$(sed -n 's/^ORT_VERSION=//p' packaging/setup.sh)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "  ok: $*"; }
bad() { echo "  FAIL: $*" >&2; fails=$((fails + 1)); }
expect() {  # expect NAME PATTERN TEXT: grep -E PATTERN in TEXT
  if grep -qE -- "$2" <<< "$3"; then ok "$1"; else bad "$1: no /$2/ in:"; sed 's/^/      /' <<< "$3" >&2; fi
}
reject() {
  if grep -qE -- "$2" <<< "$3"; then bad "$1: /$2/ found in:"; sed 's/^/      /' <<< "$3" >&2; else ok "$1"; fi
}

# A copy of the set-up in a folder of its own.
mkdir -p "$T/repo/packaging" "$T/bin-gpu" "$T/bin-old" "$T/bin-broken" "$T/bin-ld" "$T/bin-noldc"
cp packaging/setup.sh "$T/repo/packaging/"
# PATH without any real nvidia-smi or ldconfig, plus the fakes of each case in front.
BASE_PATH=$(IFS=:; for d in $PATH; do [ -e "$d/nvidia-smi" ] || printf '%s:' "$d"; done)
BASE_PATH=${BASE_PATH%:}
cat > "$T/bin-gpu/nvidia-smi" <<'EOF'
#!/bin/sh
# Answers as nvidia-smi 580 does on one GPU.
case "$*" in
  *--query-gpu=name,driver_version*) echo "NVIDIA H100 80GB HBM3, 580.65.06" ;;
  *) echo "NVIDIA-SMI 580.65.06" ;;
esac
EOF
cat > "$T/bin-old/nvidia-smi" <<'EOF'
#!/bin/sh
echo "Tesla T4, 535.183.01"
EOF
cat > "$T/bin-broken/nvidia-smi" <<'EOF'
#!/bin/sh
# What nvidia-smi says when the driver is not loaded.
echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
exit 9
EOF
cat > "$T/bin-ld/ldconfig" <<'EOF'
#!/bin/sh
echo "9 libs found in cache \`/etc/ld.so.cache'"
for l in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcufft.so.12 libcurand.so.10 libnvrtc.so.13 libcudnn.so.9; do
  printf '\t%s (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/%s\n' "$l" "$l"
done
EOF
printf '#!/bin/sh\necho "0 libs found in cache"\n' > "$T/bin-noldc/ldconfig"
chmod +x "$T"/bin-*/*
# dry PATH_PREFIX [VAR=VALUE...]: the dry run's stdout and stderr
dry() {
  local prefix=$1; shift
  env -i HOME="$T" PATH="$prefix${prefix:+:}$BASE_PATH" TAMPERSCOPE_ORT_DRY_RUN=1 "$@" \
    bash "$T/repo/packaging/setup.sh" 2>&1
}

echo "== 1. selection (dry run)"
out=$(dry "$T/bin-gpu:$T/bin-noldc")
expect "GPU answers -> gpu build" "^ONNX Runtime build: gpu \(NVIDIA GPU found by nvidia-smi\)" "$out"
expect "GPU answers -> onnxruntime-gpu wheel" "^wheel: onnxruntime-gpu==$ORT_VERSION .*VERSION \"$ORT_VERSION gpu\"" "$out"
expect "GPU answers -> CUDA 13 / cuDNN 9 named" "needs CUDA 13.x and cuDNN 9.x" "$out"
expect "GPU answers -> GPU and driver printed" "GPU, driver: NVIDIA H100 80GB HBM3, 580.65.06" "$out"
reject "driver 580 -> no driver warning" "older than the 580" "$out"
if [ ! -e /usr/local/cuda/lib64/libcurand.so.10 ]; then
  expect "nothing installed -> libcurand reported missing" "libcurand.so.10: missing" "$out"
  expect "nothing installed -> PyPI packages suggested" "pip install .*nvidia-cudnn-cu13~=9.0" "$out"
  expect "nothing installed -> says CPU will run" "'--provider auto' runs on the CPU" "$out"
fi
expect "dry run installs nothing" "^dry run \(TAMPERSCOPE_ORT_DRY_RUN=1\): nothing installed" "$out"
[ ! -e "$T/repo/third_party" ] && [ ! -e "$T/repo/.venv" ] && ok "dry run wrote nothing" || bad "dry run wrote files"

out=$(dry "$T/bin-gpu:$T/bin-ld")
expect "libraries in the loader cache -> found there" "libcudnn.so.9: /usr/lib/x86_64-linux-gnu/libcudnn.so.9 \(loader cache\)" "$out"
reject "libraries in the loader cache -> nothing missing" "missing" "$out"

mkdir -p "$T/repo/.venv/lib/python3.11/site-packages/nvidia/cu13/lib" "$T/repo/.venv/lib/python3.11/site-packages/nvidia/cudnn/lib"
touch "$T/repo/.venv/lib/python3.11/site-packages/nvidia/cu13/lib/"{libcudart.so.13,libcublas.so.13,libcublasLt.so.13,libcufft.so.12,libcurand.so.10,libnvrtc.so.13}
touch "$T/repo/.venv/lib/python3.11/site-packages/nvidia/cudnn/lib/libcudnn.so.9"
out=$(dry "$T/bin-gpu:$T/bin-noldc")
expect "libraries in the venv's nvidia packages -> found there" "libcudart.so.13: $T/repo/.venv/lib/python3.11/site-packages/nvidia/cu13/lib/libcudart.so.13" "$out"
expect "libraries in the venv -> LD_LIBRARY_PATH line" "export LD_LIBRARY_PATH=$T/repo/.venv/lib/python3.11/site-packages/nvidia/cu13/lib:$T/repo/.venv/lib/python3.11/site-packages/nvidia/cudnn/lib" "$out"
reject "libraries in the venv -> nothing missing" "missing" "$out"
rm -rf "$T/repo/.venv"

out=$(dry "$T/bin-old:$T/bin-noldc")
expect "driver 535 -> gpu build" "^ONNX Runtime build: gpu" "$out"
expect "driver 535 -> warning" "driver 535 is older than the 580 series" "$out"

out=$(dry "$T/bin-broken")
expect "nvidia-smi fails -> cpu build" "^ONNX Runtime build: cpu \(nvidia-smi is there but does not answer\)" "$out"
expect "nvidia-smi fails -> onnxruntime wheel" "^wheel: onnxruntime==$ORT_VERSION .*VERSION \"$ORT_VERSION cpu\"" "$out"
reject "cpu build -> no CUDA report" "needs CUDA" "$out"

out=$(dry "")
expect "no nvidia-smi -> cpu build" "^ONNX Runtime build: cpu \(no nvidia-smi\)" "$out"

out=$(dry "" TAMPERSCOPE_ORT=gpu)
expect "TAMPERSCOPE_ORT=gpu without a GPU -> gpu build" "^ONNX Runtime build: gpu \(forced by TAMPERSCOPE_ORT=gpu\)" "$out"
expect "TAMPERSCOPE_ORT=gpu without a GPU -> says no GPU answers" "GPU: none answers nvidia-smi" "$out"
out=$(dry "$T/bin-gpu" TAMPERSCOPE_ORT=cpu)
expect "TAMPERSCOPE_ORT=cpu with a GPU -> cpu build" "^ONNX Runtime build: cpu \(forced by TAMPERSCOPE_ORT=cpu\)" "$out"
out=$(dry "$T/bin-gpu" TAMPERSCOPE_ORT=auto)
expect "TAMPERSCOPE_ORT=auto with a GPU -> gpu build" "^ONNX Runtime build: gpu" "$out"
rc=0; out=$(dry "" TAMPERSCOPE_ORT=cuda) || rc=$?
[ "$rc" = 2 ] && ok "TAMPERSCOPE_ORT=cuda -> exit 2" || bad "TAMPERSCOPE_ORT=cuda -> exit $rc"
expect "TAMPERSCOPE_ORT=cuda -> says the values" "must be gpu, cpu or auto" "$out"

echo "== 2. install and switch (--ort-only, synthetic wheels)"
mkdir -p "$T/repo/.venv/bin" "$T/wheels"
ln -s "$(command -v python3)" "$T/repo/.venv/bin/python"
python3 - "$T/wheels" "$ORT_VERSION" <<'PYEOF'
import sys, zipfile
out, v = sys.argv[1], sys.argv[2]
for name, variant, extra in (("onnxruntime_gpu", "gpu", ["libonnxruntime_providers_cuda.so", "libonnxruntime_providers_tensorrt.so"]),
                             ("onnxruntime", "cpu", [])):
    with zipfile.ZipFile(f"{out}/{name}-{v}-cp311-cp311-manylinux_2_28_x86_64.whl", "w") as z:
        for lib in [f"libonnxruntime.so.{v}", "libonnxruntime_providers_shared.so"] + extra:
            z.writestr(f"onnxruntime/capi/{lib}", f"{variant} {lib}\n")
        z.writestr("onnxruntime/capi/onnxruntime_pybind11_state.so", "python module\n")
        z.writestr("onnxruntime/__init__.py", "")
PYEOF
LIB=$T/repo/third_party/onnxruntime/lib
ort_only() {  # ort_only PATH_PREFIX VARIANT_OR_EMPTY WHEEL
  env -i HOME="$T" PATH="$1${1:+:}$BASE_PATH" ${2:+TAMPERSCOPE_ORT=$2} TAMPERSCOPE_ORT_WHEEL="$3" \
    bash "$T/repo/packaging/setup.sh" --ort-only 2>&1
}
GPU_WHL=$T/wheels/onnxruntime_gpu-$ORT_VERSION-cp311-cp311-manylinux_2_28_x86_64.whl
CPU_WHL=$T/wheels/onnxruntime-$ORT_VERSION-cp311-cp311-manylinux_2_28_x86_64.whl
out=$(ort_only "$T/bin-gpu:$T/bin-noldc" "" "$GPU_WHL")
expect "GPU machine -> installs from the GPU wheel" "installed libonnxruntime.so.$ORT_VERSION, libonnxruntime_providers_cuda.so, libonnxruntime_providers_shared.so from onnxruntime_gpu-" "$out"
[ "$(cat "$LIB/VERSION")" = "$ORT_VERSION gpu" ] && ok "VERSION says gpu" || bad "VERSION is '$(cat "$LIB/VERSION")'"
[ "$(readlink "$LIB/libonnxruntime.so")" = "libonnxruntime.so.$ORT_VERSION" ] && ok "libonnxruntime.so links to the core library" || bad "libonnxruntime.so link"
grep -q "^gpu" "$LIB/libonnxruntime.so" && ok "core library is the GPU build's" || bad "core library is not the GPU build's"
[ -f "$LIB/libonnxruntime_providers_cuda.so" ] && ok "CUDA provider installed" || bad "CUDA provider missing"
[ ! -e "$LIB/libonnxruntime_providers_tensorrt.so" ] && ok "TensorRT provider not installed" || bad "TensorRT provider installed"
expect "--ort-only summary" "ONNX Runtime: $ORT_VERSION gpu in third_party/onnxruntime/lib" "$out"
out=$(ort_only "$T/bin-gpu:$T/bin-noldc" "" "$GPU_WHL")
reject "re-run on the same build -> nothing installed" "^installed |replacing" "$out"
out=$(ort_only "$T/bin-gpu" cpu "$GPU_WHL") && rc=0 || rc=$?
[ "$rc" = 2 ] && ok "CPU build with the GPU wheel -> refused" || bad "CPU build with the GPU wheel -> exit $rc"
out=$(ort_only "$T/bin-gpu" cpu "$CPU_WHL")
expect "switch to cpu -> replaces the GPU build" "replacing the installed build \($ORT_VERSION gpu\)" "$out"
[ "$(cat "$LIB/VERSION")" = "$ORT_VERSION cpu" ] && ok "VERSION says cpu" || bad "VERSION is '$(cat "$LIB/VERSION")'"
[ ! -e "$LIB/libonnxruntime_providers_cuda.so" ] && ok "switch to cpu removes the CUDA provider" || bad "CUDA provider left behind"
grep -q "^cpu" "$LIB/libonnxruntime.so" && ok "core library is the CPU build's" || bad "core library is not the CPU build's"
echo "$ORT_VERSION" > "$LIB/VERSION"   # as an older set-up wrote it
out=$(ort_only "" "" "$CPU_WHL")
reject "older VERSION (no build) on a CPU machine -> kept" "^installed |replacing" "$out"

echo "== 3. the binary's fallback"
BIN=target/release/tamperscope
SAMPLE=assets/samples/kleiber_spliced.jpg
analyze() {  # analyze PROVIDER [ENV...]: stdout+stderr, then "rc=N"
  local p=$1; shift
  local rc=0 o
  o=$(env "$@" "$BIN" analyze "$SAMPLE" --out "$T/out-$p-$RANDOM" --provider "$p" 2>&1) || rc=$?
  printf '%s\nrc=%s\n' "$o" "$rc"
}
if [ ! -x "$BIN" ]; then
  echo "  skipped: no $BIN (cargo build --release)"
elif [ ! -f third_party/onnxruntime/lib/libonnxruntime.so ]; then
  echo "  skipped: no ONNX Runtime library (packaging/setup.sh)"
else
  build=$(cat third_party/onnxruntime/lib/VERSION 2>/dev/null || true)
  if [ "${build#* }" = gpu ]; then
    # A GPU set-up: CUDA may or may not load here; the binary must say which provider ran.
    out=$(analyze auto)
    expect "installed GPU build, --provider auto -> reports the provider" "provider: (CUDA|CPU \(CUDA failed)" "$out"
    grep -m1 "provider:" <<< "$out" | sed 's/^ */  (/; s/$/)/'
  else
    out=$(analyze cuda)
    expect "CPU build, --provider cuda -> exit 1" "^rc=1$" "$out"
    expect "CPU build, --provider cuda -> clear error" "CUDA was requested but this ONNX Runtime build has no CUDA execution provider" "$out"
    out=$(analyze auto)
    expect "CPU build, --provider auto -> runs" "^rc=0$" "$out"
    expect "CPU build, --provider auto -> says CPU ran" "provider: CPU \(CUDA not available in this ONNX Runtime build\)" "$out"
  fi
  # The GPU build's core library without its CUDA provider library.
  CORE=.cache/onnxruntime-gpu-core-$ORT_VERSION
  if [ ! -f "$CORE/libonnxruntime.so" ] && [ "${TAMPERSCOPE_TEST_OFFLINE:-0}" != 1 ]; then
    mkdir -p "$CORE.tmp"
    if timeout 300 python3 - "$ORT_VERSION" "$CORE.tmp" > "$T/fetch.log" 2>&1 <<'PYEOF'
# Read two members of the onnxruntime-gpu wheel from PyPI with HTTP range requests: the zip's central
# directory and those members only (~11 MB of 255 MB). zipfile checks each member's CRC-32.
import io, json, os, sys, urllib.parse, urllib.request, zipfile
version, dest = sys.argv[1], sys.argv[2]
index = "https://pypi.org/pypi/onnxruntime-gpu/json"
meta = json.load(urllib.request.urlopen(index, timeout=60))
f = sorted((f for f in meta["releases"][version] if f["filename"].endswith("manylinux_2_28_x86_64.whl")),
           key=lambda f: f["filename"])[0]
url, size = urllib.parse.urljoin(index, f["url"]), f["size"]
class Remote(io.RawIOBase):
    pos = 0
    def readable(self): return True
    def seekable(self): return True
    def tell(self): return self.pos
    def seek(self, off, whence=0):
        self.pos = off if whence == 0 else self.pos + off if whence == 1 else size + off
        return self.pos
    def readinto(self, b):
        n = min(len(b), size - self.pos)
        if n <= 0:
            return 0
        req = urllib.request.Request(url, headers={"Range": f"bytes={self.pos}-{self.pos + n - 1}"})
        with urllib.request.urlopen(req, timeout=120) as r:
            if r.status != 206:
                sys.exit(f"no range requests at {url}")
            data = r.read()
        b[:len(data)] = data
        self.pos += len(data)
        return len(data)
wanted = {f"libonnxruntime.so.{version}", "libonnxruntime_providers_shared.so"}
with zipfile.ZipFile(io.BufferedReader(Remote(), buffer_size=1 << 20)) as z:
    for info in z.infolist():
        base = os.path.basename(info.filename)
        if base in wanted:
            with z.open(info) as src, open(os.path.join(dest, base), "wb") as out:
                out.write(src.read())
            wanted.discard(base)
if wanted:
    sys.exit(f"not in {f['filename']}: {sorted(wanted)}")
os.symlink(f"libonnxruntime.so.{version}", os.path.join(dest, "libonnxruntime.so"))
print("read from", f["filename"])
PYEOF
    then rm -rf "$CORE"; mv "$CORE.tmp" "$CORE"
    else echo "  (could not read the GPU wheel from PyPI: $(tail -n 1 "$T/fetch.log"))"; rm -rf "$CORE.tmp"
    fi
  fi
  if [ -f "$CORE/libonnxruntime.so" ]; then
    [ ! -e "$CORE/libonnxruntime_providers_cuda.so" ] || bad "$CORE has a CUDA provider library"
    out=$(analyze cuda ORT_DYLIB_PATH="$ROOT/$CORE/libonnxruntime.so")
    expect "GPU build without its CUDA provider, --provider cuda -> exit 1" "^rc=1$" "$out"
    expect "GPU build without its CUDA provider, --provider cuda -> names the missing library" "Failed to load library .*libonnxruntime_providers_cuda.so" "$out"
    out=$(analyze auto ORT_DYLIB_PATH="$ROOT/$CORE/libonnxruntime.so")
    expect "GPU build without its CUDA provider, --provider auto -> runs" "^rc=0$" "$out"
    expect "GPU build without its CUDA provider, --provider auto -> CPU, says why" "provider: CPU \(CUDA failed: .*libonnxruntime_providers_cuda.so" "$out"
  else
    echo "  skipped: the GPU build's core library (offline, or TAMPERSCOPE_TEST_OFFLINE=1)"
  fi
fi

if [ "$fails" -gt 0 ]; then
  echo "test_gpu_setup: $fails failed" >&2
  exit 1
fi
echo "test_gpu_setup: all passed (CUDA itself not run: no GPU here)"
