#!/bin/bash
# GPU call (issue 8): fresh demos + one DAgger round of the shipped expert, aggregated; fine-tune the shipped
# expert with shape harmonics added. Runs and results: benchmarks/results/compositional_s7/ (before the
# densest-cluster fix) and compositional_s10/ (after it).
# Prepare here (ignored folder .gpu/, carried): gl/ the EGL loader debs (device README), whl/ cp312 wheels of
# mujoco, mujoco_core, gymnasium, farama_notifications, cloudpickle, tyro, docstring_parser, typeguard,
# fpsample, glfw, pyopengl (versions of .venv), text_cache.safetensors (`vla policy text-cache --out ...`).
# Call: run(command="BUDGET=560 bash policy/gpu_box/finetune.sh", carry=[".gpu"]); LR_MULT=30: the added
# weights learn 30x faster (TrainConfig.new_weights_lr_mult); DAGGER_SHARE=0.5: DAgger windows at half of
# every batch (TrainConfig.mix_weights; unset: in proportion to their windows, about a quarter). FROM: the
# checkpoint that drives the DAgger round and that training starts from (default shipped/policy; a second
# round: FROM=benchmarks/results/compositional_s12/checkpoint, session 12's round-1 result; session 13 ran it with LR_MULT=1,
# benchmarks/results/compositional_s13/). DAGGER_ALSO: more checkpoints whose own DAgger rounds (DAGGER_EPS_ALSO
# episodes per task, default 10) join the mixture, so that earlier rounds' states stay in it (DAgger aggregates
# its rounds; session 13's second round alone forgot what the first had taught); the DAgger share is split
# evenly over the rounds. E.g. FROM=<round-2 checkpoint> DAGGER_ALSO="shipped/policy benchmarks/results/compositional_s12/checkpoint".
# Session 14 ran FROM=benchmarks/results/compositional_s12/checkpoint DAGGER_ALSO="shipped/policy
# benchmarks/results/compositional_s13/checkpoint" DAGGER_EPS_ALSO=8 DEMO_EPS=40 DATA_TIMEOUT=250 (the data
# phase, demos and three rounds, ended 152 s into the script; benchmarks/results/compositional_s14/).
# RANDOM_START: share of demo and DAgger episodes that begin from a random hover pose (sim/start_pose.py; default 0).
# SUBTASK_LAG: TrainConfig.subtask_lag_max_ticks (default 0): the previous subtask's text shown up to this many
# ticks after each switch, as the planner names it late.
# SOLID_CUBES=1: switch on PolicyConfig.solid_cube_masks (a cube's channel keeps only its solid cluster);
# MARK_BUTTON=1 then marks the button too (its flat red cap; TrainConfig.mark_objects), in both channels (the shipped
# checkpoint marks it, untrained, only where it is pressed: target_only_objects, session 18). Session 19 ran it from
# the shipped checkpoint (benchmarks/results/press_trained_s19/): worse than the shipped policy, 24/56 vs 34/56, not shipped.
# EXTRA_TASKS: more demos of these tasks (EXTRA_EPS per task, seeds from 1000, random starts as RANDOM_START) in a
# dataset of their own at EXTRA_SHARE of every batch (default 0.15), for the skills that fail after a hand-off.
T0=$(date +%s)
source policy/gpu_box/setup.sh
TASKS="PickRedCube PickBlueCube OpenDrawer CloseDrawer PressButton PutRedInBowl PutGreenInBowl PutGreenInDrawer StackRedOnGreen StackGreenOnBlue PushBlueTowardBowl PushRedTowardButton PressButtonThenPutRedInBowl OpenDrawerAndPressButton PutRedAndGreenInBowl"
V="python3 -m vla_stack.cli"
# a box still warm from an earlier call keeps /tmp: start clean (session 15's second call, before this line,
# found the first call's data and training folder, failed to write its own data and resumed that training)
rm -rf /tmp/s7
mkdir -p /tmp/s7 $OUT/logs
OMP_NUM_THREADS=1 timeout ${DATA_TIMEOUT:-240} $V policy demos --out /tmp/s7/demos --tasks $TASKS --episodes ${DEMO_EPS:-60} --n-points 1024 \
  --image-size 128 --noise-pos-m 0.005 --noise-rot-rad 0.03 --noisy-fraction 0.5 --seed 0 --random-start-fraction ${RANDOM_START:-0} > $OUT/logs/demos_log.txt 2>&1 &
