"""Console and API accounts: users with roles, API keys and browser sessions.

Passwords are kept as scrypt hashes (``hashlib.scrypt``: memory-hard, in the standard library).
API keys and session tokens are 256-bit random secrets, so one SHA-256 of each is enough to keep
(nothing to guess by brute force) and lets a request find its row by an index. Every change to
an account or key is appended to the audit log in the same transaction; logins and lookups are
not (they change nothing a court would ask about).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ledger import audit
from ledger.clock import Clock
from ledger.errors import ConflictError, LedgerError, NotFoundError
from ledger.models import ApiKey, RightsHolder, Role, User, WebSession

MIN_PASSWORD_LENGTH = 12
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,99}$")
# scrypt cost: 16 MiB and about 50 ms a check here, OWASP's recommended minimum.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_KEY_PREFIX = "cgk_"
# A well-formed hash of a password nobody has: checked when the user does not exist, so a
# login takes as long for an unknown name as for a wrong password.
_DECOY_HASH: str | None = None


@dataclass(frozen=True)
class Principal:
    """Who makes a request, as the web layer and the services need it."""

    user_id: int
    username: str
    role: str
    holder_id: int | None

    @property
    def actor(self) -> str:
        """The audit log's name for this person."""
        return f"user:{self.username}"

    @property
    def scope(self) -> int | None:
        """The one holder whose rows this principal may see; None: every holder's."""
        return self.holder_id if self.role in Role.SCOPED else None


def principal_of(user: User) -> Principal:
    return Principal(user.id, user.username, user.role, user.holder_id)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    return "$".join(("scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P),
                     _b64(salt), _b64(digest)))


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise LedgerError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def add_user(session: Session, clock: Clock, *, username: str, role: str, actor: str,
             holder: str | None = None, password: str | None = None) -> User:
    """A new account. ``holder`` and ``legal`` accounts name their rights-holder; the others
    must not. Without a password the account can use API keys only."""
    if not _USERNAME.match(username):
        raise LedgerError(f"{username!r} is not a user name (letters, digits and ._@-, "
                          "2 to 100 characters)")
    if role not in Role.ALL:
        raise LedgerError(f"unknown role {role!r}: one of {', '.join(Role.ALL)}")
    holder_id: int | None = None
    if role in Role.SCOPED:
        if not holder:
            raise LedgerError(f"a {role} account belongs to one rights-holder: name it")
        row = session.scalar(select(RightsHolder).where(RightsHolder.name == holder))
        if row is None:
            raise NotFoundError(f"no rights-holder named {holder!r}")
        holder_id = row.id
    elif holder:
        raise LedgerError(f"an {role} account sees every rights-holder: it names none")
    if password is not None:
        _check_password_rules(password)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ConflictError(f"a user named {username!r} already exists")
    user = User(username=username, role=role, holder_id=holder_id,
                password_hash=hash_password(password) if password is not None else None,
                created_at=clock.now())
    session.add(user)
    session.flush()
    audit.append(session, clock, actor=actor, action="user.added", entity_type="user",
                 entity_id=user.id, holder_id=holder_id,
                 details={"username": username, "role": role, "password": password is not None})
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"no user named {username!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def set_password(session: Session, clock: Clock, username: str, password: str, *,
                 actor: str) -> User:
    _check_password_rules(password)
    user = get_user(session, username)
    user.password_hash = hash_password(password)
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    audit.append(session, clock, actor=actor, action="user.password_set", entity_type="user",
                 entity_id=user.id, holder_id=user.holder_id, details={"username": username})
    return user


def disable_user(session: Session, clock: Clock, username: str, *, actor: str) -> User:
    """The account can no longer log in or use its keys; its sessions end now."""
    user = get_user(session, username)
    if user.disabled_at is None:
        user.disabled_at = clock.now()
        session.execute(delete(WebSession).where(WebSession.user_id == user.id))
        audit.append(session, clock, actor=actor, action="user.disabled", entity_type="user",
                     entity_id=user.id, holder_id=user.holder_id,
                     details={"username": username})
    return user


def issue_api_key(session: Session, clock: Clock, username: str, name: str, *,
                  actor: str) -> tuple[ApiKey, str]:
    """A new key for the user; the secret is returned once and never stored."""
    user = get_user(session, username)
    if user.disabled_at is not None:
        raise LedgerError(f"user {username!r} is disabled")
    prefix = secrets.token_hex(4)
    secret = f"{_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(user_id=user.id, name=name.strip() or "key", prefix=prefix,
                 key_sha256=_sha256(secret), created_at=clock.now())
    session.add(key)
    session.flush()
    audit.append(session, clock, actor=actor, action="api_key.issued", entity_type="api_key",
                 entity_id=key.id, holder_id=user.holder_id,
                 details={"username": username, "name": key.name, "prefix": prefix})
    return key, secret


def list_api_keys(session: Session, username: str) -> list[ApiKey]:
    user = get_user(session, username)
    return list(session.scalars(select(ApiKey).where(ApiKey.user_id == user.id)
                                .order_by(ApiKey.id)))


def revoke_api_key(session: Session, clock: Clock, prefix: str, *, actor: str) -> ApiKey:
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None:
        raise NotFoundError(f"no API key {prefix!r}")
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        user = session.get(User, key.user_id)
        audit.append(session, clock, actor=actor, action="api_key.revoked",
                     entity_type="api_key", entity_id=key.id,
                     holder_id=user.holder_id if user else None,
                     details={"prefix": prefix, "name": key.name})
    return key


def authenticate_key(session: Session, clock: Clock, secret: str) -> Principal | None:
    """The principal of a live key of an enabled user, or None."""
    match = re.fullmatch(rf"{_KEY_PREFIX}([0-9a-f]{{8}})_[A-Za-z0-9_-]{{43}}", secret)
    if match is None:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == match.group(1)))
    if key is None or key.revoked_at is not None \
            or not hmac.compare_digest(key.key_sha256, _sha256(secret)):
        return None
    user = session.get(User, key.user_id)
    if user is None or user.disabled_at is not None:
        return None
    now = clock.now()
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        key.last_used_at = now  # at most once a minute: a busy client writes little
    return principal_of(user)


def authenticate_password(session: Session, username: str, password: str) -> Principal | None:
    global _DECOY_HASH
    user = session.scalar(select(User).where(User.username == username))
    if user is None or user.password_hash is None:
        _DECOY_HASH = _DECOY_HASH or hash_password(secrets.token_hex(16))
        check_password(password, _DECOY_HASH)
        return None
    if not check_password(password, user.password_hash) or user.disabled_at is not None:
        return None
    return principal_of(user)


@dataclass(frozen=True)
class OpenedSession:
    token: str  # for the cookie; only its SHA-256 is kept
    csrf_token: str
    expires_at: datetime


def open_session(session: Session, clock: Clock, principal: Principal,
                 lifetime: timedelta) -> OpenedSession:
    now = clock.now()
    # Ended sessions go as new ones begin: the table holds only live ones.
    session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(WebSession(token_sha256=_sha256(token), user_id=principal.user_id,
                           csrf_token=csrf, created_at=now, expires_at=now + lifetime))
    return OpenedSession(token, csrf, now + lifetime)


def session_principal(session: Session, clock: Clock,
                      token: str) -> tuple[Principal, str] | None:
    """The principal and CSRF token of a live session, or None."""
    row = session.scalar(select(WebSession).where(WebSession.token_sha256 == _sha256(token)))
    if row is None or row.expires_at <= clock.now():
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    return principal_of(user), row.csrf_token


def close_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_sha256 == _sha256(token)))
