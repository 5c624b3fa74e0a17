"""Test-session setup shared by every test file."""

import os

# Without a GPU, Triton kernels can only run in the interpreter, and `triton.jit` reads this
# variable when a kernel module is imported: set it before any test imports one, whatever the
# order pytest-xdist hands tests to a worker. (On a CUDA machine the kernels run compiled.)
if not os.path.exists("/dev/nvidia0") and "TRITON_INTERPRET" not in os.environ:
    os.environ["TRITON_INTERPRET"] = "1"
# pytest-xdist runs one worker per core: one math thread each avoids oversubscribing them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
