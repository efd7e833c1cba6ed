# The IO-models race end to end: weft-lab race on every model at two small levels, then at a
# level past FD_SETSIZE for select (which must be reported as unable, not hidden), every
# echoed byte verified by the generator (it exits non-zero on any error); then both charts are
# read as a user would: each rendered to PNG with rsvg-convert (a broken SVG fails), and their
# text checked for the four panels with their titles and tick labels, the legend, a bar per
# model, the labelled "cannot" where select cannot serve, and the lines saying who wins what.
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
# The fork model's CPU includes its connection processes: a blocking read and write per request,
# as the thread-per-connection model does, so within a factor of 4 of that model's at each level.
# (Counted in clock ticks, each short-lived process read 0 and the model 0.00 to 0.6 us/request
# against blocking's ~5.)
foreach(level 1 8)
  set(cpu)
  foreach(model blocking fork)
    if(NOT table MATCHES "\n${model} +${level} +[0-9]+ +[0-9.]+ +[0-9.]+ +([0-9.]+)")
      message(FATAL_ERROR "no ${model} row at ${level}:\n${table}")
    endif()
    string(REPLACE "." "" v ${CMAKE_MATCH_1}) # hundredths of a microsecond, as an integer
    math(EXPR v "${v} + 0")
    list(APPEND cpu ${v})
  endforeach()
  list(GET cpu 0 blocking)
  list(GET cpu 1 fork)
  math(EXPR fork4 "${fork} * 4")
  if(fork4 LESS blocking)
    message(FATAL_ERROR "fork's CPU per request at ${level} connections is under a quarter of "
                        "blocking's (${fork} vs ${blocking} hundredths of a us):\n${table}")
  endif()
endforeach()
# The lines under the table: who wins each column at each level, and who cannot serve.
foreach(line "At 1 connection: most requests/s [a-z_]+ \\([0-9]+/s\\); lowest p99 [a-z_]+"
             "At 8 connections: most requests/s" "least CPU/request [a-z_]+" "smallest RSS [a-z_]+")
  if(NOT table MATCHES "${line}")
    message(FATAL_ERROR "the summary has no line matching '${line}':\n${table}")
  endif()
endforeach()
if(NOT big MATCHES "select cannot serve 1100 connections \\(past FD_SETSIZE\\)")
  message(FATAL_ERROR "the summary does not say select cannot serve 1100:\n${big}")
endif()
# The charts' text, as drawn.
function(expect svg what regex)
  file(READ ${svg} text)
  if(NOT text MATCHES "${regex}")
    message(FATAL_ERROR "${svg}: no ${what} (${regex})")
  endif()
endfunction()
foreach(svg ${OUT}/race.svg ${OUT}/big/race.svg)
  foreach(title "requests per second" "p99 latency, log scale" "server CPU per request, us"
                "server peak RSS, MiB")
    expect(${svg} "panel '${title}'" "<g class=\"panel\" id=\"panel[0-3]\">\n<text[^>]*>${title}")
  endforeach()
  expect(${svg} "tick labels of the requests panel" "class=\"tick\"[^>]*>[0-9.]+k<")
  expect(${svg} "tick labels in time units on the p99 panel" "class=\"tick\"[^>]*>[0-9.]+ (us|ms)<")
  expect(${svg} "summary" "<g class=\"summary\">\n<text[^>]*>At [0-9]+ connection")
endforeach()
expect(${OUT}/race.svg "legend" ">1 connection<.*>8 connections<")
foreach(model blocking fork busy select poll epoll io_uring threadpool sigio coroutines)
  expect(${OUT}/race.svg "bar of ${model}" "<title>${model}, 8 connections: [0-9.e+]+</title>")
endforeach()
expect(${OUT}/big/race.svg "labelled 'cannot' for select" "class=\"cannot\"[^>]*>cannot<")
expect(${OUT}/big/race.svg "bar of epoll at 1100" "<title>epoll, 1100 connections: ")
expect(${OUT}/big/race.svg "line saying select cannot" ">select cannot serve 1100 connections")
if(NOT RSVG)
  message(FATAL_ERROR "rsvg-convert missing (librsvg2-bin): make deps installs it")
endif()
foreach(chart ${OUT}/race ${OUT}/big/race)
  execute_process(COMMAND ${RSVG} -o ${chart}.png ${chart}.svg RESULT_VARIABLE rc
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the chart ${chart}.svg does not render: ${err}")
  endif()
  file(SIZE ${chart}.png size)
  file(READ ${chart}.png magic LIMIT 4 HEX)
  file(READ ${chart}.png ihdr OFFSET 16 LIMIT 8 HEX) # width, height: big-endian 32-bit
  string(SUBSTRING ${ihdr} 0 8 w)
  string(SUBSTRING ${ihdr} 8 8 h)
  math(EXPR w "0x${w}")
  math(EXPR h "0x${h}")
  # Two panels across and two down: not a thumbnail (two models make a narrow one).
  if(size LESS 10000 OR NOT magic STREQUAL "89504e47" OR w LESS 250 OR h LESS 600)
    message(FATAL_ERROR "${chart}.png is not a chart of substance (${size} bytes, ${w}x${h})")
  endif()
endforeach()
message(STATUS "race ran, select reported unable past FD_SETSIZE, four panels with their labels, "
               "charts rendered (${OUT}/race.png: ${size} bytes, ${w}x${h})")
