"""vla_stack.world_model"""
