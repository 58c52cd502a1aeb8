/*  gt_http_client.h — a minimal HTTP/1.0 client for the tests: the
    metrics endpoint's selftests and the integration tests ask it for
    /metrics, /healthz and /readyz.  A fixture: in no production library.  */
#ifndef GT_HTTP_CLIENT_H_INCLUDED
#define GT_HTTP_CLIENT_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  One HTTP/1.0 request (method, path) to 127.0.0.1:port with a 10 s
//  deadline.  Returns the body (caller frees) and sets the status and the
//  Content-Type (caller frees; NULL if none; content_type_p may be NULL);
//  NULL on a transport error.
char *gt_http_client_request (int port, const char *method, const char *path,
                              int *status_p, char **content_type_p);

#ifdef __cplusplus
}
#endif
#endif
