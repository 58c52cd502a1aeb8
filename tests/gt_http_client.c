/*  gt_http_client.c — a minimal HTTP/1.0 client for the tests (see
    gt_http_client.h).  */
#include <czmq.h>
#include <netdb.h>
#include <poll.h>
#include "gt_http_client.h"

char *
gt_http_client_request (int port, const char *method, const char *path,
                        int *status_p, char **content_type_p)
{
    if (content_type_p)
        *content_type_p = NULL;
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return NULL;
    struct sockaddr_in address;
    memset (&address, 0, sizeof (address));
    address.sin_family = AF_INET;
    address.sin_port = htons ((uint16_t) port);
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (connect (fd, (struct sockaddr *) &address, sizeof (address)) == -1) {
        close (fd);
        return NULL;
    }
    char request [512];
    int length = snprintf (request, sizeof (request), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
                           method, path);
    if (write (fd, request, (size_t) length) != length) {
        close (fd);
        return NULL;
    }
    //  Read to the end (HTTP/1.0: the server closes), 10 s at most
    size_t size = 0, cap = 65536;
    char *data = (char *) malloc (cap);
    assert (data);
    int64_t deadline = zclock_mono () + 10000;
    bool complete = false;
    while (zclock_mono () < deadline) {
        struct pollfd item = { fd, POLLIN, 0 };
        if (poll (&item, 1, (int) (deadline - zclock_mono ())) <= 0)
            break;
        if (size + 4096 > cap) {
            cap *= 2;
            data = (char *) realloc (data, cap);
            assert (data);
        }
        ssize_t got = read (fd, data + size, cap - size - 1);
        if (got <= 0) {
            complete = got == 0;
            break;
        }
        size += (size_t) got;
    }
    close (fd);
    data [size] = 0;
    char *body = strstr (data, "\r\n\r\n");
    int status = 0;
    if (!complete || !body || sscanf (data, "HTTP/1.%*d %d", &status) != 1) {
        free (data);
        return NULL;
    }
    *body = 0;
    body += 4;
    if (content_type_p) {
        //  Header names are case-insensitive
        for (char *line = strstr (data, "\r\n"); line && line [2]; line = strstr (line + 2, "\r\n"))
            if (strncasecmp (line + 2, "Content-Type:", 13) == 0) {
                char *value = line + 2 + 13;
                while (*value == ' ' || *value == '\t')
                    value++;
                char *end = strstr (value, "\r\n");
                *content_type_p = end ? strndup (value, (size_t) (end - value)) : strdup (value);
                break;
            }
    }
    *status_p = status;
    char *result = strdup (body);
    free (data);
    return result;
}
