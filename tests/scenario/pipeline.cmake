# The pipeline and mixed scenarios (tests/scenario/test_pipeline.c, test_mixed.c; their CTest
# entries come from the suite's glob in tests/CMakeLists.txt). Each moves tens of MiB through
# worker processes or holds 200 connections with two pools, so each runs alone, within 60 s
# (600 s under valgrind, where both scale their sizes down).
set(scenario_timeout 60)
if(WEFT_MEMCHECK)
  set(scenario_timeout 600)
endif()
foreach(feature pipeline mixed)
  set(file ${CMAKE_CURRENT_LIST_DIR}/test_${feature}.c)
  if(NOT EXISTS ${file})
    continue()
  endif()
  weft_test_cases(${file} names)
  foreach(name ${names})
    set_tests_properties(scenario.${feature}.${name} PROPERTIES TIMEOUT ${scenario_timeout}
                         RUN_SERIAL TRUE LABELS scenario)
  endforeach()
endforeach()
