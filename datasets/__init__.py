"""vla_stack.datasets"""
