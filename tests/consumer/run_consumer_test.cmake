# ctest driver: install kiln from this build into a private prefix, then configure, build and run
# the consumer project twice: against the installed package (find_package) and as a subdirectory.
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

# This build compiles kiln a second time, so unoptimised and without debug information: what it
# shows is that add_subdirectory configures, builds and links, which needs no speed (and -O0 saves
# a third of the test's time).
run_step("configure with add_subdirectory" ${CMAKE_COMMAND} -S ${consumer_source} -B ${WORK_DIR}/subdirectory
  -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DKILN_SOURCE_DIR=${KILN_SOURCE_DIR})
run_step("build with add_subdirectory" ${CMAKE_COMMAND} --build ${WORK_DIR}/subdirectory -j2)
run_step("run with add_subdirectory" ${WORK_DIR}/subdirectory/consumer)
