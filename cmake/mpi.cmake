# The MPI pool (include/weft/mpi.h, src/executor/mpi_pool.c): the library weft_mpi
# (libweft_mpi.so), built when an MPI for C is found (Debian: libopenmpi-dev, openmpi-bin;
# `make deps` installs them). It links libweft and MPI; libweft itself never needs MPI.
find_package(MPI COMPONENTS C QUIET)
if(MPI_C_FOUND AND MPIEXEC_EXECUTABLE)
  set(WEFT_HAVE_MPI TRUE)
  # Shared on libweft.so; static on libweft.a (the test programs', which link weft statically).
  add_library(weft_mpi SHARED src/executor/mpi_pool.c)
  add_library(weft_mpi_static STATIC src/executor/mpi_pool.c)
  # MPI is the shared library's own (weft/mpi.h needs no <mpi.h>): a consumer of the installed
  # package links weft::weft_mpi without finding MPI itself.
  target_link_libraries(weft_mpi PUBLIC weft PRIVATE MPI::MPI_C)
  target_link_libraries(weft_mpi_static PUBLIC weft_static MPI::MPI_C)
  foreach(t weft_mpi weft_mpi_static)
    target_compile_definitions(${t} PRIVATE WEFT_BUILDING)
    set_target_properties(${t} PROPERTIES C_VISIBILITY_PRESET hidden POSITION_INDEPENDENT_CODE ON)
  endforeach()
  set_target_properties(weft_mpi PROPERTIES VERSION ${PROJECT_VERSION}
                        SOVERSION ${PROJECT_VERSION_MAJOR} EXPORT_NAME weft_mpi
                        LINK_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/cmake/weft_mpi.map)
  target_link_options(weft_mpi PRIVATE
                      -Wl,--version-script=${CMAKE_CURRENT_SOURCE_DIR}/cmake/weft_mpi.map)
  add_library(weft::weft_mpi ALIAS weft_mpi)
  # Installed beside libweft with a pkg-config file (`pkg-config --libs weft-mpi`) and in weft's
  # CMake package (weft::weft_mpi, from weft_mpiTargets.cmake, which weftConfig.cmake includes
  # when it is there): weft/mpi.h does not include <mpi.h>, so a program needs no MPI flags of
  # its own.
  install(TARGETS weft_mpi EXPORT weft_mpiTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT weft_mpiTargets NAMESPACE weft::
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/weft)
  file(RELATIVE_PATH WEFT_MPI_PC_RELPREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig
       ${CMAKE_INSTALL_PREFIX})
  configure_file(cmake/weft-mpi.pc.in ${CMAKE_CURRENT_BINARY_DIR}/weft-mpi.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/weft-mpi.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
  # How the tests, the example and the benchmark start ranks: mpirun on this host, with more
  # ranks than cores, as root too (containers, CI), and --enable-recovery so that a rank that
  # dies does not make mpirun kill the others (the pool reports it instead: WEFT_EBROKEN).
  set(WEFT_MPIRUN ${MPIEXEC_EXECUTABLE} --oversubscribe --enable-recovery)
  set(WEFT_MPIRUN_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
      OMPI_MCA_btl=self,vader,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo)
else()
  set(WEFT_HAVE_MPI FALSE)
  message(STATUS "weft: no MPI found; the MPI pool (weft_mpi) is not built")
endif()
