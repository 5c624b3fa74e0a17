#!/bin/bash
# GPU call (issue 8): pick the better of two action experts on held-out compositions with seeds the report does
# not use, then run the whole of benchmarks/compositional.py (every section, the ablation checkpoints of
# benchmarks/results/compositional_train/) for it. 16 workers on the box's 16 cores, the policies on the CPU.
#   run(command="A=<ckpt> B=<ckpt> bash policy/gpu_box/compositional.sh", carry=[".gpu"])
# A wins unless B succeeded more often over at least 14 (task, seed) pairs both ran.
# Writes $OUT/selection*.{json,md}, selection_verdict.txt and $OUT/compositional*.{json,md,png}; SELECT_EPS / EPISODES / EPISODES_OTHER
# episodes per task, SELECT_LIMIT_S / LIMIT_S: no new episodes after that many seconds; TOTAL_S: the whole call (590).
T0=$(date +%s)
source policy/gpu_box/setup.sh
BENCH=benchmarks/compositional.py
WIN=$A
if [ -n "$B" ]; then
  timeout 200 python3 $BENCH --policy $A --policy-extra $B --sections splits ablations --episodes ${SELECT_EPS:-6} \
    --episodes-other 0 --seed 6000 --workers 16 --time-limit-s ${SELECT_LIMIT_S:-150} --name selection --out-dir $OUT \
    > $OUT/selection_log.txt 2>&1
  # compare on the (task, seed) pairs both ran: the time limit cuts the second policy's row first (session 16's
  # selection compared 35 episodes of A with 6 of B)
  WIN=$(python3 -c "
import json; eps = json.load(open('$OUT/selection.json'))['details']['episodes']
runs = {v: {(e['task'], e['seed']): e['success'] for e in eps if e['variant'] == v and 'success' in e} for v in ('full', 'extra_policy')}
both = sorted(set(runs['full']) & set(runs['extra_policy']))
a, b = (sum(runs[v][k] for k in both) for v in ('full', 'extra_policy'))
print('$B' if len(both) >= 14 and b > a else '$A')
print(f'{len(both)} matched episodes: A {a}, B {b}', file=open('$OUT/selection_verdict.txt', 'w'))")
  cat $OUT/selection_verdict.txt
  echo "selection (seeds 6000+): $(grep -h 'heldout' $OUT/selection.md | head -4)"
fi
echo "benchmarking $WIN ($(( $(date +%s) - T0 )) s in)"
timeout $(( ${TOTAL_S:-590} - $(date +%s) + T0 )) python3 $BENCH --policy $WIN \
  --policy-pointnet benchmarks/results/compositional_train/pointnet \
  --policy-transformer benchmarks/results/compositional_train/transformer \
  --policy-flat benchmarks/results/compositional_train/flat \
  --episodes ${EPISODES:-6} --episodes-other ${EPISODES_OTHER:-2} --workers 16 --time-limit-s ${LIMIT_S:-300} \
  --out-dir $OUT > $OUT/compositional_log.txt 2>&1
tail -n 30 $OUT/compositional_log.txt
echo "total $(( $(date +%s) - T0 )) s"
