# Cleanup callback delivery (issue 4): included from broker/CMakeLists.txt.
#   gtdelivery           the engine (gt_callback, gt_delivery); link it into gtbroker
#   gthttptest           scripted HTTP test server (tests/gt_http_server), for selftests
#                        and integration tests
#   gt_delivery_selftest runner: one ctest per module (gt_callback, gt_http_server, gt_delivery)
#   delivery_bench       throughput / memory bench (not a test)
find_package(Threads REQUIRED)

add_library(gthttptest STATIC ${PROJECT_SOURCE_DIR}/tests/gt_http_server.c)
target_include_directories(gthttptest PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/tests>)
target_link_libraries(gthttptest PUBLIC PkgConfig::MHD PkgConfig::CURL Threads::Threads)

add_library(gtdelivery STATIC
  ${CMAKE_CURRENT_LIST_DIR}/gt_callback.c
  ${CMAKE_CURRENT_LIST_DIR}/gt_delivery.c
  ${CMAKE_CURRENT_LIST_DIR}/gt_delivery_test.c)
target_include_directories(gtdelivery PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_LIST_DIR}>)
# gthttptest is needed by gt_delivery_test.o only; a binary that never calls
# gt_delivery_test does not pull that object in.
target_link_libraries(gtdelivery
  PUBLIC garbagetruck PkgConfig::CURL PkgConfig::SODIUM PkgConfig::JANSSON Threads::Threads
  PRIVATE gthttptest)

add_executable(gt_delivery_selftest ${CMAKE_CURRENT_LIST_DIR}/gt_delivery_selftest.c)
target_link_libraries(gt_delivery_selftest PRIVATE gtdelivery gthttptest)
foreach(module gt_callback gt_http_server gt_delivery)
  gt_selftest(gt_delivery_selftest ${module})
endforeach()

if(EXISTS ${PROJECT_SOURCE_DIR}/bench/delivery_bench.c)
  add_executable(delivery_bench ${PROJECT_SOURCE_DIR}/bench/delivery_bench.c)
  target_link_libraries(delivery_bench PRIVATE gtdelivery gthttptest)
endif()

# The broker delivers cleanup callbacks: the engine and the broker-side glue
# (gt_broker_delivery.c) join libgtbroker.
target_sources(gtbroker PRIVATE ${CMAKE_CURRENT_LIST_DIR}/gt_broker_delivery.c)
target_link_libraries(gtbroker PUBLIC gtdelivery)
gt_selftest(gt_broker_selftest gt_broker_delivery)
