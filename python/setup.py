from setuptools import setup

# The native part is generated from include/apus.h by apus_build.py (cffi, API mode).
setup(cffi_modules=["apus_build.py:ffibuilder"])
