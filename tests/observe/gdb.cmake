# tools/weft-gdb.py (info weft, weft bt) under `gdb -batch` on tests/observe/gdb/scene.c:
# each case of tests/observe/test_gdb.sh is its own CTest entry "observe.gdb.<case>".

# The switch frames `weft bt` reads are those src/coro/arch/*.S write (both architectures, read
# from the .S files; no gdb needed).
if(Python3_Interpreter_FOUND)
  add_test(NAME observe.gdb.switch_layouts_match_the_assembly
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/observe/check_gdb_layout.py
                   ${CMAKE_SOURCE_DIR}/tools/weft-gdb.py ${CMAKE_SOURCE_DIR}/src/coro/arch)
  set_tests_properties(observe.gdb.switch_layouts_match_the_assembly PROPERTIES TIMEOUT 60)
endif()

# The aarch64 cross build (preset aarch64, `make test-aarch64`): the scene runs under
# qemu-user with its gdb server on (qemu-aarch64 -g <socket>) and gdb-multiarch debugs it
# through that: `weft bt` loads the aarch64 switch frame's registers for real. The cases that
# need a native process (a core file by gcore, the install's auto-load) are not run there, nor
# anything with the ucontext switch (weft bt refuses it). Without gdb-multiarch (the Makefile's
# cross list installs it) each case says so and is skipped.
if(CMAKE_CROSSCOMPILING)
  if(NOT CMAKE_SYSTEM_PROCESSOR STREQUAL "aarch64" OR WEFT_CORO_UCONTEXT)
    return()
  endif()
  find_program(WEFT_GDB_MULTIARCH gdb-multiarch)
  find_program(WEFT_QEMU_AARCH64 qemu-aarch64)
  if(NOT WEFT_GDB_MULTIARCH)
    set(WEFT_GDB_MULTIARCH gdb-multiarch) # not found: test_gdb.sh skips with a message
  endif()
  add_executable(observe_gdb_scene ${CMAKE_CURRENT_SOURCE_DIR}/observe/gdb/scene.c)
  target_link_libraries(observe_gdb_scene PRIVATE weft)
  foreach(name info_names_the_tasks info_ids_are_the_dumps bt_shows_the_blocking_caller
               bt_restores_the_thread bt_refuses_what_it_cannot_show)
    add_test(NAME observe.gdb.${name}.aarch64
             COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/observe/test_gdb.sh ${name}
                     ${WEFT_GDB_MULTIARCH} $<TARGET_FILE:observe_gdb_scene>
                     ${CMAKE_SOURCE_DIR}/tools/weft-gdb.py)
    set_tests_properties(observe.gdb.${name}.aarch64 PROPERTIES
                         TIMEOUT 60 LABELS gdb SKIP_RETURN_CODE 77
                         ENVIRONMENT "WEFT_GDB_QEMU=${WEFT_QEMU_AARCH64} -L /")
  endforeach()
  return()
endif()
# Not under valgrind (memcheck would have to run gdb, which runs the program itself).
if(WEFT_MEMCHECK)
  return()
endif()
find_program(WEFT_GDB gdb)
if(NOT WEFT_GDB)
  message(STATUS "gdb not found: the observe.gdb cases are not built (make deps installs it)")
  return()
endif()
# Linked with libweft.so, as the auto-load case needs; the others load the script by hand.
add_executable(observe_gdb_scene ${CMAKE_CURRENT_SOURCE_DIR}/observe/gdb/scene.c)
target_link_libraries(observe_gdb_scene PRIVATE weft)
set(script ${CMAKE_CURRENT_SOURCE_DIR}/observe/test_gdb.sh)
foreach(name info_names_the_tasks info_ids_are_the_dumps bt_shows_the_blocking_caller bt_restores_the_thread
             bt_refuses_what_it_cannot_show info_reads_a_core_file
             auto_loads_from_the_install)
  add_test(NAME observe.gdb.${name}
           COMMAND sh ${script} ${name} ${WEFT_GDB} $<TARGET_FILE:observe_gdb_scene>
                   ${CMAKE_SOURCE_DIR}/tools/weft-gdb.py ${CMAKE_BINARY_DIR} ${PROJECT_VERSION})
  set_tests_properties(observe.gdb.${name} PROPERTIES TIMEOUT 60 LABELS gdb)
endforeach()
# Under ASan and TSan a core file of the scene holds the sanitizer's shadow memory: gcore needs
# longer than the case's time (on this 2-core machine its 50 s limit cut it in both: the core
# was unreadable). The live cases run.
if(NOT WEFT_SANITIZE STREQUAL "")
  set_tests_properties(observe.gdb.info_reads_a_core_file PROPERTIES DISABLED TRUE
                       LABELS "gdb;sanitizer-skip")
endif()
