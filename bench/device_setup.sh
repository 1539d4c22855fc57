# Sourced by the device_*run.sh scripts on the GPU machine: the carried
# shared libraries on the loader path, $OUT made, the GPU's name recorded.
C=.carry
mkdir -p /tmp/fgmm_lib && tar -xJf $C/lib.tar.xz -C /tmp/fgmm_lib
# Executables may travel xz-packed too (the carry limit is 64 MiB).
[ -f $C/bin.tar.xz ] && tar -xJf $C/bin.tar.xz -C $C
export LD_LIBRARY_PATH=/tmp/fgmm_lib:${LD_LIBRARY_PATH:-}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
