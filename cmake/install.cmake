# `cmake --install` lays out headers as <prefix>/include/lockprof/<module>/*.h,
# the static libraries, and a CMake package:
#   find_package(lockprof CONFIG REQUIRED)
#   target_link_libraries(app lockprof::lockprof)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(FILES ${PROJECT_SOURCE_DIR}/lockprof.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/lockprof)
foreach(dir agent agent/record agent/tables agent/pprof agent/symbolize agent/metrics agent/pyroscope agent/base primitives primitives/internal server server/handlers server/httplib)
  file(GLOB headers ${PROJECT_SOURCE_DIR}/${dir}/*.h)
  install(FILES ${headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/lockprof/${dir})
endforeach()

install(TARGETS lockprof lockprof_agent lockprof_primitives lockprof_server lockprof_proto
  EXPORT lockprofTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT lockprofTargets NAMESPACE lockprof::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/lockprof)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/lockprofConfig.cmake.in
  ${PROJECT_BINARY_DIR}/lockprofConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/lockprof)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/lockprofConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/lockprofConfig.cmake ${PROJECT_BINARY_DIR}/lockprofConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/lockprof)
