# Observability (issue 7): included from broker/CMakeLists.txt.
#   gt_log            log lines (text or JSON) on stderr
#   gt_histogram      fixed-bucket histograms
#   gt_metrics        collection on the broker thread, snapshots, Prometheus text
#   gt_metrics_http   /metrics, /healthz, /readyz (libmicrohttpd, own threads)
#   gt_broker_metrics the broker's side: METRICS pipe command, STATS figures
# All join libgtbroker; each has a selftest in gt_broker_selftest.
find_package(Threads REQUIRED)
target_sources(gtbroker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/gt_log.c
  ${CMAKE_CURRENT_LIST_DIR}/gt_histogram.c
  ${CMAKE_CURRENT_LIST_DIR}/gt_metrics.c
  ${CMAKE_CURRENT_LIST_DIR}/gt_metrics_render.c
  ${CMAKE_CURRENT_LIST_DIR}/gt_metrics_http.c
  ${CMAKE_CURRENT_LIST_DIR}/gt_broker_metrics.c)
target_link_libraries(gtbroker PUBLIC PkgConfig::MHD PkgConfig::JANSSON Threads::Threads)
foreach(module gt_log gt_histogram gt_metrics gt_metrics_http gt_broker_metrics)
  gt_selftest(gt_broker_selftest ${module})
endforeach()
