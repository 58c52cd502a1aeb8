/*  gt_client_keys.c — a client's CURVE settings; contract in gt_client_keys.h.  */
#include "gt_client_keys.h"

struct _gt_client_keys_t {
    char server_key [41];           //  the broker's public key, Z85
    zcert_t *cert;                  //  the client's certificate, with its secret key
};

gt_client_keys_t *
gt_client_keys_new (const char *server_key, const char *client_cert, char *err, size_t err_size)
{
    snprintf (err, err_size, "%s", "");
    if (!server_key || !*server_key)
        server_key = getenv ("GT_SERVER_KEY");
    if (!client_cert || !*client_cert)
        client_cert = getenv ("GT_CLIENT_CERT");
    bool has_server = server_key && *server_key, has_client = client_cert && *client_cert;
    if (!has_server && !has_client)
        return NULL;
    if (!has_server || !has_client) {
        snprintf (err, err_size, "CURVE needs both the server key (GT_SERVER_KEY, --server-key) and the "
                  "client certificate (GT_CLIENT_CERT, --client-cert)");
        return NULL;
    }
    gt_client_keys_t *self = (gt_client_keys_t *) zmalloc (sizeof (gt_client_keys_t));
    assert (self);
    //  '/', '.' and '-' are Z85 characters: a 40-character path could pass
    //  for a key, so an existing file wins
    uint8_t binary [32];
    if (!zsys_file_exists (server_key) && strlen (server_key) == 40 && zmq_z85_decode (binary, server_key))
        snprintf (self->server_key, sizeof (self->server_key), "%s", server_key);
    else {
        //  A certificate file: its public key
        zcert_t *server = zcert_load (server_key);
        if (!server) {
            snprintf (err, err_size, "server key '%s' is neither 40 Z85 characters nor a certificate file",
                      server_key);
            free (self);
            return NULL;
        }
        snprintf (self->server_key, sizeof (self->server_key), "%s", zcert_public_txt (server));
        zcert_destroy (&server);
    }
    self->cert = zcert_load (client_cert);
    if (!self->cert || streq (zcert_secret_txt (self->cert), "0000000000000000000000000000000000000000")) {
        snprintf (err, err_size, "client certificate '%s' %s", client_cert,
                  self->cert ? "has no secret key (give the NAME_secret file)" : "cannot be read");
        zcert_destroy (&self->cert);
        free (self);
        return NULL;
    }
    return self;
}

void
gt_client_keys_destroy (gt_client_keys_t **self_p)
{
    assert (self_p);
    gt_client_keys_t *self = *self_p;
    if (self) {
        zcert_destroy (&self->cert);
        free (self);
        *self_p = NULL;
    }
}

void
gt_client_keys_apply (gt_client_keys_t *self, zsock_t *sock)
{
    assert (self && sock);
    zcert_apply (self->cert, sock);
    zsock_set_curve_serverkey (sock, self->server_key);
}

const char *
gt_client_keys_public (gt_client_keys_t *self)
{
    assert (self);
    return zcert_public_txt (self->cert);
}
