# Sourced by the operator benchmarks (bench/operators, bench/wasm, bench/numba), from the
# repository's root: builds apus, the operator runtime and the C API in release, and sets
#   bin    the release build folder          work   a scratch folder, removed on exit
#   flags  C flags for apus.h (-O2, -Werror)  libs   the linker flags for libapus
swift build -c release --product apus >/dev/null
swift build -c release --product apus-operator-runtime >/dev/null
swift build -c release --product ApusCAPI >/dev/null
bin="$(swift build -c release --show-bin-path)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
flags="-std=gnu99 -O2 -Wall -Werror $("$bin/apus" config --cflags)"
libs="$("$bin/apus" config --libs)"
