"""Maps the three source folders onto one import namespace: mlopsc.compiler, mlopsc.backends,
mlopsc.runtime. pyproject.toml cannot list subpackages of a remapped folder by glob, so this does."""
from setuptools import find_packages, setup

packages, package_dir = [], {}
for root in ("compiler", "backends", "runtime"):
    package_dir[f"mlopsc.{root}"] = root
    packages += [f"mlopsc.{root}"] + [f"mlopsc.{root}.{sub}" for sub in find_packages(root)]

setup(packages=packages, package_dir=package_dir)
