/*  gt_curve.c — the broker's CURVE security; the contract is in gt_curve.h.  */
#include <czmq.h>
#include "gt_proto.h"
#include "gt_log.h"
#include "gt_principals.h"
#include "gt_zap.h"
#include "gt_curve.h"

struct _gt_curve_t {
    zcert_t *cert;                  //  the broker's own certificate (with its secret key)
    gt_principals_t *principals;    //  the trusted clients
    gt_zap_t *zap;                  //  the handshake gate (bound first)
    int64_t refresh_at;             //  zclock_mono of the next look at the directory
    uint64_t subscriptions_refused; //  subscription messages not applied
    bool desynced;                  //  a message that is no subscription was read: apply none until drained
    uint64_t desyncs;               //  times that happened
};

gt_curve_t *
gt_curve_new (const gt_config_t *config, char *err, size_t err_size)
{
    assert (config && config->curve_cert && config->curve_clients);
    int major, minor, patch;
    zmq_version (&major, &minor, &patch);
    if (ZMQ_MAKE_VERSION (major, minor, patch) < GT_CURVE_MIN_ZMQ_VERSION) {
        snprintf (err, err_size, "CURVE refused: libzmq %d.%d.%d is older than 4.3.3, whose CURVE/ZAP "
                  "have known vulnerabilities (CVE-2019-13132, CVE-2020-15166); upgrade libzmq",
                  major, minor, patch);
        return NULL;
    }
    if (!zmq_has ("curve")) {
        snprintf (err, err_size, "CURVE refused: this libzmq was built without CURVE (libsodium)");
        return NULL;
    }
    //  zcert_load reads NAME_secret when it exists, so the public file's
    //  name works too; a certificate without its secret key cannot serve
    zcert_t *cert = zcert_load (config->curve_cert);
    if (!cert) {
        snprintf (err, err_size, "GC_CURVE_CERT: cannot read the certificate %s (create one with "
                  "'gtctl keygen broker')", config->curve_cert);
        return NULL;
    }
    if (streq (zcert_secret_txt (cert), "0000000000000000000000000000000000000000")) {
        snprintf (err, err_size, "GC_CURVE_CERT: %s has no secret key: give the broker its _secret file",
                  config->curve_cert);
        zcert_destroy (&cert);
        return NULL;
    }
    gt_principals_t *principals = gt_principals_new (config->curve_clients, err, err_size);
    if (!principals) {
        zcert_destroy (&cert);
        return NULL;
    }
    gt_zap_t *zap = gt_zap_new (principals, err, err_size);
    if (!zap) {
        gt_principals_destroy (&principals);
        zcert_destroy (&cert);
        return NULL;
    }
    gt_curve_t *self = (gt_curve_t *) zmalloc (sizeof (gt_curve_t));
    assert (self);
    self->cert = cert;
    self->principals = principals;
    self->zap = zap;
    self->refresh_at = zclock_mono () + GT_PRINCIPALS_REFRESH_MS;
    gt_log_info ("auth", "CURVE on: server key %s, %zu client keys trusted from %s",
                 zcert_public_txt (cert), gt_principals_size (principals), config->curve_clients);
    return self;
}

void
gt_curve_destroy (gt_curve_t **self_p)
{
    assert (self_p);
    gt_curve_t *self = *self_p;
    if (self) {
        gt_zap_destroy (&self->zap);
        gt_principals_destroy (&self->principals);
        zcert_destroy (&self->cert);
        free (self);
        *self_p = NULL;
    }
}

void
gt_curve_secure (gt_curve_t *self, zsock_t *sock, const char *name)
{
    assert (self && sock);
    zsock_set_zap_domain (sock, GT_ZAP_DOMAIN);
    zcert_apply (self->cert, sock);
    zsock_set_curve_server (sock, 1);
    zsock_set_handshake_ivl (sock, GT_CURVE_HANDSHAKE_MS);
    if (gt_zap_watch (self->zap, sock, name) == -1)
        gt_log_warn ("auth", "failed handshakes on the %s socket will not be counted", name);
}

