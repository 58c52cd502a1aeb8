# The PostgreSQL store in the broker (issue 3): included from broker/CMakeLists.txt.
#   gt_store_pg       gt_store_ops_t over gtpg (writer, loader, migrations)
#   gt_storage        the store GC_STORAGE_BACKEND names (memory, postgres): check, open
#   gt_pacer          token bucket (catch-up pacing of due timers)
#   gt_broker_store   the broker's side: refusal while the store is down, timer pacing
# All join libgtbroker, which links gtpg.  gt_pacer's and gt_broker_store's
# selftests run from gt_broker_store_selftest; gt_store_pg's and gt_storage's
# are in tests/pg (gt_pg_selftest).
target_sources(gtbroker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/gt_store_pg.c
  ${CMAKE_CURRENT_LIST_DIR}/gt_storage.c
  ${CMAKE_CURRENT_LIST_DIR}/gt_pacer.c
  ${CMAKE_CURRENT_LIST_DIR}/gt_broker_store.c)
target_link_libraries(gtbroker PUBLIC gtpg)

add_executable(gt_broker_store_selftest ${CMAKE_CURRENT_LIST_DIR}/gt_broker_store_selftest.c)
target_link_libraries(gt_broker_store_selftest PRIVATE gtbroker)
foreach(module gt_pacer gt_broker_store)
  gt_selftest(gt_broker_store_selftest ${module})
endforeach()

# Benchmark of the broker on PostgreSQL, end to end over ZeroMQ (not a test;
# throw-away databases from gtpgtestdb)
find_package(Threads REQUIRED)
add_executable(pgbench_broker ${PROJECT_SOURCE_DIR}/bench/pgbench_broker.c)
target_link_libraries(pgbench_broker PRIVATE bench_util gtpg gtpgtestdb garbagetruck Threads::Threads)
