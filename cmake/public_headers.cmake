# lockprof_public_headers(<out-var> <header>...)
#
# The headers given (paths relative to the project root) and every lockprof
# header they include, transitively: what `cmake --install` lays out under
# include/lockprof/. Computed from the sources, so that the installed set
# follows the includes as they change: a header no public header reaches is
# not installed, and one that a public header starts to include is.
# (tests/installed_headers_test.sh checks the result on an installed tree.)
#
# Only `#include "lockprof/..."` (or <lockprof/...>) lines are followed: that
# is how sources include each other. The headers read become configure
# dependencies: editing one re-runs CMake, which recomputes the set.
function(lockprof_public_headers out)
  set(todo ${ARGN})
  set(found "")
  set(include_line "^[ \t]*#[ \t]*include[ \t]*[<\"]lockprof/([^>\"]+)[>\"]")
  while(todo)
    list(POP_FRONT todo header)
    if(header IN_LIST found)
      continue()
    endif()
    set(path ${PROJECT_SOURCE_DIR}/${header})
    if(NOT EXISTS ${path})
      message(FATAL_ERROR "lockprof: public header ${header} is missing (included by an installed header)")
    endif()
    list(APPEND found ${header})
    set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${path})
    file(STRINGS ${path} lines REGEX "${include_line}")
    foreach(line IN LISTS lines)
      string(REGEX REPLACE "${include_line}.*" "\\1" included "${line}")
      list(APPEND todo ${included})
    endforeach()
  endwhile()
  list(SORT found)
  set(${out} ${found} PARENT_SCOPE)
endfunction()
