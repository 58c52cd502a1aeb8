"""CURVE (ZeroMQ RFC 26): the client side of an authenticated broker.

A broker started with a certificate (``--curve-cert``) accepts only the
clients whose public keys it trusts (``--curve-clients``), and binds each key
to a service and a role (GTLP.md §12).  A client then needs two settings,
named alike in every GarbageTruck SDK and gtctl:

* the broker's public key: ``server_key=``, else ``$GT_SERVER_KEY`` -- the
  40-character Z85 key, or the path of a certificate file of the broker (its
  ``public-key`` is used; the public certificate is enough);
* the client's secret certificate file: ``client_cert=``, else
  ``$GT_CLIENT_CERT`` -- the ``NAME_secret`` file ``gtctl keygen NAME``
  writes, or pyzmq's ``NAME.key_secret``.

An argument wins over the environment; ``""`` means none, whatever the
environment says.  Neither set: plaintext.  Only one of the two: a
:class:`~garbagetruck.errors.InvalidArgument` (a ``ValueError``), because a
client that meant to authenticate must not quietly talk plaintext.

The keys go on the request socket (DEALER) and on the events socket (SUB)
before they connect.  A broker that refuses the handshake (unknown key, or
no CURVE on one side) sends nothing back: calls time out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Tuple, Union

import zmq
import zmq.auth

from .errors import InvalidArgument

__all__ = ["CurveKeys", "ENV_SERVER_KEY", "ENV_CLIENT_CERT", "curve_settings", "resolve_curve", "load_server_key"]

#: The environment variables read when the corresponding argument is not given.
ENV_SERVER_KEY = "GT_SERVER_KEY"
ENV_CLIENT_CERT = "GT_CLIENT_CERT"

_Z85 = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")

PathOrKey = Union[str, "os.PathLike[str]", bytes, None]


def _is_z85_key(value: str) -> bool:
    return len(value) == 40 and all(c in _Z85 for c in value)


@dataclass(frozen=True)
class CurveKeys:
    """The three Z85 keys of a CURVE client socket."""

    server_key: bytes
    public_key: bytes
    secret_key: bytes

    def apply(self, sock: "zmq.Socket[Any]") -> None:
        """Make ``sock`` a CURVE client of the broker (call before connect:
        the options apply to connections made afterwards)."""
        sock.setsockopt(zmq.CURVE_SERVERKEY, self.server_key)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public_key)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret_key)

    def __repr__(self) -> str:  # never print the secret key
        return f"CurveKeys(server_key={self.server_key.decode()!r}, public_key={self.public_key.decode()!r})"


def _setting(value: PathOrKey, argument: str, env: str) -> Tuple[str, str]:
    """The value of a setting and where it came from (for error messages)."""
    if value is not None:
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        return os.fspath(value), argument
    return os.environ.get(env, ""), f"${env}"


def _load(path: str, source: str) -> Tuple[bytes, Optional[bytes]]:
    try:
        return zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise InvalidArgument(None, f"CURVE: {source}: cannot read the certificate {path!r}: {exc}") from None


def load_server_key(value: str, source: str = "server_key") -> bytes:
    """The broker's Z85 public key from a 40-character key or a certificate file.

    An existing file wins: '/', '.' and '-' are Z85 characters, so a path of
    40 characters (``/tmp/gt-curve-xxxxxxxx/server/server.key``) reads as a
    well-formed key too."""
    if _is_z85_key(value) and not os.path.isfile(value):
        return value.encode("ascii")
    if not os.path.exists(value):
        raise InvalidArgument(
            None, f"CURVE: {source} is neither a 40-character Z85 key nor an existing certificate file: {value!r}"
        )
    public, _ = _load(value, source)
    if not _is_z85_key(public.decode("ascii", "replace")):
        raise InvalidArgument(None, f"CURVE: {source}: {value!r} has no valid public-key")
    return public


def curve_settings(server_key: PathOrKey = None, client_cert: PathOrKey = None) -> Tuple[str, str]:
    """The effective ``(server_key, client_cert)``: each argument, or its
    environment variable when the argument is None ("" = not set).  Passing
    them on as arguments keeps a later change of the environment out."""
    return _setting(server_key, "", ENV_SERVER_KEY)[0], _setting(client_cert, "", ENV_CLIENT_CERT)[0]


def resolve_curve(server_key: PathOrKey = None, client_cert: PathOrKey = None) -> Optional[CurveKeys]:
    """The CURVE keys of a client, or None for plaintext.

    ``server_key`` / ``client_cert`` as in the module docs, falling back to
    ``$GT_SERVER_KEY`` / ``$GT_CLIENT_CERT``.  Raises InvalidArgument (a
    ValueError) when only one of the two is set, or a key or file is unusable."""
    server, server_source = _setting(server_key, "server_key", ENV_SERVER_KEY)
    cert, cert_source = _setting(client_cert, "client_cert", ENV_CLIENT_CERT)
    if not server and not cert:
        return None
    if not cert:
        raise InvalidArgument(
            None,
            f"CURVE: the server key is set ({server_source}) but no client certificate: "
            f"pass client_cert= or set ${ENV_CLIENT_CERT} too",
        )
    if not server:
        raise InvalidArgument(
            None,
            f"CURVE: the client certificate is set ({cert_source}) but no server key: "
            f"pass server_key= or set ${ENV_SERVER_KEY} too",
        )
    if not zmq.has("curve"):
        raise InvalidArgument(None, "CURVE: this libzmq was built without CURVE support")
    public, secret = _load(cert, cert_source)
    if not secret:
        raise InvalidArgument(
            None,
            f"CURVE: {cert_source}: {cert!r} has no secret-key: it is a public certificate; "
            "give the secret one (NAME_secret, or pyzmq's NAME.key_secret)",
        )
    for name, key in (("public-key", public), ("secret-key", secret)):
        if not _is_z85_key(key.decode("ascii", "replace")):
            raise InvalidArgument(None, f"CURVE: {cert_source}: {cert!r}: {name} is not a 40-character Z85 key")
    return CurveKeys(server_key=load_server_key(server, server_source), public_key=public, secret_key=secret)
