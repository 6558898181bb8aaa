"""ament_python package: metadata lives in setup.cfg; data files are listed here for colcon."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "pose3d_ros"

setup(
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")
         + glob("config/*.xml")),
        (f"share/{PACKAGE}/lifters", glob("lifters/*.onnx") + glob("lifters/*.md")),
        (f"share/{PACKAGE}/estimators", glob("estimators/*.onnx") + glob("estimators/*.md")),
        (f"share/{PACKAGE}/refiners", glob("refiners/*.onnx") + glob("refiners/*.md")),
    ],
)
