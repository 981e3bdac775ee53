# SPDX-License-Identifier: MIT
# Installs mdlm into WORK_DIR/prefix, then configures, builds and runs the consumer project in
# find_package/ against that prefix. Any failure is fatal (the ctest fails).
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGV}")
  endif()
endfunction()
run(${CMAKE_COMMAND} -S "${MDLM_SOURCE_DIR}" -B "${WORK_DIR}/mdlm-build" -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
    -DMDLM_BUILD_TESTS=OFF -DMDLM_BUILD_BENCHMARKS=OFF -DMDLM_BUILD_TOOLS=OFF -DMDLM_BUILD_REFERENCE=OFF
    -DMDLM_BUILD_BACKENDS=OFF -DMDLM_INSTALL=ON "-DCMAKE_INSTALL_PREFIX=${prefix}")
run(${CMAKE_COMMAND} --install "${WORK_DIR}/mdlm-build")
run(${CMAKE_COMMAND} -S "${CMAKE_CURRENT_LIST_DIR}/find_package" -B "${WORK_DIR}/consumer-build"
    -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER} "-DCMAKE_PREFIX_PATH=${prefix}")
run(${CMAKE_COMMAND} --build "${WORK_DIR}/consumer-build")
run("${WORK_DIR}/consumer-build/consumer")