const gt_principal_t *
gt_curve_caller (gt_curve_t *self, const char *user_id)
{
    assert (self);
    return gt_principals_lookup (self->principals, user_id);
}

bool
gt_curve_subscription (gt_curve_t *self, zsock_t *xpub)
{
    assert (self && xpub);
    void *handle = zsock_resolve (xpub);
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    if (zmq_msg_recv (&msg, handle, ZMQ_DONTWAIT) == -1) {
        zmq_msg_close (&msg);
        //  Both of libzmq's queues are empty now, hence in step again
        self->desynced = false;
        return false;
    }
    //  A subscription message is 1 (subscribe) or 0 (unsubscribe), then the prefix
    const uint8_t *data = (const uint8_t *) zmq_msg_data (&msg);
    size_t size = zmq_msg_size (&msg);
    const char *user_id = zmq_msg_gets (&msg, "User-Id");
    const gt_principal_t *who = gt_principals_lookup (self->principals, user_id);
    if (size < 1 || data [0] > 1 || zmq_msg_more (&msg)) {
        //  libzmq's manual XPUB queues the sending connection for each
        //  subscription message only, yet every read takes the next one
        //  queued: after any other message, "the connection the last
        //  message came from" is a later subscriber's.  Apply nothing until
        //  the queues are drained (EAGAIN), or one key's rights would land
        //  on another key's connection
        if (!self->desynced)
            gt_log_warn ("auth", "a subscriber (key %s) sent a message that is no subscription: "
                         "subscriptions read until the events socket is drained are not applied",
                         user_id ? user_id : "?");
        self->desynced = true;
        self->desyncs++;
        self->subscriptions_refused++;
        zmq_msg_close (&msg);
        return true;
    }
    if (!who || self->desynced) {
        self->subscriptions_refused++;
        zmq_msg_close (&msg);
        return true;
    }
    int option = data [0] == 1 ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE;
    const char *prefix = (const char *) data + 1;
    size_t length = size - 1;
    char own [GT_MAX_SERVICE_ID + 2];
    if (who->role == GT_ROLE_SERVICE) {
        int own_length = gt_service_topic (own, sizeof (own), who->service);
        assert (own_length > 0);
        bool within = length >= (size_t) own_length && memcmp (prefix, own, (size_t) own_length) == 0;
        if (!within && length < (size_t) own_length && memcmp (prefix, own, length) == 0) {
            prefix = own;           //  wider than its own ("" included): narrowed
            length = (size_t) own_length;
        }
        else
        if (!within) {
            self->subscriptions_refused++;
            gt_log_debug ("auth", "a subscription of %s (%s) to another service's events was ignored",
                          who->service, who->file);
            zmq_msg_close (&msg);
            return true;
        }
    }
    //  Manual mode: this applies to the pipe the message came from
    zmq_setsockopt (handle, option, prefix, length);
    zmq_msg_close (&msg);
    return true;
}

size_t
gt_curve_socks (gt_curve_t *self, zsock_t **socks)
{
    assert (self);
    return gt_zap_socks (self->zap, socks);
}

long
gt_curve_tick (gt_curve_t *self)
{
    assert (self);
    gt_zap_handle (self->zap);
    int64_t now = zclock_mono ();
    if (now >= self->refresh_at) {
        gt_principals_refresh (self->principals);
        self->refresh_at = now + GT_PRINCIPALS_REFRESH_MS;
    }
    return (long) (self->refresh_at - now);
}

const char *
gt_curve_callback_secret (gt_curve_t *self, const char *service)
{
    assert (self);
    return gt_principals_callback_secret (self->principals, service);
}

void
gt_curve_counters (gt_curve_t *self, gt_curve_counters_t *counters)
{
    assert (self && counters);
    counters->principals = gt_principals_size (self->principals);
    counters->handshakes = gt_zap_accepted (self->zap);
    counters->handshakes_failed = gt_zap_failed (self->zap);
    counters->keys_refused = gt_zap_refused (self->zap);
}
