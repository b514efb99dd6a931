"""People who may write: password sign-in for the web UI and bearer tokens for the API."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlmodel import Session, select

from kb.errors import Conflict, KBError
from kb.models import User

SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """Return a salted scrypt hash of a password, as 'scrypt$salt$hash' in hex."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Return whether password matches a hash made by hash_password."""
    try:
        scheme, salt, _digest = stored.split("$")
    except ValueError:
        return False
    return scheme == "scrypt" and hmac.compare_digest(hash_password(password, salt=bytes.fromhex(salt)), stored)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(*, session: Session, name: str, password: str) -> tuple[User, str]:
    """Create a user and return it with its new API token, shown only this once."""
    name = name.strip()
    if not name or len(name) > 100:
        raise KBError("a user name needs 1 to 100 characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise KBError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if session.exec(select(User).where(User.name == name)).first():
        raise Conflict(f"user {name!r} already exists")
    token = secrets.token_urlsafe(32)
    user = User(name=name, password_hash=hash_password(password), api_token_hash=_token_hash(token))
    session.add(user)
    return user, token


def authenticate(*, session: Session, name: str, password: str) -> User | None:
    """Return the user with this name and password, or None."""
    user = session.exec(select(User).where(User.name == name.strip())).first()
    if user is None:
        hash_password(password)  # spend the same time as a real check
        return None
    return user if check_password(password, user.password_hash) else None


def user_for_token(*, session: Session, token: str) -> User | None:
    """Return the user whose API token this is, or None."""
    if not token:
        return None
    return session.exec(select(User).where(User.api_token_hash == _token_hash(token))).first()
