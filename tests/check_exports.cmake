# Fails unless every dynamic symbol libweft.so defines is named weft_* (or is one of the monkey
# patch's libc names, unversioned), and the API named in the issues is there.
execute_process(COMMAND nm -D --defined-only ${LIB} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm failed on ${LIB}")
endif()
string(REPLACE "\n" ";" lines "${out}")
set(names "")
foreach(line ${lines})
  if(line MATCHES "^[0-9a-f]+ [A-Za-z] ([^@]+)(@.*)?$") # name@@WEFT_1.0: the name
    set(sym ${CMAKE_MATCH_1})
    # The version nodes of cmake/weft.map (WEFT_1.0) appear as absolute symbols.
    if(line MATCHES "^[0-9a-f]+ A WEFT_[0-9.]+$")
      continue()
    endif()
    # The monkey patch's definitions of libc's blocking calls (weft/hook.h) are exported too.
    if(NOT sym MATCHES "^weft_[a-z]" AND NOT sym MATCHES
       "^(read|write|readv|writev|recv|recvfrom|recvmsg|send|sendto|sendmsg|accept|accept4|connect|poll|select|sleep|usleep|nanosleep|close|dup2|dup3|fclose|pclose|getaddrinfo|socket|socketpair)$")
      message(FATAL_ERROR "libweft.so exports a non-API symbol: ${sym}")
    endif()
    # Those stay unversioned (cmake/weft.map): a reference such as read@GLIBC_2.2.5 from
    # another library binds only to an unversioned definition, so a versioned one would turn
    # the patch off for every library but the program.
    if(NOT sym MATCHES "^weft_" AND line MATCHES "@")
      message(FATAL_ERROR "libweft.so exports the patched ${sym} with a symbol version "
                          "(${line}): other libraries' calls would not reach it")
    endif()
    list(APPEND names ${sym})
    if(line MATCHES "@@WEFT_1\\.0$")
      list(APPEND in_1_0 ${sym})
    endif()
  endif()
endforeach()
# Functions added after 1.0 get a node of their own (cmake/weft.map): a program built against
# 1.x then fails to load, by name, with an older library. The 1.0 baseline lists 1.0's names.
if(ABI)
  file(READ ${ABI} abi)
  foreach(sym ${in_1_0})
    string(FIND "${abi}" "<elf-symbol name='${sym}' version='WEFT_1.0'" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "${sym} is versioned WEFT_1.0 but is not in the 1.0 ABI (${ABI}): "
                          "list it in a WEFT_1.x node of cmake/weft.map")
    endif()
  endforeach()
endif()
file(READ ${CMAKE_CURRENT_LIST_DIR}/exports.txt wanted)
string(REGEX REPLACE "#[^\n]*" "" wanted "${wanted}")
string(REGEX MATCHALL "weft_[a-z0-9_]+" wanted "${wanted}")
foreach(w ${wanted})
  list(FIND names ${w} i)
  if(i EQUAL -1)
    message(FATAL_ERROR "libweft.so does not export ${w}")
  endif()
endforeach()
list(LENGTH names n)
message(STATUS "libweft.so exports ${n} symbols (weft_* and the monkey patch), all required ones present")
