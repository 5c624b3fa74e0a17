"""Only for colcon (ROS 2 `ament_python` builds need a setup.py); metadata lives in
pyproject.toml and the ROS data files (package marker, package.xml, launch) in setup.cfg."""

from setuptools import setup

setup()
