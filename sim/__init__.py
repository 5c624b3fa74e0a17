"""vla_stack.sim"""
