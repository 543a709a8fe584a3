"""Build pyvideo: CMake + Ninja compile libvideo.so and the pybind11 module pyvideo._C into the package directory.

`pip install .` builds a wheel whose pyvideo/ holds libvideo.so next to _C (found through RPATH $ORIGIN);
`pip install -e .` builds in place, reusing ./build so repeated builds are incremental. torch is not needed to build.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def run(self) -> None:
        # setuptools clears `inplace` before building (and copies the results back afterwards); remember whether
        # this is an in-place or editable build, which compiles into the source tree through ./build.
        self._in_source = bool(self.inplace or getattr(self, "editable_mode", False))
        super().run()

    def build_extension(self, ext: Extension) -> None:
        import pybind11

        ext_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        if self._in_source:
            package_dir, build_dir = ROOT / "pyvideo", ROOT / "build"
        else:
            package_dir, build_dir = ext_dir, Path(self.build_temp).resolve() / "cmake"
        build_dir.mkdir(parents=True, exist_ok=True)
        configure = [
            "cmake", "-S", str(ROOT), "-B", str(build_dir), "-G", "Ninja",
            f"-DCMAKE_BUILD_TYPE={os.environ.get('PYVIDEO_BUILD_TYPE', 'Release')}",
            f"-DPYVIDEO_OUTPUT_DIR={package_dir}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DPython_EXECUTABLE={sys.executable}",
            "-DPYVIDEO_BUILD_TESTS=ON",
        ]
        subprocess.run(configure, check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "_C", "video"], check=True)
        if package_dir != ext_dir:  # setuptools copies from the regular build location back into the source tree
            ext_dir.mkdir(parents=True, exist_ok=True)
            for built in list(package_dir.glob("_C*.so")) + [package_dir / "libvideo.so"]:
                shutil.copy2(built, ext_dir / built.name)

setup(
    name="pyvideo",
    version="0.1.0",
    description="Video understanding for PyTorch with a native C++ core; PyTorchVideo-compatible API",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8") if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["pyvideo", "pyvideo.*"]),
    package_data={"pyvideo": ["**/*.json", "**/*.txt", "**/*.csv"]},
    include_package_data=True,
    ext_modules=[CMakeExtension("pyvideo._C")],
    cmdclass={"build_ext": CMakeBuild},
    install_requires=["torch>=2.4", "numpy"],
    entry_points={"console_scripts": ["pyvideo = pyvideo.cli:main"]},
    zip_safe=False,
)
