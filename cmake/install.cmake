# `cmake --install` lays out headers as <prefix>/include/lockprof/<module>/*.h,
# the libraries (the static archives, or liblockprof.so with
# BUILD_SHARED_LIBS=ON), a CMake package and a pkg-config file:
#   find_package(lockprof CONFIG REQUIRED)
#   target_link_libraries(app lockprof::lockprof)
# or
#   c++ app.cc $(pkg-config --cflags --libs lockprof)
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

# lockprof.pc, relocatable: paths relative to where the file lies, so that
# `cmake --install --prefix` anywhere gives a working file. A static
# install's Libs carry the archives and everything they link (a plain
# `pkg-config --libs` links); a shared one's, liblockprof.so alone.
set(LOCKPROF_PC_PUBLIC_REQUIRES "absl_base absl_status absl_flat_hash_map absl_hash")
if(LOCKPROF_SHARED)
  set(LOCKPROF_PC_REQUIRES "${LOCKPROF_PC_PUBLIC_REQUIRES}")
  set(LOCKPROF_PC_LIBS "-llockprof -pthread")
else()
  set(LOCKPROF_PC_REQUIRES
      "${LOCKPROF_PC_PUBLIC_REQUIRES} absl_statusor absl_synchronization absl_demangle_internal protobuf zlib libdw cpp-httplib openssl")
  list(TRANSFORM CMAKE_DL_LIBS PREPEND "-l" OUTPUT_VARIABLE lockprof_dl_flags)
  string(JOIN " " LOCKPROF_PC_LIBS -Wl,-u,lockprof_autostart -Wl,-u,lockprof_uploader_autostart
    -llockprof_server -llockprof_primitives -llockprof_agent -llockprof_proto ${lockprof_dl_flags}
    -pthread)
endif()
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(LOCKPROF_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(LOCKPROF_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(LOCKPROF_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH lockprof_pc_up /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
  string(REGEX REPLACE "/$" "" lockprof_pc_up "${lockprof_pc_up}")
  set(LOCKPROF_PC_PREFIX "\${pcfiledir}/${lockprof_pc_up}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/lockprof.pc.in ${PROJECT_BINARY_DIR}/lockprof.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/lockprof.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
