/*  gt_client_keys.h — a client's CURVE settings (GTLP.md §12), named alike
    in every SDK and in gtctl:
        server key   GT_SERVER_KEY, --server-key: the broker's public key as
                     40 Z85 characters, or the path of a certificate file
                     whose public-key is used (gtctl keygen writes them)
        client cert  GT_CLIENT_CERT, --client-cert: the path of the client's
                     SECRET certificate file (NAME_secret)
    Both or neither: half a pair is an error.  */
#ifndef GT_CLIENT_KEYS_H_INCLUDED
#define GT_CLIENT_KEYS_H_INCLUDED

#include <czmq.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _gt_client_keys_t gt_client_keys_t;

//  Read the settings (NULL arguments: from GT_SERVER_KEY / GT_CLIENT_CERT).
//  Returns NULL when neither is set (*err empty: plaintext), or NULL with
//  a message in err when they cannot be used.
gt_client_keys_t *gt_client_keys_new (const char *server_key, const char *client_cert,
                                      char *err, size_t err_size);
void gt_client_keys_destroy (gt_client_keys_t **self_p);
//  Make sock a CURVE client of the broker (before it connects).
void gt_client_keys_apply (gt_client_keys_t *self, zsock_t *sock);
//  The client's public key (Z85).
const char *gt_client_keys_public (gt_client_keys_t *self);

#ifdef __cplusplus
}
#endif
#endif
