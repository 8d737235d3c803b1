"""Key hashing, key ids and the constant-time lookup of a presented key.

Client keys are long random tokens, so one SHA-256 is the right hash: a slow password hash
(bcrypt, argon2) protects guessable passwords and would cost milliseconds on every request.
The key id (the first 12 hex digits of the hash) names a key in logs, metrics and the admin
API; it identifies the key without revealing anything that helps to forge it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from pathlib import Path

__all__ = ["KEY_PREFIX", "hash_key", "key_id", "new_key", "presented_key", "read_hash"]

KEY_PREFIX = "rg-"


def new_key() -> str:
    """A fresh client key: 256 random bits, URL-safe, recognisable by its prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def key_id(key_hash: str) -> str:
    """The short, public name of a key: safe in logs, metrics and admin answers."""
    return key_hash.removeprefix("sha256:")[:12]


def read_hash(path: str) -> str:
    """A hash kept in a file (a Kubernetes Secret mounted as a file)."""
    return Path(path).read_text(encoding="utf-8").strip()


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a client sent: ``x-api-key`` (Anthropic SDK) or a bearer token (OpenAI SDK)."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    header = headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None
