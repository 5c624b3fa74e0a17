#!/bin/bash
# Copy of the GPU call that trained the object-mask world models (session 2; COLOUR_INPUT=1: the shipped one). Needs, carried in .gpu_wm/:
# whl/ (mujoco, mujoco_core, gymnasium, farama_notifications, pyopengl cp312 wheels) and text_cache.safetensors
# (python world_model/gpu_box/make_text_cache.py). Call: run(command="bash world_model/gpu_box/run.sh", carry=[".gl", ".gpu_wm"]).
# GPU call for wm: generate front-camera triples (14 shards), train the object-mask model, time it.
T0=$(date +%s)
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu_wm/whl/*.whl || exit 3
export PYTHONPATH=/tmp/site MUJOCO_GL=egl VLA_TEXT_CACHE=$PWD/.gpu_wm/text_cache.safetensors PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . > /tmp/pip.log 2>&1 || { tail -20 /tmp/pip.log; exit 4; }
nvidia-smi -L
F=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json; [ -f $F ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$F
mkdir -p /tmp/logs
for k in $(seq 0 ${SHARDS:-13}); do
  OMP_NUM_THREADS=1 timeout ${GEN_S:-200} python3 world_model/gpu_box/gen_shard.py train $k ${EPS:-5} /tmp/gen front > /tmp/logs/gen_$k.log 2>&1 &
done
wait
tail -n 2 /tmp/logs/gen_*.log | grep -v "^$"
ls -la /tmp/gen/s*/front/ || { tail -30 /tmp/logs/gen_0.log; exit 5; }
EL=$(( $(date +%s) - T0 ))
TL=$(( ${BUDGET:-400} - EL ))
[ $TL -lt 90 ] && TL=90
echo "elapsed $EL s; training for $TL s"
python3 world_model/gpu_box/train_front_objects.py $TL /tmp/ck $STEPS 2>&1 | tee /tmp/logs/train.log | grep -v '"step"' ; grep '"step"' /tmp/logs/train.log | tail -3
mkdir -p $OUT/res
VLA_RESULTS_DIR=$OUT/res python3 benchmarks/world_model_speed.py --checkpoint /tmp/ck --name world_model_speed_gpu --repeats 50 2>&1 | tail -8
tar czf $OUT/ck.tgz -C /tmp ck logs
echo "total $(( $(date +%s) - T0 )) s"
