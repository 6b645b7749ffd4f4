# ctest driver: install kiln from this build into a private prefix, then configure, build and run
# the consumer project against the installed package (find_package), and configure it with kiln as
# a subdirectory and compile it against that.
# Variables: KILN_SOURCE_DIR, KILN_BINARY_DIR, WORK_DIR, GENERATOR.
function(run_step description)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${description} failed (${result}):\n${output}")
  endif()
  message(STATUS "${description}: ok")
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(consumer_source ${KILN_SOURCE_DIR}/tests/consumer)

run_step("install kiln" ${CMAKE_COMMAND} --install ${KILN_BINARY_DIR} --prefix ${WORK_DIR}/prefix)
run_step("configure with find_package" ${CMAKE_COMMAND} -S ${consumer_source} -B ${WORK_DIR}/installed
  -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
run_step("build with find_package" ${CMAKE_COMMAND} --build ${WORK_DIR}/installed -j2)
run_step("run with find_package" ${WORK_DIR}/installed/consumer)

# As a subdirectory, kiln would be compiled a second time (most of this test's time) to show
# nothing new: the installed half above already built, linked and ran the same code. What
# add_subdirectory changes is how kiln::kiln's targets, include folders and options reach the
# consumer, so this half configures the project and compiles the consumer's own file against them.
run_step("configure with add_subdirectory" ${CMAKE_COMMAND} -S ${consumer_source} -B ${WORK_DIR}/subdirectory
  -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release -DKILN_SOURCE_DIR=${KILN_SOURCE_DIR})
if(GENERATOR MATCHES "Ninja")
  set(consumer_object CMakeFiles/consumer.dir/main.cpp.o)
else()
  set(consumer_object main.cpp.o)
endif()
run_step("compile against add_subdirectory" ${CMAKE_COMMAND} --build ${WORK_DIR}/subdirectory --target ${consumer_object})
