# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The key of a keyed repository (format version 2, docs/repository-format.md, "Keyed repositories").

A random 32-byte data key lives in ``key.json``, wrapped (AES-256-GCM) by a key-encryption key that
scrypt derives from the operator's key; the wrap binds the repository id and the mode, so neither
can be swapped without the key. HKDF derives three sub-keys from the data key: one names chunks
(HMAC-SHA256 of the content, so ids reveal nothing), one authenticates (HMAC-SHA256, mode
``authenticated``), one encrypts (AES-256-GCM, mode ``encrypted``). Every sealed object carries its
context (chunk id, or backup id) as associated data, so an object moved to another name or
replayed from another repository fails its check. Readers call ``open_*`` before parsing anything.

Rotation re-wraps the same data key under a new operator key: chunks and manifests stay as they are.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - checked when a key is used
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = exc

MODES = ("authenticated", "encrypted")
KEY_FILE_FORMAT = "bim-backup-repository-key"
# scrypt at 2**15 x 8: ~32 MiB and a fraction of a second once per run, a lot for a guesser.
SCRYPT_PARAMS = {"n": 2 ** 15, "r": 8, "p": 1}
NONCE_SIZE = 12
TAG_SIZE = 32
MIN_KEY_LENGTH = 16


class KeyFileError(Exception):
    """A key problem whose message is safe to show (never contains key material)."""


class MissingCryptography(KeyFileError):
    """The cryptography library is needed for a keyed repository and is not installed."""

    def __init__(self):
        super().__init__("the Python library cryptography is required for a keyed backup repository")
        self.library = "cryptography"
        self.exception = CRYPTOGRAPHY_IMPORT_ERROR


def _need_crypto():
    if not HAS_CRYPTOGRAPHY:
        raise MissingCryptography()


def _check_passphrase(passphrase):
    if not isinstance(passphrase, str) or len(passphrase) < MIN_KEY_LENGTH:
        raise KeyFileError("a repository key must be a string of at least %d characters" % MIN_KEY_LENGTH)
    return passphrase.encode("utf-8")


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _unb64(text):
    return base64.b64decode(text.encode("ascii"), validate=True)


def _kek(passphrase, salt, params):
    return _scrypt(_check_passphrase(passphrase), salt, params["n"], params["r"], params["p"])


@functools.lru_cache(maxsize=4)
def _scrypt(secret, salt, n, r, p):
    """scrypt, once per run for each (key, salt, parameters): a backup with copies and a restore
    from a secondary open several folders holding the same key.json, and each derivation costs
    ~0.08 s of CPU. The cache lives as long as the module's process, which holds the key anyway."""
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(secret)


def _wrap_context(repository_id, mode):
    return json.dumps({"format": KEY_FILE_FORMAT, "repository_id": repository_id, "mode": mode},
                      sort_keys=True, separators=(",", ":")).encode("utf-8")


def wrap(data_key, passphrase, repository_id, mode):
    """The ``key.json`` document holding ``data_key`` wrapped under ``passphrase``."""
    _need_crypto()
    salt = os.urandom(16)
    nonce = os.urandom(NONCE_SIZE)
    wrapped = AESGCM(_kek(passphrase, salt, SCRYPT_PARAMS)).encrypt(nonce, data_key, _wrap_context(repository_id, mode))
    return {"format": KEY_FILE_FORMAT, "version": 1, "repository_id": repository_id, "mode": mode,
            "kdf": dict(SCRYPT_PARAMS, name="scrypt", salt=_b64(salt)),
            "wrap": {"name": "aes-256-gcm", "nonce": _b64(nonce), "data_key": _b64(wrapped)}}


