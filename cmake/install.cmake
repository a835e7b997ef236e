# `cmake --install` lays out headers as <prefix>/include/lockprof/<module>/*.h,
# the libraries (the static archives, or liblockprof.so with
# BUILD_SHARED_LIBS=ON), and a CMake package:
#   find_package(lockprof CONFIG REQUIRED)
#   target_link_libraries(app lockprof::lockprof)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Headers: lockprof.h, the public headers at each module's root, and the
# headers those include (some inline fast paths include agent/record/ and
# primitives/internal/ headers), as Abseil installs its internal/ headers.
# Nothing else: the rest of agent/ and server/ (httplib, libdw, protobuf
# behind them) stays private.
include(${CMAKE_CURRENT_LIST_DIR}/public_headers.cmake)
file(GLOB lockprof_module_headers CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}
  ${PROJECT_SOURCE_DIR}/agent/*.h ${PROJECT_SOURCE_DIR}/primitives/*.h ${PROJECT_SOURCE_DIR}/server/*.h)
lockprof_public_headers(LOCKPROF_INSTALLED_HEADERS lockprof.h ${lockprof_module_headers})
foreach(header IN LISTS LOCKPROF_INSTALLED_HEADERS)
  get_filename_component(dir ${header} DIRECTORY)
  install(FILES ${PROJECT_SOURCE_DIR}/${header} COMPONENT lockprof_headers
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/lockprof/${dir})
endforeach()

if(BUILD_SHARED_LIBS)
  set(LOCKPROF_SHARED ON)
  set(lockprof_installed_targets lockprof)
else()
  set(LOCKPROF_SHARED OFF)
  set(lockprof_installed_targets lockprof lockprof_agent lockprof_primitives lockprof_server
    lockprof_proto)
endif()
install(TARGETS ${lockprof_installed_targets}
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
