# The network scenarios (scenario/test_http.c, scenario/test_redis.c) and the soak
# (scenario/soak_http.c): whole programs driven by outside clients (wrk, ab, libcurl,
# redis-benchmark, installed by `make deps`) over loopback.
# Each case is its own CTest entry "scenario.<name>.<case>", run alone (RUN_SERIAL): each puts
# 1,000 connections and both cores under load, and measures the process's fds and RSS.
#
# They run on the default poller. By hand (WEFT_POLLER=...), wrk, ab and redis-benchmark pass
# on all four; the crawler fails on select (287 of 500 fetches: CURLE_BAD_FUNCTION_ARGUMENT):
# the patched poll() parks on a private epoll fd, numbered past FD_SETSIZE once the process
# holds more than 1,024 fds (strace: epoll_create1 = 1086), which the select poller refuses.
#
# Not under valgrind (not tried: memcheck runs one thread at a time, tens of times slower,
# against clients that time out, and RSS means nothing there). Not under TSan: measured on this
# 2-core machine, the wrk and ab cases pass there when it is idle (7-8 s), but under the load
# of the other builds (load 13) wrk's 3 s run got 0 responses from the TSan server (not
# investigated further); a crawl of 500 takes 4-15 s a round (the case's bound is 25 s)
# and redis-benchmark's two rounds 56 s. ASan runs them all, as issue 15 asks. Not in a cross
# build (the aarch64 presets): the clients are the host's programs.
if(WEFT_MEMCHECK OR WEFT_SANITIZE STREQUAL "thread" OR CMAKE_CROSSCOMPILING)
  return()
endif()
find_program(WEFT_WRK wrk)
find_program(WEFT_AB ab)
find_program(WEFT_REDIS_BENCHMARK redis-benchmark)
pkg_check_modules(CURL IMPORTED_TARGET libcurl)

add_library(weft_scenario STATIC ${CMAKE_CURRENT_LIST_DIR}/scenario.c)
target_link_libraries(weft_scenario PUBLIC weft_test_support)

# weft_scenario_test(<feature> <libraries...>): every WEFT_TEST case of test_<feature>.c.
function(weft_scenario_test feature)
  set(file ${CMAKE_CURRENT_LIST_DIR}/test_${feature}.c)
  set(target test_scenario_${feature})
  add_executable(${target} ${file})
  target_link_libraries(${target} PRIVATE weft_scenario ${ARGN})
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${file})
  weft_test_cases(${file} names)
  foreach(name ${names})
    add_test(NAME scenario.${feature}.${name} COMMAND ${target} ${name})
    set_tests_properties(scenario.${feature}.${name} PROPERTIES TIMEOUT 120 RUN_SERIAL TRUE
                         LABELS scenario)
  endforeach()
endfunction()

if(WEFT_WRK AND WEFT_AB AND CURL_FOUND)
  weft_scenario_test(http PkgConfig::CURL)
else()
  message(WARNING "scenario.http not built: wrk, ab or libcurl missing (make deps)")
endif()
# The soak (`make soak`, not in CI): the HTTP scenario under wrk for SOAK_SECONDS (600 by
# default), sampled every SOAK_INTERVAL (10) s. Built with the suite; CTest runs it for 20 s
# in 5 s runs so that it cannot rot (the verdict's rules, a shorter warm-up).
if(WEFT_WRK)
  add_executable(soak_http ${CMAKE_CURRENT_LIST_DIR}/soak_http.c)
  target_link_libraries(soak_http PRIVATE weft_scenario)
  add_test(NAME scenario.soak.http_20_seconds COMMAND soak_http --seconds 20 --interval 5)
  set_tests_properties(scenario.soak.http_20_seconds PROPERTIES TIMEOUT 120 RUN_SERIAL TRUE
                       LABELS scenario)
else()
  message(WARNING "soak_http not built: wrk missing (make deps)")
endif()
if(WEFT_REDIS_BENCHMARK)
  weft_scenario_test(redis)
else()
  message(WARNING "scenario.redis not built: redis-benchmark missing (make deps)")
endif()
