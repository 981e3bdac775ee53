# SPDX-License-Identifier: MIT
"""setuptools glue for `pip install .`: builds the CMake target mdlm_python (python/CMakeLists.txt)
with the interpreter that runs pip, and packages python/mdlm with the extension."""
import os
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        out_dir = os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext.name)))
        build = os.path.join(ROOT, "build", "pip")
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
        cfg = ["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release", f"-DPython_EXECUTABLE={sys.executable}",
               "-DMDLM_BUILD_PYTHON=ON", "-DMDLM_BUILD_TESTS=OFF", "-DMDLM_BUILD_BENCHMARKS=OFF",
               "-DMDLM_BUILD_TOOLS=OFF", "-DMDLM_BUILD_BACKENDS=OFF", "-DMDLM_BUILD_TOKENIZER=OFF",
               "-DMDLM_BUILD_CUDA=OFF", "-DMDLM_INSTALL=OFF"]
        if os.path.exists(os.path.join(ROOT, "build.ninja")) or subprocess.call(["ninja", "--version"], stdout=subprocess.DEVNULL) == 0:
            cfg += ["-G", "Ninja"]
        subprocess.check_call(cfg)
        subprocess.check_call(["cmake", "--build", build, "--target", "mdlm_python", "-j", jobs])
        pkg = os.path.join(build, "python", "mdlm")
        os.makedirs(os.path.join(out_dir), exist_ok=True)
        for f in os.listdir(pkg):
            if f.startswith("_mdlm") and f.endswith(".so"):
                self.copy_file(os.path.join(pkg, f), self.get_ext_fullpath(ext.name))


setup(
    packages=["mdlm"],
    package_dir={"": "python"},
    package_data={"mdlm": ["*.pyi", "py.typed"]},
    ext_modules=[CMakeExtension("mdlm._mdlm")],
    cmdclass={"build_ext": CMakeBuild},
)
