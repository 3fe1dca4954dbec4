#!/usr/bin/env bash
# On the GPU machine (after `. .device/env.sh`): Nsight Compute on the prefill kernels, IS vs FS,
# M=4096, K=N=4096. The bench launches each variant 3 + 40 times in the order IS, IS-shift, FS,
# per config (mma 128x128, then the wgmma-rs and wgmma-tma configs): --launch-skip picks the variant.
# Usage: bash scripts/gpu/cuda-ncu.sh OUTDIR
set -uo pipefail
out=${1:-${OUT:-/tmp}}
export INTSCALE_CUDA_CACHE=/tmp/intscale-kc
pipes=sm__inst_executed_pipe_alu.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_fma.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_fmaheavy.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_fmalite.avg.pct_of_peak_sustained_active,sm__pipe_alu_cycles_active.avg.pct_of_peak_sustained_active,sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active,sm__pipe_fmaheavy_cycles_active.avg.pct_of_peak_sustained_active,sm__pipe_shared_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_lsu.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_uniform.avg.pct_of_peak_sustained_active,sm__inst_issued.avg.pct_of_peak_sustained_active,sm__inst_executed.sum,smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio,smsp__average_warps_issue_stalled_math_pipe_throttle_per_issue_active.ratio,smsp__average_warps_issue_stalled_wait_per_issue_active.ratio,smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio,smsp__average_warps_issue_stalled_short_scoreboard_per_issue_active.ratio,smsp__average_warps_issue_stalled_dispatch_stall_per_issue_active.ratio,smsp__average_warps_issue_stalled_mio_throttle_per_issue_active.ratio,smsp__average_warps_issue_stalled_not_selected_per_issue_active.ratio,smsp__average_warps_issue_stalled_selected_per_issue_active.ratio,gpu__time_duration.sum
sec="--section SpeedOfLight --section ComputeWorkloadAnalysis --section InstructionStats --section WarpStateStats"
for kern in w4a8_mma w4a8_wgmma_tma; do
  for v in is:0 fs:86; do
    name=${v%%:*}; skip=${v##*:}
    ncu --clock-control none --kernel-name $kern --launch-skip $skip --launch-count 1 $sec \
      node dist/bench/cuda-prefill.js --out /tmp/ncu-bench --ms 4096 --shapes 4096x4096 \
      > "$out/ncu-$kern-$name.txt" 2>&1
    ncu --clock-control none --kernel-name $kern --launch-skip $skip --launch-count 1 --metrics $pipes \
      node dist/bench/cuda-prefill.js --out /tmp/ncu-bench --ms 4096 --shapes 4096x4096 \
      >> "$out/ncu-$kern-$name.txt" 2>&1
  done
done
for f in "$out"/ncu-*.txt; do
  echo "== $f"
  grep -E "Duration|Executed Ipc Active|Issue Slots Busy|SM Busy|Compute \(SM\) Throughput|No Eligible|pipe_|stalled|inst_issued|inst_executed.sum|==ERR|error" "$f" | sed 's/  */ /g' | head -40
done
