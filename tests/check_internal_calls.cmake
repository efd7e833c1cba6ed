# Fails if any object of libweft.a but the monkey patch's own (hook.c.o) calls a name the patch
# redefines: the library's internal system calls must reach the kernel through
# src/core/sys.c (weft__sys_*), never through the hook (issue 12, item 5). With
# -Bsymbolic-functions or plain symbol interposition such a call would bind to the hook.
execute_process(COMMAND nm -A --undefined-only ${LIB} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm failed on ${LIB}")
endif()
set(hooked "read|write|readv|writev|recv|recvfrom|recvmsg|send|sendto|sendmsg|accept|accept4|connect|poll|select|sleep|usleep|nanosleep|close|dup2|dup3|fclose|pclose|getaddrinfo|socket|socketpair|fcntl|fcntl64|ioctl|setsockopt")
string(REPLACE "\n" ";" lines "${out}")
set(bad "")
foreach(line ${lines})
  # "libweft.a:io.c.o:                 U recv" (a versioned name may carry @GLIBC_x)
  if(line MATCHES "^[^:]*:([^:]+):[ ]+U (${hooked})(@.*)?$")
    if(NOT CMAKE_MATCH_1 STREQUAL "hook.c.o")
      list(APPEND bad "${CMAKE_MATCH_1} calls ${CMAKE_MATCH_2}")
    endif()
  endif()
endforeach()
if(bad)
  string(REPLACE ";" "\n  " bad "${bad}")
  message(FATAL_ERROR "internal calls that the monkey patch would catch:\n  ${bad}")
endif()
message(STATUS "no object but the hook's calls a hooked name")
