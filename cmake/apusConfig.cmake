# find_package(apus) for a source tree of Apus: cmake -Dapus_DIR=<apus>/cmake, after `swift build
# --product ApusCAPI` (or `-c release`). Gives the imported target apus::apus: apus.h, apus.hpp
# and libapus (of the release and debug builds, the newer). An installed prefix has
# its own apusConfig.cmake, written by scripts/install under lib/cmake/apus.
get_filename_component(_apus_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(_apus_library "")
foreach(_apus_configuration release debug)
    set(_apus_candidate "${_apus_root}/.build/${_apus_configuration}/libApusCAPI.so")
    if(EXISTS "${_apus_candidate}" AND (NOT _apus_library OR "${_apus_candidate}" IS_NEWER_THAN "${_apus_library}"))
        set(_apus_library "${_apus_candidate}")
    endif()
endforeach()
if(NOT _apus_library)
    set(apus_FOUND FALSE)
    set(apus_NOT_FOUND_MESSAGE
        "libapus is not built in ${_apus_root}: run `swift build --package-path ${_apus_root} --product ApusCAPI`")
    return()
endif()
if(NOT TARGET apus::apus)
    add_library(apus::apus SHARED IMPORTED)
    set_target_properties(apus::apus PROPERTIES
        IMPORTED_LOCATION "${_apus_library}"
        IMPORTED_NO_SONAME TRUE
        INTERFACE_INCLUDE_DIRECTORIES "${_apus_root}/include")
endif()
file(STRINGS "${_apus_root}/include/apus.h" _apus_version_line REGEX "^#define APUS_VERSION ")
string(REGEX REPLACE "^#define APUS_VERSION \"([^\"]*)\".*" "\\1" apus_VERSION "${_apus_version_line}")
set(apus_FOUND TRUE)
