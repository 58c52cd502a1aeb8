# The PostgreSQL store in the broker (issue 3): included from broker/CMakeLists.txt.
#   gt_store_pg       gt_store_ops_t over gtpg (writer, loader, migrations)
#   gt_pacer          token bucket (catch-up pacing of due timers)
#   gt_broker_store   the broker's side: refusal while the store is down, timer pacing
# All join libgtbroker, which links gtpg.  Selftests run from
# gt_store_pg_selftest; gt_store_pg skips (77) without DATABASE_URL.
target_sources(gtbroker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/gt_store_pg.c
  ${CMAKE_CURRENT_LIST_DIR}/gt_pacer.c
  ${CMAKE_CURRENT_LIST_DIR}/gt_broker_store.c)
target_link_libraries(gtbroker PUBLIC gtpg)

add_executable(gt_store_pg_selftest ${CMAKE_CURRENT_LIST_DIR}/gt_store_pg_selftest.c)
target_link_libraries(gt_store_pg_selftest PRIVATE gtbroker)
foreach(module gt_pacer gt_broker_store gt_store_pg)
  gt_selftest(gt_store_pg_selftest ${module})
endforeach()
set_tests_properties(gt_store_pg PROPERTIES SKIP_RETURN_CODE 77)

# Benchmark of the broker on PostgreSQL, end to end over ZeroMQ (not a test)
find_package(Threads REQUIRED)
add_executable(pgbench_broker ${PROJECT_SOURCE_DIR}/bench/pgbench_broker.c)
target_link_libraries(pgbench_broker PRIVATE bench_util gtpg garbagetruck Threads::Threads)
