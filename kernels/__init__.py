"""vla_stack.kernels"""
