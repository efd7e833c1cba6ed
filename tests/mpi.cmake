# The MPI pool's suite (executor/test_mpi_pool.c): each case is its own CTest entry
# "executor.mpi_pool.<case>", run as `mpirun -np 3 --oversubscribe --enable-recovery` on this
# host: rank 0 runs the case, ranks 1 and 2 serve it (the spawn cases: -np 1, and the pool
# spawns its workers).
if(NOT WEFT_HAVE_MPI)
  return()
endif()
# Not under valgrind: memcheck would run mpirun, not the ranks.
if(WEFT_MEMCHECK)
  return()
endif()
# Under ASan/TSan, Open MPI's own reports (its leaks at exit, races and lock-order reports
# inside its components) are suppressed by naming its modules only (mpi_lsan.supp,
# mpi_tsan.supp): a report in weft's code still fails the case. Its components are kept loaded
# (disable_dlclose) so that their frames have names, and ASan unwinds malloc stacks slowly but
# through Open MPI's frames, which have no frame pointers.
set(sanitizer_env)
if(WEFT_SANITIZE STREQUAL "address")
  set(sanitizer_env OMPI_MCA_mca_base_component_disable_dlclose=1
      PMIX_MCA_mca_base_component_disable_dlclose=1
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0
      LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/mpi_lsan.supp:print_suppressions=0)
elseif(WEFT_SANITIZE STREQUAL "thread")
  set(sanitizer_env OMPI_MCA_mca_base_component_disable_dlclose=1
      PMIX_MCA_mca_base_component_disable_dlclose=1
      TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=${CMAKE_CURRENT_SOURCE_DIR}/mpi_tsan.supp)
endif()
set(env ${WEFT_MPIRUN_ENV} ${sanitizer_env})
set(file ${CMAKE_CURRENT_SOURCE_DIR}/executor/test_mpi_pool.c)
add_executable(test_executor_mpi_pool ${file})
target_link_libraries(test_executor_mpi_pool PRIVATE weft_mpi_static weft_test_support)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${file})
# The case names: the suite's own scan (weft_test_cases, code only) where it exists, else the
# lines that begin with WEFT_TEST(name).
if(COMMAND weft_test_cases)
  weft_test_cases(${file} names)
else()
  file(STRINGS ${file} lines REGEX "^ *WEFT_TEST\\([a-z0-9_]+\\)")
  set(names)
  foreach(line ${lines})
    string(REGEX REPLACE ".*WEFT_TEST\\(([a-z0-9_]+)\\).*" "\\1" name "${line}")
    list(APPEND names ${name})
  endforeach()
endif()
# The cases that finalize MPI register with WEFT_TEST_FINALIZING (no leak guard: see the file).
file(STRINGS ${file} lines REGEX "^ +WEFT_TEST_FINALIZING\\([a-z0-9_]+\\),")
foreach(line ${lines})
  string(REGEX REPLACE ".*WEFT_TEST_FINALIZING\\(([a-z0-9_]+)\\).*" "\\1" name "${line}")
  list(APPEND names ${name})
endforeach()
foreach(name ${names})
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
                       ENVIRONMENT "${env}")
endforeach()
# The verdict is rank 0's cmocka line and the absence of any sanitizer report from any rank,
# not mpirun's exit code: with --enable-recovery mpirun exits 0 whatever its ranks returned
# (and a killed rank would make it fail otherwise).
foreach(name ${names})
  set_tests_properties(executor.mpi_pool.${name} PROPERTIES
                       PASS_REGULAR_EXPRESSION "\\[  PASSED  \\] 1 test"
                       FAIL_REGULAR_EXPRESSION
                       "\\[  (FAILED|ERROR) +\\]|ERROR: [A-Za-z]+Sanitizer|WARNING: ThreadSanitizer|runtime error:")
endforeach()

# Two files registering a task of the same name: the program must stop at load (stderr names
# the task, then abort: exit status 134; sh may say "Aborted" first), before main. It makes no MPI call: no mpirun.
add_executable(test_executor_mpi_dup_task executor/mpi_dup_task_a.c executor/mpi_dup_task_b.c)
target_link_libraries(test_executor_mpi_dup_task PRIVATE weft_mpi_static)
add_test(NAME executor.mpi_pool.mpi_pool_duplicate_task_name_aborts_at_load
         COMMAND sh -c "\"$1\" 2>&1; echo \"exit status $?\"" sh
                 $<TARGET_FILE:test_executor_mpi_dup_task>)
set_tests_properties(executor.mpi_pool.mpi_pool_duplicate_task_name_aborts_at_load PROPERTIES
                     TIMEOUT ${WEFT_TEST_TIMEOUT} ENVIRONMENT "${sanitizer_env}"
                     PASS_REGULAR_EXPRESSION
                     "weft: WEFT_MPI_TASK\\(work\\): another function is registered under this name[^\n]*\n(Aborted[^\n]*\n)?exit status 134"
                     FAIL_REGULAR_EXPRESSION "main ran|ERROR: [A-Za-z]+Sanitizer|WARNING: ThreadSanitizer")
