# The Debian packages, built by CPack's DEB generator (`make package`, which configures with
# CMAKE_INSTALL_PREFIX=/usr so that the library lands in Debian's multiarch libdir):
#   libweft<major>  the shared library libweft.so.<major> (SONAME: the project's major version,
#                   docs/API.md "ABI and SONAME"; Debian names the package after it)
#   libweft-dev     headers, the libweft.so link, libweft.a, weft.pc, the CMake package and,
#                   when WEFT_MAN_DIR names `make docs`' build/docs/man/man3, the man pages
# The MPI library (cmake/mpi.cmake) is not packaged: it installs in no component here.
set(WEFT_MAN_DIR "" CACHE PATH "Section-3 man pages to install with the dev component (make docs)")
if(WEFT_MAN_DIR)
  install(DIRECTORY ${WEFT_MAN_DIR}/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man3 COMPONENT dev
          FILES_MATCHING PATTERN "*.3")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME weft)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "weft maintainers <weft@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Python's concurrency toolkit for C: threads, locks, queues, pools, coroutines")
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
set(CPACK_COMPONENTS_ALL lib dev)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_LIB_PACKAGE_NAME libweft${PROJECT_VERSION_MAJOR})
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_LIB_PACKAGE_SHLIBDEPS ON) # libc6, liburing2 from the library's NEEDED
set(CPACK_DEBIAN_LIB_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_LIB_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_COMPONENT_LIB_DESCRIPTION "the shared library
 Threads, locks, semaphores, events, conditions, barriers, timers, queues, thread and
 process pools with futures, and gevent-style coroutines over select, poll, epoll and
 io_uring, for C programs.")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libweft-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# The static library and weft.pc's Requires.private need liburing's development files.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libweft${PROJECT_VERSION_MAJOR} (= ${PROJECT_VERSION}-1)")
if(LIBURING_FOUND)
  string(APPEND CPACK_DEBIAN_DEV_PACKAGE_DEPENDS ", liburing-dev")
endif()
set(CPACK_COMPONENT_DEV_DESCRIPTION "development files
 Headers, the static library, pkg-config's weft.pc, the CMake package (find_package(weft))
 and section-3 man pages.")
include(CPack)