def unwrap(document, passphrase, repository_id, where):
    """The data key of ``document`` (key.json); KeyFileError on a wrong key or an altered file."""
    _need_crypto()
    try:
        if document.get("format") != KEY_FILE_FORMAT or document.get("version") != 1:
            raise ValueError("unknown key file format")
        if document.get("mode") not in MODES:
            raise ValueError("unknown mode %r" % (document.get("mode"),))
        kdf = document["kdf"]
        if kdf.get("name") != "scrypt":
            raise ValueError("unknown key derivation %r" % (kdf.get("name"),))
        params = {"n": int(kdf["n"]), "r": int(kdf["r"]), "p": int(kdf["p"])}
        if params["n"] > 2 ** 20 or params["r"] > 32 or params["p"] > 16:
            raise ValueError("key derivation parameters out of range")
        salt, nonce, wrapped = _unb64(kdf["salt"]), _unb64(document["wrap"]["nonce"]), _unb64(document["wrap"]["data_key"])
        kek = _kek(passphrase, salt, params)
    except KeyFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise KeyFileError("the key file of %s is malformed (%s)" % (where, exc))
    try:
        return AESGCM(kek).decrypt(nonce, wrapped, _wrap_context(repository_id, document["mode"]))
    except (InvalidTag, ValueError):
        raise KeyFileError("the repository key does not open %s (wrong key, or its key.json or config.json "
                           "was altered)" % where)


class RepositoryKey:
    """The sub-keys of one data key and the seal/open operations of a keyed repository."""

    def __init__(self, data_key, mode):
        _need_crypto()
        if mode not in MODES:
            raise KeyFileError("unknown repository mode %r" % (mode,))
        self.mode = mode
        self.data_key = data_key
        self._id_key = self._derive(b"bim chunk ids")
        self._mac_key = self._derive(b"bim authentication")
        self._aead = AESGCM(self._derive(b"bim encryption")) if mode == "encrypted" else None

    @classmethod
    def generate(cls, mode):
        return cls(os.urandom(32), mode)

    def _derive(self, info):
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(self.data_key)

    @property
    def encrypted(self):
        return self._aead is not None

    def chunk_id(self, data):
        """The keyed name of a chunk's content (hex, 64 digits like an unkeyed one)."""
        return hmac.new(self._id_key, data, hashlib.sha256).hexdigest()

    def _seal(self, context, payload):
        if self._aead is not None:
            nonce = os.urandom(NONCE_SIZE)
            return nonce + self._aead.encrypt(nonce, payload, context)
        return payload + hmac.new(self._mac_key, context + payload, hashlib.sha256).digest()

    def _open(self, context, sealed):
        """The payload of ``sealed`` or None when it is not authentic in ``context``."""
        if self._aead is not None:
            if len(sealed) < NONCE_SIZE + 16:
                return None
            try:  # a view, not a copy, of the ciphertext
                return self._aead.decrypt(sealed[:NONCE_SIZE], memoryview(sealed)[NONCE_SIZE:], context)
            except InvalidTag:
                return None
        if len(sealed) < TAG_SIZE:
            return None
        payload = sealed[:-TAG_SIZE]
        mac = hmac.new(self._mac_key, context, hashlib.sha256)
        mac.update(payload)  # not context + payload: that would copy every chunk once more
        return payload if hmac.compare_digest(sealed[-TAG_SIZE:], mac.digest()) else None

    @staticmethod
    def _chunk_context(chunk_id):
        return b"bim chunk\x00" + chunk_id.encode("ascii")

    @staticmethod
    def _manifest_context(backup_id):
        return b"bim manifest\x00" + backup_id.encode("ascii")

    def seal_chunk(self, chunk_id, frame):
        return self._seal(self._chunk_context(chunk_id), frame)

    def open_chunk(self, chunk_id, stored):
        return self._open(self._chunk_context(chunk_id), stored)

    def seal_manifest(self, backup_id, text):
        return self._seal(self._manifest_context(backup_id), text)

    def open_manifest(self, backup_id, stored):
        return self._open(self._manifest_context(backup_id), stored)


def key_argument_spec():
    """Argument spec of the ``repository_key`` option (doc fragment bim.wall_system.repository_key)."""
    return dict(repository_key=dict(type="str", no_log=True))
