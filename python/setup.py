import os
import sys

from setuptools import setup

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apus_build  # noqa: E402  (next to this file)

# The native part is generated from include/apus.h by apus_build.py (cffi, API mode), and the
# package's version is the header's APUS_VERSION.
setup(version=apus_build.version(apus_build.header_path(apus_build.apus_flags()[0])),
      cffi_modules=["apus_build.py:ffibuilder"])
