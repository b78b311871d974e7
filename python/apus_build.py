"""Builds `apus._native`, the native part of the `apus` Python package, from include/apus.h with
cffi in API mode: the declarations are read from the header itself (between its CDEF-BEGIN and
CDEF-END markers), so Python and C cannot drift apart.

Three ways in:
- `pip install ./python`: setuptools calls `ffibuilder` (see setup.py);
- `apus run`, for its Python nodes: `python3 apus_build.py ensure CACHE --cflags ... --libs ...`
  builds the package once into CACHE/<python tag>/ (again only when the header, the library or
  these sources change) and prints that folder, which goes on the nodes' PYTHONPATH;
- by hand: `python3 apus_build.py ensure /tmp/apus-python`.

The compiler and linker flags come from --cflags/--libs, else $APUS_CFLAGS/$APUS_LIBS, else
`apus config` (the apus named by $APUS, or on PATH).
"""

import argparse
import fcntl
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def apus_flags(cflags=None, libs=None):
    """The compiler and linker flags for apus.h and libapus, as lists."""
    cflags = cflags if cflags is not None else os.environ.get("APUS_CFLAGS")
    libs = libs if libs is not None else os.environ.get("APUS_LIBS")
    if cflags is None or libs is None:
        apus = os.environ.get("APUS", "apus")
        try:
            cflags = cflags or subprocess.run([apus, "config", "--cflags"], check=True, capture_output=True, text=True).stdout
            libs = libs or subprocess.run([apus, "config", "--libs"], check=True, capture_output=True, text=True).stdout
        except (OSError, subprocess.CalledProcessError) as error:
            sys.exit(f"apus_build.py: cannot ask `{apus} config` for the C API's flags ({error}); "
                     "build apus first (`swift build`), put it on PATH or set $APUS, or set $APUS_CFLAGS and $APUS_LIBS")
    return shlex.split(cflags), shlex.split(libs)


def header_path(cflags):
    for flag in cflags:
        if flag.startswith("-I") and os.path.exists(os.path.join(flag[2:], "apus.h")):
            return os.path.join(flag[2:], "apus.h")
    sys.exit(f"apus_build.py: no apus.h in the include folders of {cflags}")


def version(header):
    """APUS_VERSION as the header defines it: the one place Apus's version is written."""
    with open(header, encoding="utf-8") as file:
        match = re.search(r'#define APUS_VERSION "([^"]+)"', file.read())
    if match is None:
        sys.exit(f"apus_build.py: {header} defines no APUS_VERSION")
    return match.group(1)


def declarations(header):
    """The header's declarations for cffi: the part between its CDEF markers, without comments."""
    with open(header, encoding="utf-8") as file:
        text = file.read()
    match = re.search(r"/\* CDEF-BEGIN.*?\*/(.*)/\* CDEF-END \*/", text, re.S)
    if match is None:
        sys.exit(f"apus_build.py: {header} has no CDEF-BEGIN ... CDEF-END markers")
    return re.sub(r"/\*.*?\*/", "", match.group(1), flags=re.S)


def make_builder(cflags, libs):
    import cffi  # only when building: checking that a build is current needs no cffi

    builder = cffi.FFI()
    builder.cdef(declarations(header_path(cflags)))
    builder.set_source(
        "apus._native",
        "#include <apus.h>",
        extra_compile_args=[flag for flag in cflags if not flag.startswith("-I")],
        include_dirs=[flag[2:] for flag in cflags if flag.startswith("-I")],
        extra_link_args=libs,
    )
    return builder


def ensure(cache, cflags, libs):
    """Builds the package into cache/<tag> unless what is there is current; returns that folder."""
    cflags, libs = apus_flags(cflags, libs)
    target = os.path.join(os.path.abspath(cache), sys.implementation.cache_tag)
    os.makedirs(target, exist_ok=True)
    # What the build depends on: the header, the library file, the flags and the Python sources.
    stamp = hashlib.sha256()
    with open(header_path(cflags), "rb") as file:
        stamp.update(file.read())
    for flag in libs:
        if os.path.isfile(flag):
            stamp.update(f"{flag}:{os.stat(flag).st_mtime_ns}".encode())
    stamp.update(" ".join(cflags + libs).encode())
    sources = sorted(name for name in os.listdir(os.path.join(HERE, "apus")) if name.endswith(".py"))
    for name in sources + ["../apus_build.py"]:
        with open(os.path.join(HERE, "apus", name), "rb") as file:
            stamp.update(file.read())
    digest = stamp.hexdigest()
    with open(os.path.join(target, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time, across concurrent runs
        stamp_path = os.path.join(target, ".stamp")
        if os.path.exists(stamp_path) and open(stamp_path).read() == digest:
            return target
        package = os.path.join(target, "apus")
        shutil.rmtree(package, ignore_errors=True)
        os.makedirs(package)
        for name in sources:
            shutil.copy2(os.path.join(HERE, "apus", name), package)
        make_builder(cflags, libs).compile(tmpdir=os.path.join(target, "build"), verbose=False)
        built = os.path.join(target, "build", "apus")
        for name in os.listdir(built):
            if name.startswith("_native") and name.endswith(".so"):
                shutil.move(os.path.join(built, name), os.path.join(package, name))
        shutil.rmtree(os.path.join(target, "build"), ignore_errors=True)
        with open(stamp_path, "w") as file:
            file.write(digest)
    return target


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Build the apus Python package from include/apus.h.")
    sub = parser.add_subparsers(dest="command", required=True)
    command = sub.add_parser("ensure", help="build into CACHE/<python tag> unless current; print that folder")
    command.add_argument("cache")
    command.add_argument("--cflags")
    command.add_argument("--libs")
    arguments = parser.parse_args()
    print(ensure(arguments.cache, arguments.cflags, arguments.libs))
else:
    # setuptools' cffi_modules entry point: "apus_build.py:ffibuilder".
    ffibuilder = make_builder(*apus_flags())
