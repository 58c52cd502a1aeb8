/*  gt_curve.h — the broker's CURVE security (GTLP.md §12), as the actor
    uses it: its own certificate (GC_CURVE_CERT), the clients it trusts
    (gt_principals, GC_CURVE_CLIENTS), the handshake gate (gt_zap), who a
    request comes from, and which events a subscriber may receive.

    Order matters and is kept here: the ZAP handler is bound when this
    object is made, before any socket is secured, because libzmq lets any
    client in while no handler is bound.  Secured sockets carry the server
    key, the ZAP domain and a handshake timeout; ZMQ_MAXMSGSIZE stays what
    the actor set.

    Events: the actor binds an XPUB in manual mode; every subscription
    comes through gt_curve_subscription, which applies it only as far as the
    subscriber's role allows.  A service's subscriber gets its own service's
    events whatever prefix it asks for: "" or any prefix of "svc\x1f" is
    narrowed to "svc\x1f"; a prefix under "svc\x1f" is applied as it is;
    any other prefix is ignored.  Observers and admins get what they ask.
    libzmq's manual mode misattributes subscriptions read after a message
    that is no subscription: none is applied until the socket is drained
    (GTLP.md §13 has this and libzmq 4.3.4's use-after-free in the mode).  */
#ifndef GT_CURVE_H_INCLUDED
#define GT_CURVE_H_INCLUDED

#include <czmq.h>
#include "gt_config.h"
#include "gt_principals.h"
#include "gt_zap.h"

#ifdef __cplusplus
extern "C" {
#endif

//  The oldest libzmq whose CURVE/ZAP has no known hole (CVE-2019-13132
//  fixed in 4.3.2; CVE-2020-15166 and the 2021 ones in 4.3.3)
#define GT_CURVE_MIN_ZMQ_VERSION    ZMQ_MAKE_VERSION (4, 3, 3)
//  A handshake that takes longer is dropped (libzmq's default is 30 s)
#define GT_CURVE_HANDSHAKE_MS       5000

typedef struct _gt_curve_t gt_curve_t;

//  Counters for STATS and /metrics
typedef struct {
    uint64_t principals;            //  keys trusted now
    uint64_t handshakes;            //  handshakes that succeeded
    uint64_t handshakes_failed;     //  handshakes that failed, every kind
    uint64_t keys_refused;          //  of those, keys the ZAP handler refused
} gt_curve_counters_t;

//  Set CURVE up from config (curve_cert and curve_clients set).  NULL if it
//  cannot be (err says why: libzmq too old or without CURVE, the
//  certificate unreadable or without a secret key, the directory
//  unreadable, another ZAP handler in the process).
gt_curve_t *gt_curve_new (const gt_config_t *config, char *err, size_t err_size);
//  Destroy after the secured sockets are closed (the gate must outlive them).
void gt_curve_destroy (gt_curve_t **self_p);

//  Make sock a CURVE server behind the gate, before it binds; name is what
//  the log calls it ("requests", "events").
void gt_curve_secure (gt_curve_t *self, zsock_t *sock, const char *name);

//  The principal a request comes from, by the User-Id of its frame (NULL
//  if that key is no longer trusted).  Valid until gt_curve_tick reloads.
const gt_principal_t *gt_curve_caller (gt_curve_t *self, const char *user_id);

//  Read one subscription message from the XPUB and apply what the
//  subscriber may have; false if none was waiting.
bool gt_curve_subscription (gt_curve_t *self, zsock_t *xpub);

//  The sockets to poll (the gate's); returns how many (<= GT_CURVE_MAX_SOCKS).
#define GT_CURVE_MAX_SOCKS  GT_ZAP_MAX_SOCKS
size_t gt_curve_socks (gt_curve_t *self, zsock_t **socks);
//  Answer handshakes; re-read the clients directory when due.  Returns the
//  ms until it wants to be called again.
long gt_curve_tick (gt_curve_t *self);

//  The callback-secret of a service's certificate, or NULL.
const char *gt_curve_callback_secret (gt_curve_t *self, const char *service);

void gt_curve_counters (gt_curve_t *self, gt_curve_counters_t *counters);

#ifdef __cplusplus
}
#endif
#endif
