/*  gt_zap.h — the broker's gate for CURVE handshakes: the ZAP handler
    (ZeroMQ RFC 27) that accepts a client key only if gt_principals trusts
    it, and a watch on the broker's sockets that counts and logs every
    handshake that failed (an unknown key, a client without CURVE, a
    malformed or slow handshake).

    The ZAP handler must be bound before a CURVE socket binds: without one,
    libzmq lets any client that knows the server key in.  ZeroMQ allows one
    handler per context (the endpoint inproc://zeromq.zap.01), and CZMQ
    gives a process one context: so one CURVE broker per process, and
    gt_zap_new fails if the endpoint is taken.  The handler answers User-Id
    = the client's Z85 public key; the broker reads it from every request
    (zmq_msg_gets "User-Id") and looks the principal up again, so a key
    removed from the directory stops working on connections already open.
    It answers only requests for GT_ZAP_DOMAIN, which the broker sets on its
    CURVE sockets (so another library's sockets in the process are refused,
    not let in).

    Refusals are logged at most once per second per kind, with a count of
    those not logged in between.  Runs in the broker's thread: the broker
    polls gt_zap_socks and calls gt_zap_handle.  */
#ifndef GT_ZAP_H_INCLUDED
#define GT_ZAP_H_INCLUDED

#include <czmq.h>
#include "gt_principals.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GT_ZAP_DOMAIN       "garbagetruck"
//  Sockets of the gate (the handler and up to this many watches)
#define GT_ZAP_MAX_SOCKS    4

typedef struct _gt_zap_t gt_zap_t;

//  Bind the handler for principals (borrowed).  NULL if the endpoint is
//  taken (err says so).
gt_zap_t *gt_zap_new (gt_principals_t *principals, char *err, size_t err_size);
//  Unbind.  Destroy it after the watched sockets are closed: while a CURVE
//  socket is open without a handler, libzmq would let anyone in.
void gt_zap_destroy (gt_zap_t **self_p);

//  Count and log the failed handshakes of sock (the broker's ROUTER and
//  XPUB); name is what the log calls it ("requests", "events").  -1 if
//  no watch could be attached.
int gt_zap_watch (gt_zap_t *self, zsock_t *sock, const char *name);

//  The sockets to poll for input; returns how many (<= GT_ZAP_MAX_SOCKS).
size_t gt_zap_socks (gt_zap_t *self, zsock_t **socks);
//  Answer waiting ZAP requests and read waiting handshake events (never
//  blocks).
void gt_zap_handle (gt_zap_t *self);

//  Handshakes that succeeded; that failed (every kind); keys the handler
//  refused.
uint64_t gt_zap_accepted (gt_zap_t *self);
uint64_t gt_zap_failed (gt_zap_t *self);
uint64_t gt_zap_refused (gt_zap_t *self);

#ifdef __cplusplus
}
#endif
#endif
