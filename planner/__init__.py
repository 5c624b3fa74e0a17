"""vla_stack.planner"""
