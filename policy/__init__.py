"""vla_stack.policy"""
