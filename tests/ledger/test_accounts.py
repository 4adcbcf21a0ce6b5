"""Console and API accounts on SQLite and PostgreSQL: roles bound to holders, passwords, API
keys that are stored hashed and can be revoked, sessions that end on logout and on disabling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from ledger import accounts, audit
from ledger.clock import FixedClock
from ledger.db import Ledger
from ledger.errors import ConflictError, LedgerError, NotFoundError
from ledger.holders import add_holder
from ledger.models import ApiKey, AuditEntry, Role, User, WebSession

PASSWORD = "correct horse battery"


@pytest.fixture
def holders(ledger: Ledger) -> Ledger:
    with ledger.write() as session:
        for name in ("Acme", "Other"):
            add_holder(session, ledger.clock, name=name, email=f"legal@{name.lower()}.example",
                       actor="test")
    return ledger


def test_scoped_roles_name_their_holder_and_the_others_none(holders: Ledger) -> None:
    with holders.write() as session:
        alice = accounts.add_user(session, holders.clock, username="alice", role=Role.HOLDER,
                                  holder="Acme", password=PASSWORD, actor="test")
        root = accounts.add_user(session, holders.clock, username="root", role=Role.ADMIN,
                                 password=PASSWORD, actor="test")
        assert accounts.principal_of(alice).scope == alice.holder_id is not None
        assert accounts.principal_of(root).scope is None
        assert accounts.principal_of(alice).actor == "user:alice"
    bad = [dict(username="bob", role=Role.LEGAL),  # no holder
           dict(username="carol", role=Role.OPERATOR, holder="Acme"),
           dict(username="dave", role="superuser"),
           dict(username="x", role=Role.ADMIN),  # too short a name
           dict(username="eve", role=Role.HOLDER, holder="Nobody"),
           dict(username="frank", role=Role.ADMIN, password="short")]
    for fields in bad:
        with pytest.raises(LedgerError), holders.write() as session:
            accounts.add_user(session, holders.clock, actor="test", **fields)
    with pytest.raises(ConflictError), holders.write() as session:
        accounts.add_user(session, holders.clock, username="alice", role=Role.ADMIN,
                          actor="test")
    with holders.read() as session:
        assert [u.username for u in accounts.list_users(session)] == ["alice", "root"]


def test_passwords_are_hashed_and_checked(holders: Ledger) -> None:
    with holders.write() as session:
        accounts.add_user(session, holders.clock, username="alice", role=Role.HOLDER,
                          holder="Acme", password=PASSWORD, actor="test")
    with holders.read() as session:
        stored = session.scalar(select(User.password_hash))
        assert stored and PASSWORD not in stored and stored.startswith("scrypt$")
        assert accounts.authenticate_password(session, "alice", PASSWORD) is not None
        assert accounts.authenticate_password(session, "alice", PASSWORD + "!") is None
        assert accounts.authenticate_password(session, "nobody", PASSWORD) is None
    assert not accounts.check_password(PASSWORD, "md5$abc")


def test_api_keys_work_until_revoked_and_only_their_hash_is_kept(holders: Ledger) -> None:
    clock = holders.clock
    with holders.write() as session:
        accounts.add_user(session, clock, username="svc", role=Role.OPERATOR, actor="test")
        key, secret = accounts.issue_api_key(session, clock, "svc", "ci", actor="test")
        prefix = key.prefix
    with holders.write() as session:
        assert session.scalar(select(ApiKey.key_sha256)) != secret
        principal = accounts.authenticate_key(session, clock, secret)
        assert principal is not None and principal.username == "svc"
        tampered = secret[:-1] + ("B" if secret.endswith("A") else "A")
        assert accounts.authenticate_key(session, clock, tampered) is None
        assert accounts.authenticate_key(session, clock, "not a key") is None
        accounts.revoke_api_key(session, clock, prefix, actor="test")
    with holders.write() as session:
        assert accounts.authenticate_key(session, clock, secret) is None
    with pytest.raises(NotFoundError), holders.write() as session:
        accounts.revoke_api_key(session, clock, "ffffffff", actor="test")


def test_sessions_end_on_logout_expiry_and_when_the_user_is_disabled(holders: Ledger) -> None:
    clock = holders.clock
    assert isinstance(clock, FixedClock)
    with holders.write() as session:
        user = accounts.add_user(session, clock, username="alice", role=Role.HOLDER,
                                 holder="Acme", password=PASSWORD, actor="test")
        principal = accounts.principal_of(user)
        first = accounts.open_session(session, clock, principal, timedelta(hours=1))
        second = accounts.open_session(session, clock, principal, timedelta(hours=1))
        _, secret = accounts.issue_api_key(session, clock, "alice", "laptop", actor="test")
    with holders.write() as session:
        found = accounts.session_principal(session, clock, first.token)
        assert found == (principal, first.csrf_token)
        accounts.close_session(session, first.token)
        assert accounts.session_principal(session, clock, first.token) is None
        assert accounts.session_principal(session, clock, second.token) is not None
    clock.advance(timedelta(hours=2))
    with holders.write() as session:
        assert accounts.session_principal(session, clock, second.token) is None
        third = accounts.open_session(session, clock, principal, timedelta(hours=1))
        assert session.scalar(select(WebSession.id).where(
            WebSession.expires_at <= clock.now())) is None  # the expired one is gone
        accounts.disable_user(session, clock, "alice", actor="test")
    with holders.write() as session:
        assert accounts.session_principal(session, clock, third.token) is None
        assert accounts.authenticate_key(session, clock, secret) is None
        assert accounts.authenticate_password(session, "alice", PASSWORD) is None


def test_account_changes_are_in_the_audit_chain(holders: Ledger) -> None:
    clock = holders.clock
    with holders.write() as session:
        accounts.add_user(session, clock, username="alice", role=Role.LEGAL, holder="Acme",
                          actor="test")
        key, _ = accounts.issue_api_key(session, clock, "alice", "k", actor="test")
        accounts.revoke_api_key(session, clock, key.prefix, actor="test")
        accounts.set_password(session, clock, "alice", PASSWORD, actor="test")
        accounts.disable_user(session, clock, "alice", actor="test")
    with holders.read() as session:
        actions = list(session.scalars(select(AuditEntry.action).where(
            AuditEntry.entity_type.in_(("user", "api_key"))).order_by(AuditEntry.seq)))
        assert actions == ["user.added", "api_key.issued", "api_key.revoked",
                           "user.password_set", "user.disabled"]
        assert audit.verify_chain(session).ok
