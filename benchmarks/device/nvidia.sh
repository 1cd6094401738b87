#!/usr/bin/env bash
# The device check for a machine with an NVIDIA GPU and no Rust toolchain: the binaries are
# built elsewhere (scripts below) and carried in .device-bin/, the Vulkan loader in .gl/.
# Runs the wgpu integration tests, then bench eval, bench grad-modes and bench rollout on wgpu
# (the GPU through Vulkan) and flex, and PyTorch's grad modes on CUDA and CPU; everything it
# prints also goes to $OUT/log.
#
# Prepare (here, with the toolchain):
#   cargo build --release -p gradless
#   cargo test --release --no-run -p gradless-device --test wgpu_matches_flex \
#       -p gradless-envs --test device_envs_on_wgpu
#   put the three executables, stripped and xz-compressed (gradless.xz, wgpu_matches_flex.xz,
#   device_envs_on_wgpu.xz), and `gradless export checkpoints/cartpole-v1-ppo` as
#   ppo.safetensors into .device-bin/
#   (cd .gl && apt-get download libvulkan1): the Vulkan loader, which the GPU image lacks
# Both folders are ignored by git; name them in the device tool's `carry`.
set -uo pipefail
log="${OUT:-/tmp}/log"
exec > >(tee "$log") 2>&1
section() { echo; echo "=== $1 ($(date +%T))"; }

for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES="$icd"
export XDG_RUNTIME_DIR=/tmp RUST_LOG=warn
bin=.device-bin
python3 - <<'PY'
import lzma, os, pathlib
for packed in pathlib.Path(".device-bin").glob("*.xz"):
    unpacked = packed.with_suffix("")
    unpacked.write_bytes(lzma.decompress(packed.read_bytes()))
    os.chmod(unpacked, 0o755)
PY

# Sections to run (all by default): machine tests eval rollout grad_modes torch train.
sections="${SECTIONS:-machine tests eval rollout grad_modes torch train}"
wants() { [[ " $sections " == *" $1 "* ]]; }

if wants machine; then
    section "machine"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv
    nproc
    $bin/gradless devices
fi

if wants tests; then
    section "wgpu tests"
    (cd crates/device && ../../$bin/wgpu_matches_flex)
    (cd envs && ../$bin/device_envs_on_wgpu)
fi

if wants eval; then
    section "bench eval (flex, wgpu)"
    $bin/gradless --json bench eval --device flex,wgpu --num-envs 1,16,1024 --repeats 3
fi

if wants rollout; then
    section "bench rollout CartPole-v1 (${ROLLOUT_DEVICES:=wgpu,flex})"
    # Device envs both ways on wgpu: the fused step kernel and the same step as tensor ops.
    $bin/gradless --json bench rollout --env CartPole-v1 --device "$ROLLOUT_DEVICES" \
        --env-backend cpu,device --step-kernel "${ROLLOUT_KERNELS:-fused,tensor-ops}" \
        --num-envs "${ROLLOUT_SIZES:-1024,16384,65536,262144}" --repeats 3
    # The host side's bound: kernels recorded and dispatched but dropped.
    $bin/gradless --json bench rollout --env CartPole-v1 --device wgpu --env-backend device \
        --step-kernel fused,tensor-ops --num-envs 1024,65536 --repeats 3 --host-only
fi

if wants grad_modes; then
    section "bench grad-modes (${GRAD_MODE_DEVICES:=wgpu,flex})"
    $bin/gradless --json bench grad-modes checkpoints/cartpole-v1-ppo --device "$GRAD_MODE_DEVICES" \
        --batch 1,16,256,4096 --seconds 0.3 --windows 5 --memory-steps 2000 --graph-capture \
        --out "${OUT:-/tmp}"
fi

if wants torch; then
    section "PyTorch grad modes (${TORCH_DEVICES:=cuda cpu})"
    for device in $TORCH_DEVICES; do
        python3 benchmarks/torch_grad_modes.py $bin/ppo.safetensors --device "$device" \
            --threads "$(nproc)" --batch 1 16 256 4096 --seconds 0.3 --memory-steps 2000
    done
fi

if wants train; then
    steps="${TRAIN_STEPS:-51200}"
    section "PPO CartPole-v1, $steps steps on wgpu: device envs (rollout kernel, per step), CPU envs"
    for run in device:true device:false cpu:true; do
        backend="${run%%:*}" kernel="${run##*:}"
        timeout "${TRAIN_TIMEOUT:-300}" $bin/gradless --json train --config configs/cartpole_ppo.toml \
            --device wgpu --set ppo.env_backend=$backend --set ppo.rollout_kernel=$kernel \
            --set evaluation.every_steps=0 --set total_timesteps="$steps" \
            --out "/tmp/ppo-$backend-$kernel" | tail -1
    done
fi

section "done"
