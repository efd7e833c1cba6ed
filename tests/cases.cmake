# weft_test_cases(file out): the case names a test file registers, in order: every
# WEFT_TEST(name) of its code. Comments are removed first (block comments, then line
# comments), so a case named in a comment, or commented out, registers nothing.
function(weft_test_cases file out)
  file(READ ${file} text)
  # A C block comment: "/*", then anything but a "*" that ends it, then "*/".
  string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" " " text "${text}")
  string(REGEX REPLACE "//[^\n]*" "" text "${text}")
  string(REGEX MATCHALL "WEFT_TEST\\([a-z0-9_]+\\)" calls "${text}")
  set(names)
  foreach(call ${calls})
    string(REGEX REPLACE "WEFT_TEST\\(([a-z0-9_]+)\\)" "\\1" name "${call}")
    list(APPEND names ${name})
  endforeach()
  set(${out} ${names} PARENT_SCOPE)
endfunction()
