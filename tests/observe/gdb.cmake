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

# Not under valgrind (memcheck would have to run gdb, which runs the program itself), and not
# in the cross builds (qemu-user runs the program; this gdb debugs the machine's own).
if(WEFT_MEMCHECK OR CMAKE_CROSSCOMPILING)
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
