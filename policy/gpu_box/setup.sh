# Sourced by the GPU-box scripts (device README): EGL loaders, the carried cp312 wheels (.gpu/whl), the text
# cache, this package installed editable. Prepare .gpu/ here as finetune.sh's header says.
for f in .gpu/gl/*.deb; do dpkg -x $f /; done; ldconfig
python3 -m pip install -q --upgrade --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl || exit 3
mkdir -p /tmp/stub/av && echo '# stub: demos and DAgger write no video' > /tmp/stub/av/__init__.py
export PYTHONPATH=/tmp/site:/tmp/stub MUJOCO_GL=egl VLA_TEXT_CACHE=$PWD/.gpu/text_cache.safetensors PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
[ -f .gpu/rev ] && export VLA_GIT_REVISION=$(cat .gpu/rev)
F=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json; [ -f $F ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$F
python3 -m pip install -q --no-deps --no-build-isolation -e . > /tmp/pip.log 2>&1 || { tail -20 /tmp/pip.log; exit 4; }
nvidia-smi -L
