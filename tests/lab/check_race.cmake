# The IO-models race end to end: weft-lab race on every model at two small levels, then at a
# level past FD_SETSIZE for select (which must be reported as unable, not hidden), every
# echoed byte verified by the generator (it exits non-zero on any error); then the chart is
# rendered to PNG with rsvg-convert, so a broken SVG fails.
#   cmake -DLAB=weft-lab -DOUT=dir -DRSVG=rsvg-convert -P check_race.cmake
file(REMOVE_RECURSE ${OUT})
execute_process(COMMAND ${LAB} race --levels 1,8 --seconds 0.15 --out ${OUT}
                RESULT_VARIABLE rc OUTPUT_VARIABLE table ERROR_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "weft-lab race failed (${rc}):\n${table}")
endif()
foreach(model blocking fork busy select poll epoll io_uring threadpool sigio coroutines)
  if(NOT table MATCHES "\n${model} ")
    message(FATAL_ERROR "no row for ${model}:\n${table}")
  endif()
endforeach()
execute_process(COMMAND ${LAB} race --models select,epoll --levels 1100 --seconds 0.15
                        --out ${OUT}/big
                RESULT_VARIABLE rc OUTPUT_VARIABLE big ERROR_QUIET)
if(NOT rc EQUAL 0 OR NOT big MATCHES "select +1100 cannot" OR NOT big MATCHES "epoll +1100 +[0-9]+")
  message(FATAL_ERROR "the 1100-connection level (select unable, epoll serving) failed (${rc}):\n${big}")
endif()
if(NOT RSVG)
  message(FATAL_ERROR "rsvg-convert missing (librsvg2-bin): make deps installs it")
endif()
execute_process(COMMAND ${RSVG} -o ${OUT}/race.png ${OUT}/race.svg RESULT_VARIABLE rc
                ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the chart does not render: ${err}")
endif()
file(SIZE ${OUT}/race.png size)
file(READ ${OUT}/race.png magic LIMIT 4 HEX)
if(size LESS 2000 OR NOT magic STREQUAL "89504e47")
  message(FATAL_ERROR "the rendered chart is not a PNG of substance (${size} bytes)")
endif()
message(STATUS "race ran, select reported unable past FD_SETSIZE, chart rendered (${size} bytes)")
