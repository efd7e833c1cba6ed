# build.case_scan_ignores_comments: the scan that turns each WEFT_TEST(name) of a test file
# into a CTest entry reads code only; a case named in a comment registers nothing.
include(${CMAKE_CURRENT_LIST_DIR}/cases.cmake)
weft_test_cases(${CMAKE_CURRENT_LIST_DIR}/fixtures/case_scan.c found)
set(want first_case second_case third_case fourth_case fifth_case)
if(NOT found STREQUAL want)
  message(FATAL_ERROR "case scan found '${found}', want '${want}'")
endif()
