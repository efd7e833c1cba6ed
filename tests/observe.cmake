# WEFT_TRACE (weft/trace.h) on a whole program: an example run with it set leaves a trace at
# its exit that check_trace.py parses and checks (nesting, pairs, coroutine runs, parks on the
# Queue, wake arrows); set to a path that cannot be written, the example runs untraced and says
# so in one line on stderr.
if(Python3_Interpreter_FOUND AND WEFT_BUILD_EXAMPLES)
  set(check_trace ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/observe/check_trace.py)
  add_test(NAME observe.trace.env_traces_an_example_until_its_exit
           COMMAND ${check_trace} --run $<TARGET_FILE:coroutine_queue>
                   ${CMAKE_CURRENT_BINARY_DIR}/observe_env_trace.json --min-runs 4
                   --park Queue --flows)
  add_test(NAME observe.trace.env_unwritable_path_prints_one_line
           COMMAND ${check_trace} --unwritable $<TARGET_FILE:coroutine_queue>)
  set_tests_properties(observe.trace.env_traces_an_example_until_its_exit
                       observe.trace.env_unwritable_path_prints_one_line PROPERTIES TIMEOUT 60)
endif()

# weft-lab trace: one model's server traced while the lab drives it (the file make demo leaves).
if(Python3_Interpreter_FOUND AND TARGET weft-lab)
  add_test(NAME observe.trace.lab_records_one_models_run
           COMMAND sh -c "$<TARGET_FILE:weft-lab> trace coroutines ${CMAKE_CURRENT_BINARY_DIR}/observe_lab_trace.json --conns 4 --seconds 0.3 && ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/observe/check_trace.py ${CMAKE_CURRENT_BINARY_DIR}/observe_lab_trace.json --min-runs 4 --park fd --flows")
  set_tests_properties(observe.trace.lab_records_one_models_run PROPERTIES TIMEOUT 60)
endif()
