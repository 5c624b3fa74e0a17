#!/bin/bash
# Exact commands of the object-channel comparison (CPU, 2 shared cores, load 5-7; OMP_NUM_THREADS=1 per process).
# Variants differ only in --model.object-channels; same data, seed 0, steps, batch and LR.
#   without           : object_channels off (the architecture of the committed checkpoints)
#   with_inputs_only  : masks as point-MLP and attention-MLP inputs only (code of commit 558f6e3)
#   with              : + object channel c biases attention head c (learnable, init 8; commit a8ba504 on)
set -e
export MUJOCO_GL=egl OMP_NUM_THREADS=1
W=/tmp/pol2
# 1. data: 100 successful expert demos per task (seeds 0-99), DART noise on half, 512 points (~50 s)
vla policy demos --out $W/demos --tasks PickBlueCube PickRedCube --episodes 100 --n-points 512 --image-size 128 \
  --noise-pos-m 0.005 --noise-rot-rad 0.03 --noisy-fraction 0.5 --seed 0 --workers 2
# 2. train: a small model (138k parameters), 700 steps of 8 windows x 4 ticks (~4.5-6.5 min each at 1.8-2.8 steps/s)
SMALL="--model.n-centers 16 --model.k-points 8 --model.k-centers 8 --model.scalars 16 --model.vectors 4 --model.tensors2 2 --model.d-model 64 --model.n-layers 1"
train() {  # $1 = variant name, then extra flags
  name=$1; shift
  vla train policy --dataset $W/demos --out $W/$name --steps 700 --time-budget-min 9 --batch-size 8 --history 4 \
    --lr 1e-3 --warmup-steps 50 --save-every 100000 --log-every 20 --no-progress --device cpu --seed 0 --no-resume $SMALL "$@"
}
train without --model.no-object-channels &
train with_inputs_only --model.object-channels &   # run at commit 558f6e3 (no attention bias yet)
wait
train with --model.object-channels
# 3. diagnose on 20 held-out layouts (env seeds 1000-1019) per task
for v in without with_inputs_only with; do for task in PickBlueCube PickRedCube; do
  vla policy diagnose --checkpoint $W/$v/final --task $task --seeds 20 --seed 1000 --n-points 512 --image-size 128 \
    --out diag/${v}_$task.json
done; done
# 4. closed loop, 10 held-out layouts per task (env seeds 1000+), receding horizon 1 action per chunk
for v in without with; do
  vla eval --checkpoint $W/$v/final --tasks PickBlueCube PickRedCube --episodes 10 --n-envs 5 --n-points 512 \
    --image-size 128 --execution receding --exec-steps 1 --videos 0 --seed 1000 --workers 1 --device cpu --out $W/eval_$v
done
# 6. second pair, 1,400 steps each (both at commit a8ba504+, side by side; 3.5 min each at a lower load, 6.5-7.5 steps/s)
train2() { name=$1; shift
  vla train policy --dataset $W/demos --out $W/$name --steps 1400 --time-budget-min 8 --batch-size 8 --history 4 \
    --lr 1e-3 --warmup-steps 50 --save-every 100000 --log-every 20 --no-progress --device cpu --seed 0 --no-resume $SMALL "$@"
}
train2 without_long --model.no-object-channels & train2 with_long --model.object-channels & wait
# diagnose as in 3 (variants without_long, with_long); closed loop as in 4 (--episodes 10 --n-envs 5 -> eval/*_success.json)
# and with 30 episodes per task:
for v in without_long with_long; do
  vla eval --checkpoint $W/$v/final --tasks PickBlueCube PickRedCube --episodes 30 --n-envs 10 --n-points 512 \
    --image-size 128 --execution receding --exec-steps 1 --videos 0 --seed 1000 --workers 1 --device cpu --out $W/eval30_$v
done   # -> eval/*_success30.json
# 5. table + summary.json
python benchmarks/results/policy_object_channel/summarize.py
