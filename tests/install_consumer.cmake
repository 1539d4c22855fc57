# ctest's Install.CppConsumer: install this build into a fresh temporary
# prefix, then configure, build and run tests/consumer against it, as a
# user's project would (find_package(faiss_gmm) must find every
# dependency its link interface names).
#   cmake -DBUILD=<build dir> -DSRC=<tests/consumer> -DWORK=<scratch dir>
#         [-DPYTHON=<interpreter> -DPY_DIR=<package dir under the prefix>] -P install_consumer.cmake
foreach(v BUILD SRC WORK)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "install_consumer.cmake needs -D${v}=...")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "${what}: ok")
endfunction()

step("install into ${WORK}/prefix"
     ${CMAKE_COMMAND} --install "${BUILD}" --prefix "${WORK}/prefix")
step("configure the consumer"
     ${CMAKE_COMMAND} -S "${SRC}" -B "${WORK}/build" -DCMAKE_PREFIX_PATH=${WORK}/prefix
     -DCMAKE_BUILD_TYPE=Release)
step("build the consumer" ${CMAKE_COMMAND} --build "${WORK}/build")
step("run the consumer" "${WORK}/build/consumer" "${WORK}/index.faiss")
# The installed Python package, in a fresh interpreter that sees only the
# prefix (not the build tree): fit, train an index, hand it to faiss.
if(PYTHON)
  set(script [=[
import sys, numpy as np, faiss, faiss_gmm
assert faiss_gmm.__file__.startswith(sys.argv[1]), faiss_gmm.__file__
x = np.random.default_rng(0).standard_normal((2000, 8)).astype(np.float32)
index = faiss_gmm.index_factory(8, "IVF8,Flat", x)
index.add(x)
faiss.write_index(index, sys.argv[2])
assert faiss.read_index(sys.argv[2]).ntotal == 2000
print("python consumer ok")
]=])
  step("import the installed Python package"
       ${CMAKE_COMMAND} -E env --unset=PYTHONPATH PYTHONPATH=${WORK}/prefix/${PY_DIR}/..
       ${PYTHON} -c "${script}" "${WORK}/prefix" "${WORK}/py.faiss")
endif()
file(REMOVE_RECURSE "${WORK}")