OMP_NUM_THREADS=1 timeout ${DATA_TIMEOUT:-240} $V policy dagger --checkpoint ${FROM:-shipped/policy} --out /tmp/s7/dagger --tasks $TASKS --episodes ${DAGGER_EPS:-20} \
  --n-envs 10 --beta 0.3 --seed 300 --n-points 1024 --image-size 128 --max-steps 300 --device cuda --random-start-fraction ${RANDOM_START:-0} > $OUT/logs/dagger_log.txt 2>&1 &
EXTRA=""
if [ -n "$EXTRA_TASKS" ]; then
  EXTRA="/tmp/s7/demos_extra"
  OMP_NUM_THREADS=1 timeout ${DATA_TIMEOUT:-240} $V policy demos --out $EXTRA --tasks $EXTRA_TASKS --episodes ${EXTRA_EPS:-40} \
    --n-points 1024 --image-size 128 --noise-pos-m 0.005 --noise-rot-rad 0.03 --noisy-fraction 0.5 --seed 1000 \
    --random-start-fraction ${RANDOM_START:-0} > $OUT/logs/demos_extra_log.txt 2>&1 &
fi
ROUNDS="/tmp/s7/dagger"
i=0
for CK in $DAGGER_ALSO; do
  i=$((i + 1)); ROUNDS="$ROUNDS /tmp/s7/dagger_also$i"
  OMP_NUM_THREADS=1 timeout ${DATA_TIMEOUT:-240} $V policy dagger --checkpoint $CK --out /tmp/s7/dagger_also$i --tasks $TASKS \
    --episodes ${DAGGER_EPS_ALSO:-10} --n-envs 10 --beta 0.3 --seed $((300 + 100 * i)) --n-points 1024 --image-size 128 \
    --max-steps 300 --device cuda --random-start-fraction ${RANDOM_START:-0} > $OUT/logs/dagger_also${i}_log.txt 2>&1 &
done
wait
tail -n 3 $OUT/logs/demos*_log.txt $OUT/logs/dagger*_log.txt
cp /tmp/s7/dagger/dagger_summary.json $OUT/logs/ 2>/dev/null
cp /tmp/s7/demos/demos_summary.json $OUT/logs/ 2>/dev/null
# aggregated: every window equally likely, or the DAgger rounds together at DAGGER_SHARE of every batch
MIX="--mix-with $EXTRA $ROUNDS"
if [ -n "$EXTRA$DAGGER_SHARE" ]; then  # demos, the extra demos (if any), then each round
  MIX="$MIX --mix-weights $(python3 -c "n = $((i + 1)); d = ${DAGGER_SHARE:-0.5}; e = [${EXTRA:+${EXTRA_SHARE:-0.15}}]
print(1 - d - sum(e), *e, *[d / n] * n)")"
fi
echo "mixture: $MIX"
EL=$(( $(date +%s) - T0 ))
MIN=$(python3 -c "print(max(1.5, (${BUDGET:-575} - $EL - 25) / 60))")
echo "elapsed $EL s; training for $MIN min"
$V train policy --steps 1000000 --time-budget-min $MIN --batch-size 128 --history 16 --save-every 500 --log-every 50 \
  --no-progress --dataset /tmp/s7/demos $MIX --out /tmp/s7/full_sh --init-from ${FROM:-shipped/policy} --add-shape-harmonics \
  --lr 3e-4 --warmup-steps 50 --new-weights-lr-mult ${LR_MULT:-1} --subtask-lag-max-ticks ${SUBTASK_LAG:-0} \
  $([ -n "$SOLID_CUBES" ] && echo --solid-cube-masks) $([ -n "$MARK_BUTTON" ] && echo --mark-objects button) > $OUT/logs/full_sh_train.log 2>&1
tail -n 4 $OUT/logs/full_sh_train.log
cp /tmp/s7/full_sh/train_config.json $OUT/logs/full_sh_train_config.json
D=/tmp/s7/full_sh/final; [ -d $D ] || D=/tmp/s7/full_sh/last
tar czf $OUT/full_sh.tgz -C $(dirname $D) $(basename $D)
tar czf $OUT/logs.tgz -C $OUT logs && rm -rf $OUT/logs   # the box returns at most 8 files per call
echo "total $(( $(date +%s) - T0 )) s"
