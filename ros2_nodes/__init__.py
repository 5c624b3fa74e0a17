"""vla_stack.ros2_nodes"""
