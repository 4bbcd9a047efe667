# install.cmake - what `cmake --install` (and `make install PREFIX=...`)
# puts where, included by the top CMakeLists.txt:
#   bin/aemp, lib/libaemp.so* and libaemp.a, include/aemp*.h,
#   lib/pkgconfig/libaemp.pc, lib/cmake/libaemp/ (find_package(libaemp CONFIG)),
#   lib/aemp/modules/ (the module directory), share/man/man1/aemp.1,
#   share/man/man3/libaemp.3, share/doc/libaemp/ (the documents, the example
#   programs, their sources and a CMakeLists.txt that builds them).
# Every destination is relative to the prefix; the one absolute path is the
# module directory compiled into the library (AEMP_MODULE_DIR), so an install
# into another prefix than the configured one is refused (see below).

include(CMakePackageConfigHelpers)

set(AEMP_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/libaemp)
set(AEMP_EXAMPLES_DIR ${CMAKE_INSTALL_DOCDIR}/examples)

# `cmake --install --prefix P` with P not the configured prefix would put
# the files under P while the library and aemp look for modules under the
# configured one: refuse, saying how to do it.
install(CODE "
  get_filename_component(_aemp_want \"\${CMAKE_INSTALL_PREFIX}\" ABSOLUTE)
  get_filename_component(_aemp_have \"${CMAKE_INSTALL_PREFIX}\" ABSOLUTE)
  if(NOT _aemp_want STREQUAL _aemp_have)
    message(FATAL_ERROR \"libaemp: this build was configured for the prefix \${_aemp_have} \"
      \"(the module directory \${_aemp_have}/${AEMP_MODULE_RELDIR} is compiled into the library and aemp), \"
      \"so it cannot be installed into \${_aemp_want}. Reconfigure first: \"
      \"cmake -S ${CMAKE_SOURCE_DIR} -B ${CMAKE_BINARY_DIR} -DCMAKE_INSTALL_PREFIX=\${_aemp_want} && \"
      \"cmake --build ${CMAKE_BINARY_DIR} && cmake --install ${CMAKE_BINARY_DIR} \"
      \"(make install PREFIX=\${_aemp_want} does all three). DESTDIR=... stages an install without changing the prefix.\")
  endif()
")

install(TARGETS aemp EXPORT libaemp-targets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS aemp_static ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS aemp_tool DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES include/aemp.h include/aemp_msg.h include/aemp_json.h include/aemp_module.h
  include/aemp_fiber.h include/aemp_dataconn.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY DESTINATION ${AEMP_MODULE_RELDIR})

# pkg-config: the .pc file finds the prefix relative to itself
file(RELATIVE_PATH AEMP_PC_TO_PREFIX /x/${CMAKE_INSTALL_LIBDIR}/pkgconfig /x)
configure_file(scripts/libaemp.pc.in ${CMAKE_BINARY_DIR}/libaemp.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/libaemp.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# CMake config package: libaemp::aemp, aemp_add_module, libaemp_MODULE_DIR
file(RELATIVE_PATH AEMP_CONFIG_TO_PREFIX /x/${AEMP_CMAKE_DIR} /x)
configure_file(cmake/libaemp-config.cmake.in ${CMAKE_BINARY_DIR}/libaemp-config.cmake @ONLY)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/libaemp-config-version.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(EXPORT libaemp-targets NAMESPACE libaemp:: DESTINATION ${AEMP_CMAKE_DIR})
install(FILES ${CMAKE_BINARY_DIR}/libaemp-config.cmake ${CMAKE_BINARY_DIR}/libaemp-config-version.cmake
  cmake/aemp_module.cmake DESTINATION ${AEMP_CMAKE_DIR})

# man pages (the version filled in)
foreach(page aemp.1 libaemp.3)
  string(REGEX REPLACE ".*\\." "" section ${page})
  configure_file(man/${page}.in ${CMAKE_BINARY_DIR}/man/${page} @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/man/${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()

# documents, examples and their sources
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")
install(FILES examples/ping_pong.c examples/chat_client.c examples/chat_server.c examples/ioserver.c
  DESTINATION ${AEMP_EXAMPLES_DIR})
install(FILES cmake/examples.cmake DESTINATION ${AEMP_EXAMPLES_DIR} RENAME CMakeLists.txt)
install(TARGETS ping_pong chat_client ioserver DESTINATION ${AEMP_EXAMPLES_DIR}/bin)
install(TARGETS chat_server LIBRARY DESTINATION ${AEMP_EXAMPLES_DIR}/bin)
