#!/bin/bash
# GPU call (issue 8): pick the better of two action experts on held-out compositions with seeds the report does
# not use, then run the whole of benchmarks/compositional.py (every section, the ablation checkpoints of
# benchmarks/results/compositional_train/) for it. 16 workers on the box's 16 cores, the policies on the CPU.
#   run(command="A=<ckpt> B=<ckpt> bash policy/gpu_box/compositional.sh", carry=[".gpu"])
# Writes $OUT/selection*.{json,md} and $OUT/compositional*.{json,md,png}; SELECT_EPS / EPISODES / EPISODES_OTHER
# episodes per task, SELECT_LIMIT_S / LIMIT_S: no new episodes after that many seconds.
T0=$(date +%s)
source policy/gpu_box/setup.sh
BENCH=benchmarks/compositional.py
WIN=$A
if [ -n "$B" ]; then
  timeout 200 python3 $BENCH --policy $A --policy-extra $B --sections splits ablations --episodes ${SELECT_EPS:-6} \
    --episodes-other 0 --seed 6000 --workers 16 --time-limit-s ${SELECT_LIMIT_S:-110} --name selection --out-dir $OUT \
    > $OUT/selection_log.txt 2>&1
  WIN=$(python3 -c "
import json; m = json.load(open('$OUT/selection.json'))['metrics']
a, b = m['success_heldout_compositions_full'], m['success_heldout_compositions_extra_policy']
print('$A' if a >= b else '$B')")
  echo "selection (seeds 6000+): $(grep -h 'heldout' $OUT/selection.md | head -4)"
fi
echo "benchmarking $WIN ($(( $(date +%s) - T0 )) s in)"
timeout $(( 590 - $(date +%s) + T0 )) python3 $BENCH --policy $WIN \
  --policy-pointnet benchmarks/results/compositional_train/pointnet \
  --policy-transformer benchmarks/results/compositional_train/transformer \
  --policy-flat benchmarks/results/compositional_train/flat \
  --episodes ${EPISODES:-6} --episodes-other ${EPISODES_OTHER:-2} --workers 16 --time-limit-s ${LIMIT_S:-300} \
  --out-dir $OUT > $OUT/compositional_log.txt 2>&1
tail -n 30 $OUT/compositional_log.txt
echo "total $(( $(date +%s) - T0 )) s"
