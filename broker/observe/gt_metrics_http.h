/*  gt_metrics_http.h — the broker's HTTP endpoint for operators
    (libmicrohttpd, its own threads: never the broker's loop).

    GET /metrics    Prometheus text format 0.0.4 (gt_metrics_render) of a
                    fresh snapshot; 503 if the broker never published one
    GET /healthz    200 {"status":"ok"}: the process is alive
    GET /readyz     200 {"ready":true,...} when the store is usable and the
                    request and event sockets are bound; else 503
                    {"ready":false,"reasons":[...]}
    anything else   404 (other methods than GET and HEAD: 405)

    Owned by the broker, built on a gt_metrics_t it does not own (which
    must outlive it); reads snapshots with gt_metrics_read.  */
#ifndef GT_METRICS_HTTP_H_INCLUDED
#define GT_METRICS_HTTP_H_INCLUDED

#include "gt_metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_metrics_http_t gt_metrics_http_t;

#define GT_METRICS_HTTP_THREADS     2       //  server threads (a scrape may wait for the broker)

//  Listen on host:port (port 0: the kernel picks; host a name or an IPv4 /
//  IPv6 address).  NULL with a message in err on failure.
gt_metrics_http_t *gt_metrics_http_new (gt_metrics_t *metrics, const char *host, int port,
                                        char *err, size_t err_size);
//  The port it listens on.
int gt_metrics_http_port (gt_metrics_http_t *self);
//  Stop: readers waiting are released (gt_metrics_stop), the server's
//  threads joined; nulls the pointer.
void gt_metrics_http_destroy (gt_metrics_http_t **self_p);

//  Whether host:port can be listened on now, as gt_metrics_http_new would
//  (a port already in use: false with the reason alone in why).
bool gt_metrics_http_port_free (const char *host, int port, char *why, size_t why_size);

//  Parse "http://host:port" or "http://host:*" (* or 0 = ephemeral;
//  IPv6 hosts in brackets) into host (size bytes) and port.
bool gt_metrics_http_parse_endpoint (const char *endpoint, char *host, size_t size, int *port_p);

#ifdef __cplusplus
}
#endif
#endif
