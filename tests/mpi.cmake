# The MPI pool's suite (executor/test_mpi_pool.c): each case is its own CTest entry
# "executor.mpi_pool.<case>", run as `mpirun -np 3 --oversubscribe --enable-recovery` on this
# host: rank 0 runs the case, ranks 1 and 2 serve it (the spawn cases: -np 1, and the pool
# spawns its workers).
if(NOT WEFT_HAVE_MPI)
  return()
endif()
# Not under valgrind: memcheck would run mpirun, not the ranks. Not under ASan/TSan: tried
# under ASan, every case passes but each rank exits with LeakSanitizer reports of Open MPI's
# MCA plugins, which MPI_Finalize has dlclose()d, so their frames are "<unknown module>": a
# suppression (LSAN_OPTIONS=suppressions=) cannot name them without naming every unknown frame.
if(WEFT_MEMCHECK OR NOT WEFT_SANITIZE STREQUAL "")
  return()
endif()
set(file ${CMAKE_CURRENT_SOURCE_DIR}/executor/test_mpi_pool.c)
add_executable(test_executor_mpi_pool ${file})
target_link_libraries(test_executor_mpi_pool PRIVATE weft_mpi_static weft_test_support)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${file})
file(STRINGS ${file} lines REGEX "^ *WEFT_TEST\\([a-z0-9_]+\\)")
foreach(line ${lines})
  string(REGEX REPLACE ".*WEFT_TEST\\(([a-z0-9_]+)\\).*" "\\1" name "${line}")
  set(test executor.mpi_pool.${name})
  set(np 3)
  if(name MATCHES "spawn")
    set(np 1) # the MPI_Comm_spawn model: the pool starts its workers itself
  endif()
  add_test(NAME ${test} COMMAND ${WEFT_MPIRUN} ${MPIEXEC_NUMPROC_FLAG} ${np}
           $<TARGET_FILE:test_executor_mpi_pool> ${name})
  # mpirun runs ranks as processes of its own, so the cases that start many at once would
  # compete for the 2 cores: they run alone.
  set_tests_properties(${test} PROPERTIES TIMEOUT ${WEFT_TEST_TIMEOUT} RUN_SERIAL TRUE
                       ENVIRONMENT "${WEFT_MPIRUN_ENV}")
endforeach()
# The verdict is rank 0's cmocka line, not mpirun's exit code: with --enable-recovery mpirun
# exits 0 whatever its ranks returned (and a killed rank would make it fail otherwise).
foreach(line ${lines})
  string(REGEX REPLACE ".*WEFT_TEST\\(([a-z0-9_]+)\\).*" "\\1" name "${line}")
  set_tests_properties(executor.mpi_pool.${name} PROPERTIES
                       PASS_REGULAR_EXPRESSION "\\[  PASSED  \\] 1 test"
                       FAIL_REGULAR_EXPRESSION "\\[  (FAILED|ERROR) +\\]")
endforeach()
