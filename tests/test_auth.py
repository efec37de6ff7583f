"""Users, sign-in and lockout, roles and permissions, sessions, rate limits, audited CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from audit.log import AUDIT_DB_NAME, AuditLog
from auth.roles import (
    PAGES,
    Permission,
    access_groups,
    allowed_pages,
    can,
    permissions,
    require,
)
from auth.service import UNKNOWN_USER, AuthService, UserAdmin
from auth.session import RateLimited, RateLimiter, SessionClock
from auth.store import (
    GENERIC_AUTH_FAILURE,
    USERS_DB_NAME,
    AuthError,
    PasswordPolicyError,
    User,
    UserError,
    UserStore,
)
from core.errors import AccessDenied, CQAError
from core.schema import SearchFilter
from retrieval.store.base import filter_conditions
from tests.helpers import EVERYTHING

REPO = Path(__file__).resolve().parents[1]
PW = "correct-horse-42"
T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)


def fast_hasher(**kwargs: int) -> PasswordHasher:
    """Real argon2id with small parameters so the suite stays fast."""
    params = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1} | kwargs
    return PasswordHasher(**params)


@pytest.fixture()
def store(state_target) -> UserStore:
    """The user store on SQLite and on PostgreSQL."""
    return UserStore(state_target("users"), hasher=fast_hasher())


@pytest.fixture()
def audit(tmp_path: Path, state_target) -> AuditLog:
    return AuditLog(state_target("audit"), anchor_path=tmp_path / "audit-anchor.jsonl")


@pytest.fixture()
def service(store: UserStore, audit: AuditLog) -> AuthService:
    return AuthService(store, audit)


def run_cli(
    *args: str, data_dir: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "CQA_DATA_DIR": str(data_dir), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "auth", *args],
        cwd=REPO, env=env, input=stdin if stdin is not None else "", capture_output=True, text=True,
        timeout=120,
    )


def raw_bytes(path: Path) -> bytes:
    """The database file plus any WAL content, as a file-system reader would see them."""
    data = b""
    for p in (path, path.with_name(path.name + "-wal")):
        if p.exists():
            data += p.read_bytes()
    return data


# --------------------------------------------------------------------------- users


def test_add_get_list(store: UserStore) -> None:
    user = store.add_user("alice", PW, ["staff", "Compliance"], ["legal", "営業部", "legal"])
    assert user.name == "alice"
    assert user.roles == ("compliance", "staff")
    assert user.groups == ("legal", "営業部")
    assert not user.disabled and not user.must_change_password and user.failed_attempts == 0
    assert user.created_at.tzinfo is not None
    assert store.get("alice") == user
    assert store.get("ALICE") == user  # names are case-insensitive
    assert store.get("nobody") is None and store.get("bad name!") is None
    store.add_user("bob", PW + "b", "staff")
    assert [u.name for u in store.list_users()] == ["alice", "bob"]
    fields = {f.name for f in dataclasses.fields(User)}
    assert not any("hash" in f or "password" == f for f in fields)
    with pytest.raises(dataclasses.FrozenInstanceError):
        user.disabled = True  # type: ignore[misc]


@pytest.mark.parametrize("name", ["", "a b", "名前", "x" * 65, "semi;colon", "new\nline"])
def test_invalid_names(store: UserStore, name: str) -> None:
    with pytest.raises(UserError, match="invalid user name"):
        store.add_user(name, PW, ["staff"])


def test_role_and_group_validation(store: UserStore) -> None:
    with pytest.raises(UserError, match="unknown role"):
        store.add_user("alice", PW, ["staff", "root"])
    with pytest.raises(UserError, match="at least one role"):
        store.add_user("alice", PW, [])
    with pytest.raises(UserError, match="invalid access group"):
        store.add_user("alice", PW, ["staff"], ["ok", "*"])
    store.add_user("alice", PW, "staff,compliance", "g1, g2")
    assert store.get("alice").roles == ("compliance", "staff")
    assert store.get("alice").groups == ("g1", "g2")
    with pytest.raises(UserError, match="already exists"):
        store.add_user("Alice", PW, ["staff"])


def test_password_policy(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "u.sqlite3", hasher=fast_hasher(), min_password_length=12)
    with pytest.raises(PasswordPolicyError, match="at least 12"):
        store.add_user("alice", "short-pw-1", ["staff"])
    with pytest.raises(PasswordPolicyError, match="user name"):
        store.add_user("alice", "my-alice-password", ["staff"])
    with pytest.raises(PasswordPolicyError, match="spaces"):
        store.add_user("alice", " " * 12, ["staff"])
    assert store.list_users() == []
    store.add_user("alice", "twelve-chars!", ["staff"])
    with pytest.raises(PasswordPolicyError):
        store.set_password("alice", "short")
    assert issubclass(PasswordPolicyError, CQAError)


def test_management_operations(store: UserStore) -> None:
    store.add_user("boss", PW, ["admin"])
    store.add_user("alice", PW, ["staff"], ["g1"])
    assert store.set_roles("alice", ["compliance"]).roles == ("compliance",)
    assert store.set_groups("alice", ["g2", "g3"]).groups == ("g2", "g3")
    assert store.set_groups("alice", None).groups == ()
    assert store.disable("alice").disabled
    assert not store.enable("alice").disabled
    store.delete("alice")
    assert store.get("alice") is None
    for op in (store.disable, store.enable, store.unlock, store.delete):
        with pytest.raises(UserError, match="no such user"):
            op("ghost")


def test_last_admin_is_protected(store: UserStore) -> None:
    assert not store.has_admin()
    store.create_initial_admin("boss", PW)
    assert store.has_admin()
    with pytest.raises(UserError, match="admin already exists"):
        store.create_initial_admin("boss2", PW)
    for op in (lambda: store.disable("boss"), lambda: store.delete("boss"),
               lambda: store.set_roles("boss", ["staff"])):
        with pytest.raises(UserError, match="last enabled admin"):
            op()
    store.add_user("deputy", PW, ["admin", "staff"])
    store.disable("boss")
    assert store.has_admin()  # a disabled admin still counts: no open first-run setup
    with pytest.raises(UserError, match="last enabled admin"):
        store.set_roles("deputy", "staff")


# --------------------------------------------------------------------------- sign-in


def test_authenticate_ok_and_generic_failures(store: UserStore) -> None:
    store.add_user("alice", PW, ["staff"])
    user = store.authenticate("alice", PW, now=T0)
    assert user.name == "alice" and user.last_login_at == T0
    assert store.authenticate("ALICE", PW, now=T0).name == "alice"
    messages = set()
    for name, password in [("alice", "wrong-password"), ("nobody", PW), ("bad name", PW), ("alice", "")]:
        with pytest.raises(AuthError) as exc:
            store.authenticate(name, password, now=T0)
        messages.add(str(exc.value))
        assert exc.value.reason == "bad_credentials"
    assert messages == {GENERIC_AUTH_FAILURE}
    assert "alice" not in GENERIC_AUTH_FAILURE


def test_lockout_and_reset(store: UserStore) -> None:
    store.add_user("alice", PW, ["staff"])
    for i in range(4):
        with pytest.raises(AuthError) as exc:
            store.authenticate("alice", f"wrong-{i}", now=T0)
        assert str(exc.value) == GENERIC_AUTH_FAILURE
    assert store.get("alice").failed_attempts == 4
    with pytest.raises(AuthError, match="locked") as exc:
        store.authenticate("alice", "wrong-5", now=T0)  # the 5th failure locks
    assert exc.value.reason == "locked"
    assert store.get("alice").is_locked(T0)
    # Locked: even the right password is refused, with the specific message.
    with pytest.raises(AuthError, match="locked.*15 minute"):
        store.authenticate("alice", PW, now=T0 + timedelta(seconds=1))
    with pytest.raises(AuthError, match="locked"):
        store.authenticate("alice", PW, now=T0 + timedelta(minutes=14, seconds=59))
    # After 15 minutes it works again and the counter is reset.
    user = store.authenticate("alice", PW, now=T0 + timedelta(minutes=15))
    assert user.failed_attempts == 0 and user.locked_until is None


def test_expired_lock_restarts_count(store: UserStore) -> None:
    store.add_user("alice", PW, ["staff"])
    for i in range(5):
        with pytest.raises(AuthError):
            store.authenticate("alice", f"wrong-{i}", now=T0)
    later = T0 + timedelta(minutes=20)
    with pytest.raises(AuthError) as exc:
        store.authenticate("alice", "wrong-again", now=later)
    assert str(exc.value) == GENERIC_AUTH_FAILURE  # one failure after expiry does not re-lock
    assert store.get("alice").failed_attempts == 1


def test_success_resets_counter(store: UserStore) -> None:
    store.add_user("alice", PW, ["staff"])
    for _ in range(2):
        for i in range(4):
            with pytest.raises(AuthError):
                store.authenticate("alice", f"wrong-{i}", now=T0)
        store.authenticate("alice", PW, now=T0)
    assert not store.get("alice").is_locked(T0)


def test_admin_reset_and_unlock(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "u.sqlite3", hasher=fast_hasher(), max_failed_attempts=3, lockout_minutes=60)
    store.add_user("alice", PW, ["staff"])
    store.add_user("bob", PW, ["staff"])
    for name in ("alice", "bob"):
        for i in range(3):
            with pytest.raises(AuthError):
                store.authenticate(name, f"wrong-{i}", now=T0)
        assert store.get(name).is_locked(T0)
    store.set_password("alice", "brand-new-password", must_change_password=True)
    user = store.authenticate("alice", "brand-new-password", now=T0)
    assert user.must_change_password
    with pytest.raises(AuthError, match="change your password") as exc:
        store.authenticate("alice", "brand-new-password", now=T0, allow_must_change=False)
    assert exc.value.reason == "must_change_password"
    assert not store.change_password("alice", "brand-new-password", "my-own-choice-99").must_change_password
    assert store.authenticate("alice", "my-own-choice-99", now=T0).name == "alice"
    with pytest.raises(AuthError):
        store.authenticate("alice", "brand-new-password", now=T0)
    store.unlock("bob")
    assert store.authenticate("bob", PW, now=T0).failed_attempts == 0


def test_disabled_user_cannot_sign_in(store: UserStore) -> None:
    store.add_user("alice", PW, ["staff"])
    store.disable("alice")
    with pytest.raises(AuthError, match="disabled") as exc:
        store.authenticate("alice", PW, now=T0)
    assert exc.value.reason == "disabled"
    with pytest.raises(AuthError) as exc:  # a wrong password does not reveal the state
        store.authenticate("alice", "wrong-password", now=T0)
    assert str(exc.value) == GENERIC_AUTH_FAILURE
    store.enable("alice")
    assert store.authenticate("alice", PW, now=T0).name == "alice"


def test_rehash_when_parameters_change(tmp_path: Path) -> None:
    path = tmp_path / USERS_DB_NAME
    UserStore(path, hasher=fast_hasher()).add_user("alice", PW, ["staff"])

    def stored_hash() -> str:
        with sqlite3.connect(path) as conn:
            value = conn.execute("SELECT pw_hash FROM users").fetchone()[0]
        conn.close()
        return value

    old = stored_hash()
    assert "m=1024,t=1,p=1" in old
    stronger = UserStore(path, hasher=fast_hasher(time_cost=2, memory_cost=2048))
    stronger.authenticate("alice", PW, now=T0)
    new = stored_hash()
    assert new != old and "m=2048,t=2,p=1" in new
    stronger.authenticate("alice", PW, now=T0)
    assert stored_hash() == new  # no rehash when the parameters match
    assert UserStore(path, hasher=fast_hasher()).authenticate("alice", PW, now=T0)


def _postgresql_rows(url: str, schema: str) -> bytes:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names(schema=schema)
            return repr([conn.execute(text(f'SELECT * FROM {schema}."{t}"')).all() for t in tables]).encode()
    finally:
        engine.dispose()


def test_password_never_stored_in_clear(
    tmp_path: Path, store: UserStore, audit: AuditLog, service: AuthService
) -> None:
    secret = "Unique-Secret-7391"
    admin = UserAdmin(store, audit, actor="boss")
    admin.add_user("alice", secret, ["staff"])
    admin.reset_password("alice", secret + "-2")
    with pytest.raises(AuthError):
        service.sign_in("alice", secret, client="c1")
    with pytest.raises(AuthError):
        service.sign_in(secret, secret, client="c1")  # a password typed into the name field
    service.sign_in("alice", secret + "-2", client="c1")
    if isinstance(store.db_path, Path):
        blobs = [raw_bytes(tmp_path / USERS_DB_NAME), raw_bytes(tmp_path / AUDIT_DB_NAME)]
    else:  # PostgreSQL: every row of both stores' tables
        blobs = [_postgresql_rows(store.db_path, schema) for schema in ("users", "audit")]
    for blob in blobs:
        assert blob and secret.encode() not in blob
    assert all(secret not in json.dumps(r.to_json()) for r in audit.search(limit=1000, reader=EVERYTHING))


def test_an_admin_cannot_delete_or_disable_their_own_account(store: UserStore, audit: AuditLog) -> None:
    store.add_user("boss", "correct-horse-battery", ["admin"])
    store.add_user("deputy", "correct-horse-battery", ["admin"])
    admin = UserAdmin(store, audit, actor="boss")
    for change, key in ((admin.delete, "delete_self"), (admin.disable, "disable_self")):
        with pytest.raises(UserError) as refused:
            change("BOSS")  # names are case-insensitive
        assert refused.value.key == key
    assert store.get("boss") is not None and not store.get("boss").disabled
    admin.delete("deputy")  # another admin may go
    assert store.get("deputy") is None


def test_refusals_carry_a_message_key_and_its_parameters(store: UserStore, service: AuthService) -> None:
    """What the app needs to say a refusal in the user's language (ui/i18n_pages.py has a sentence per key)."""
    from ui.i18n import STRINGS

    with pytest.raises(UserError) as short:
        store.add_user("carol", "short", ["staff"])
    assert short.value.key == "password_too_short" and short.value.params == {"n": store.min_password_length}
    with pytest.raises(AuthError) as wrong:
        service.sign_in("carol", "whatever-it-is", client="c1")
    assert wrong.value.key == "sign_in_failed"
    assert {f"err_{short.value.key}", f"err_{wrong.value.key}"} <= set(STRINGS)


# --------------------------------------------------------------------------- roles


def _user(roles: tuple[str, ...], groups: tuple[str, ...] = (), disabled: bool = False) -> User:
    return User("u1", roles, groups, disabled, T0)


def test_permission_matrix() -> None:
    staff, comp, admin = _user(("staff",)), _user(("compliance",)), _user(("admin",))
    assert permissions(staff) == {Permission.CHAT}
    assert permissions(comp) == {Permission.CHAT, Permission.EVALUATE}
    assert permissions(admin) == set(Permission)
    assert can(comp, "evaluate") and not can(staff, "evaluate")
    for perm in ("ingest", "manage_users", "view_audit", "view_settings"):
        assert can(admin, perm) and not can(comp, perm) and not can(staff, perm)
    assert permissions(_user(("staff", "compliance"))) == permissions(comp)
    require(staff, "chat")
    require(admin, Permission.VIEW_AUDIT)
    with pytest.raises(AccessDenied, match="evaluate"):
        require(staff, "evaluate")
    with pytest.raises(AccessDenied, match="sign in"):
        require(None, "chat")
    with pytest.raises(AccessDenied, match="disabled"):
        require(_user(("admin",), disabled=True), "chat")
    with pytest.raises(ValueError, match="unknown permission"):
        require(admin, "launch_missiles")


def test_allowed_pages() -> None:
    assert allowed_pages(_user(("staff",))) == ["chat", "account"]
    assert allowed_pages(_user(("compliance",))) == ["chat", "evaluate", "feedback", "account"]
    assert allowed_pages(_user(("admin",))) == [page for page, _ in PAGES]
    assert allowed_pages(_user(("admin",), disabled=True)) == []
    assert allowed_pages(None) == []


def test_access_groups_do_not_exempt_admins() -> None:
    admin = _user(("admin",), ("risk", "audit-dept", "risk"))
    groups = access_groups(admin)
    assert groups == ("audit-dept", "risk")
    assert access_groups(_user(("admin",))) == ()  # not None: None would mean "no restriction"
    assert access_groups(_user(("staff",), ("g",), disabled=True)) == ()
    # In the store filter: own groups plus the public marker, nothing else.
    (cond,) = [c for c in filter_conditions(SearchFilter(access_groups=groups)) if c.key == "access"]
    assert set(cond.values) == {"*", "audit-dept", "risk"}
    public_only = SearchFilter(access_groups=access_groups(None))
    (cond,) = [c for c in filter_conditions(public_only) if c.key == "access"]
    assert cond.values == ("*",)


# --------------------------------------------------------------------------- sessions & rate limits


def test_session_clock() -> None:
    clock = SessionClock(30, now=1000.0)
    assert not clock.expired(1000.0 + 29 * 60)
    clock.touch(1000.0 + 29 * 60)
    assert not clock.expired(1000.0 + 58 * 60)
    assert clock.remaining(1000.0 + 58 * 60) == pytest.approx(60.0)
    assert clock.expired(1000.0 + 59 * 60)
    clock.touch(0.0)  # going backwards does not extend or shorten anything
    assert clock.expired(1000.0 + 59 * 60)
    dt_clock = SessionClock(15, now=T0)
    assert not dt_clock.expired(T0 + timedelta(minutes=14))
    assert dt_clock.expired(T0 + timedelta(minutes=15))
    with pytest.raises(ValueError):
        SessionClock(0)


def test_rate_limiter_window_and_message() -> None:
    limiter = RateLimiter(3, 60)
    for t in (0.0, 10.0, 20.0):
        limiter.check("alice", now=t)
    with pytest.raises(RateLimited, match=r"at most 3 per 1 minute\(s\).*40 second") as exc:
        limiter.check("alice", now=20.0)
    assert exc.value.retry_after == pytest.approx(40.0)
    assert isinstance(exc.value, CQAError)
    limiter.check(_user(("staff",)), now=20.0)  # other users are independent
    limiter.check("alice", now=60.0)  # the first event left the window
    with pytest.raises(RateLimited):
        limiter.check("ALICE", now=61.0)
    limiter.reset("alice")
    limiter.check("alice", now=61.0)


def test_rate_limiter_thread_safe() -> None:
    limiter = RateLimiter(50, 3600)
    allowed, refused = [], []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(20):
            try:
                limiter.check("alice")
                outcome = allowed
            except RateLimited:
                outcome = refused
            with lock:
                outcome.append(1)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert (len(allowed), len(refused)) == (50, 150)


# --------------------------------------------------------------------------- audited services


def test_sign_in_is_audited(store: UserStore, audit: AuditLog) -> None:
    store.add_user("alice", PW, ["staff"])
    service = AuthService(store, audit, per_name=RateLimiter(2, 60))
    user = service.sign_in("alice", PW, client="10.0.0.5")
    with pytest.raises(AuthError):
        service.sign_in("alice", "wrong-password", client="c1")
    with pytest.raises(AuthError):
        service.sign_in("mallory", PW, client="c1")
    with pytest.raises(AuthError):
        service.sign_in("alice", "wrong-again", client="c1", tick=None)
    with pytest.raises(RateLimited):
        service.sign_in("alice", PW, client="c1")  # two failures for alice: throttled, right password or not
    service.sign_out(user, reason="timeout")
    records = list(reversed(audit.search(reader=EVERYTHING)))
    assert [(r.user, r.action) for r in records] == [
        ("alice", "login"), ("alice", "login_failed"), (UNKNOWN_USER, "login_failed"),
        ("alice", "login_failed"), ("alice", "login_failed"), ("alice", "logout"),
    ]
    assert records[0].detail["client"] == "10.0.0.5" and records[0].detail["via"] == "password"
    assert records[1].detail["reason"] == "bad_credentials"
    assert "attempted_name_sha256" in records[2].detail and "mallory" not in json.dumps(records[2].detail)
    assert records[4].detail["reason"] == "rate_limited"
    assert records[5].detail == {"reason": "timeout"}
    assert audit.verify().ok


def test_user_admin_audits_every_change(store: UserStore, audit: AuditLog) -> None:
    boss = store.add_user("boss", PW, ["admin"])
    admin = UserAdmin.for_user(store, audit, boss)
    alice = admin.add_user("alice", PW, ["staff"], ["g1"])
    assert alice.must_change_password
    admin.set_roles("alice", ["staff", "compliance"])
    admin.set_groups("alice", ["g2"])
    admin.disable("alice")
    admin.enable("alice")
    admin.unlock("alice")
    admin.reset_password("alice", "another-password")
    AuthService(store, audit).change_password(store.get("alice"), "another-password", "my-own-password-7")
    admin.delete("alice")
    changes = reversed(audit.search(action="user_change", reader=EVERYTHING))
    ops = [(r.user, r.detail["op"], r.detail["target"]) for r in changes]
    assert ops == [("boss", op, "alice") for op in (
        "add", "set_roles", "set_groups", "disable", "enable", "unlock", "reset_password")
    ] + [("alice", "change_password", "alice"), ("boss", "delete", "alice")]
    set_groups = audit.search(action="user_change", text="set_groups", reader=EVERYTHING)[0]
    assert set_groups.detail["before"] == ["g1"] and set_groups.detail["groups"] == ["g2"]
    with pytest.raises(UserError):
        admin.disable("ghost")
    assert len(audit.search(action="user_change", reader=EVERYTHING)) == 9  # failures change nothing, log nothing
    with pytest.raises(AccessDenied):
        UserAdmin.for_user(store, audit, store.add_user("eve", PW, ["compliance"]))


# --------------------------------------------------------------------------- CLI


def test_cli_add_list_and_audit(tmp_path: Path) -> None:
    secret = "Cli-Secret-Pass-5521"
    proc = run_cli("add", "alice", "--role", "staff", "--role", "compliance", "--groups", "legal,risk",
                   "--password-stdin", data_dir=tmp_path, stdin=secret + "\n")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("add", "boss", "--role", "admin,staff", "--password-stdin", "--no-must-change",
                   data_dir=tmp_path, stdin=secret + "-b\n")
    assert proc.returncode == 0, proc.stderr
    outputs = [proc.stdout + proc.stderr]

    proc = run_cli("list", "--json", data_dir=tmp_path)
    assert proc.returncode == 0
    outputs.append(proc.stdout + proc.stderr)
    users = json.loads(proc.stdout)
    assert users == [
        {"name": "alice", "roles": ["compliance", "staff"], "groups": ["legal", "risk"],
         "disabled": False, "locked": False},
        {"name": "boss", "roles": ["admin", "staff"], "groups": [], "disabled": False, "locked": False},
    ]
    proc = run_cli("list", data_dir=tmp_path)
    assert proc.returncode == 0 and "alice" in proc.stdout and "must-change-password" in proc.stdout

    store = UserStore(tmp_path / USERS_DB_NAME)
    assert store.authenticate("alice", secret).must_change_password
    assert not store.authenticate("boss", secret + "-b").must_change_password

    records = AuditLog(tmp_path / AUDIT_DB_NAME).search(action="user_change", reader=EVERYTHING)
    assert [(r.detail["op"], r.detail["target"], r.detail["via"]) for r in reversed(records)] == [
        ("add", "alice", "cli"), ("add", "boss", "cli")]
    assert all(r.user.startswith("cli:") for r in records)
    for blob in [*outputs, raw_bytes(tmp_path / USERS_DB_NAME), raw_bytes(tmp_path / AUDIT_DB_NAME)]:
        text = blob if isinstance(blob, str) else blob.decode("utf-8", "replace")
        assert secret not in text


def test_cli_manage_flow(tmp_path: Path) -> None:
    pw = "first-password-1"
    assert run_cli("add", "alice", "--role", "staff", "--password-stdin", data_dir=tmp_path,
                   stdin=pw + "\n").returncode == 0
    proc = run_cli("disable", "alice", data_dir=tmp_path)
    assert proc.returncode == 0
    store = UserStore(tmp_path / USERS_DB_NAME)
    with pytest.raises(AuthError, match="disabled"):
        store.authenticate("alice", pw)
    assert json.loads(run_cli("list", "--json", data_dir=tmp_path).stdout)[0]["disabled"] is True
    assert run_cli("enable", "alice", data_dir=tmp_path).returncode == 0
    assert store.authenticate("alice", pw).name == "alice"

    for i in range(5):
        with pytest.raises(AuthError):
            store.authenticate("alice", f"wrong-{i}")
    assert json.loads(run_cli("list", "--json", data_dir=tmp_path).stdout)[0]["locked"] is True
    proc = run_cli("reset-password", "alice", "--password-stdin", data_dir=tmp_path,
                   stdin="second-password-2\n")
    assert proc.returncode == 0 and "second-password-2" not in proc.stdout + proc.stderr
    user = store.authenticate("alice", "second-password-2")
    assert user.must_change_password and not user.is_locked()

    assert run_cli("set-groups", "alice", "--groups", "g1,g2", data_dir=tmp_path).returncode == 0
    assert store.get("alice").groups == ("g1", "g2")
    assert run_cli("set-groups", "alice", "--groups", "", data_dir=tmp_path).returncode == 0
    assert store.get("alice").groups == ()
    changes = AuditLog(tmp_path / AUDIT_DB_NAME).search(action="user_change", reader=EVERYTHING)
    ops = [r.detail["op"] for r in reversed(changes)]
    assert ops == ["add", "disable", "enable", "reset_password", "set_groups", "set_groups"]
    assert AuditLog(tmp_path / AUDIT_DB_NAME).verify().ok


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("frobnicate",),
        ("add", "alice"),  # --role missing
        ("add", "--role", "staff"),  # name missing
        ("set-groups", "alice"),  # --groups missing
        ("list", "--yaml"),
        ("add", "alice", "--role", "staff"),  # no terminal and no --password-stdin
    ],
)
def test_cli_bad_usage_exits_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    proc = run_cli(*args, data_dir=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("add", "alice", "--role", "root", "--password-stdin"), "long-enough-pw\n", "unknown role"),
        (("add", "bad name", "--role", "staff", "--password-stdin"), "long-enough-pw\n", "invalid user name"),
        (("add", "bob", "--role", "staff", "--password-stdin"), "short\n", "at least 10"),
        (("add", "bob", "--role", "staff", "--password-stdin"), "", "no password"),
        (("add", "alice", "--role", "staff", "--password-stdin"), "long-enough-pw\n", "already exists"),
        (("disable", "ghost"), "", "no such user"),
        (("reset-password", "ghost", "--password-stdin"), "long-enough-pw\n", "no such user"),
        (("disable", "alice"), "", "last enabled admin"),
    ],
)
def test_cli_failures_exit_1(tmp_path: Path, args: tuple[str, ...], stdin: str, message: str) -> None:
    UserStore(tmp_path / USERS_DB_NAME, hasher=fast_hasher()).add_user("alice", PW, ["admin"])
    proc = run_cli(*args, data_dir=tmp_path, stdin=stdin)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr
    assert "long-enough-pw" not in proc.stdout + proc.stderr


# --------------------------------------------------------------------------- one sign-in path (issue 15, item 3)


class CountingHasher(PasswordHasher):
    """The real argon2id hasher (small parameters), counting verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifications = 0

    def verify(self, hash, password) -> bool:  # noqa: A002 (argon2's parameter name)
        self.verifications += 1
        return super().verify(hash, password)


def _answers(store: UserStore, name: str, passwords: list[str], when: datetime) -> list[tuple[str, str]]:
    out = []
    for password in passwords:
        try:
            store.authenticate(name, password, now=when)
            out.append(("ok", ""))
        except AuthError as exc:
            out.append((exc.reason, str(exc)))
    return out


def test_unknown_names_get_the_answers_an_account_gets(tmp_path: Path) -> None:
    """Five bad attempts lock an unknown name exactly as they lock an account: same messages,
    same minutes, same unlock time, one password verification per attempt either way."""
    hasher = CountingHasher()
    store = UserStore(tmp_path / USERS_DB_NAME, hasher=hasher)
    store.add_user("alice", PW, ["staff"])
    wrong = [f"wrong-{i}" for i in range(5)]
    for name in ("alice", "ghost"):
        before = hasher.verifications
        answers = _answers(store, name, [*wrong, PW], T0)
        assert hasher.verifications - before == 6, name  # locked or unknown: still one verification each
        assert [r for r, _ in answers] == ["bad_credentials"] * 4 + ["locked", "locked"], name
        assert answers[:4] == [("bad_credentials", GENERIC_AUTH_FAILURE)] * 4
        assert "15 minute" in answers[5][1]
        if name == "alice":
            alice_answers = answers
        else:
            assert answers == alice_answers  # nothing tells the two apart
    later = T0 + timedelta(minutes=15)
    assert store.authenticate("alice", PW, now=later).name == "alice"
    assert _answers(store, "ghost", [PW], later) == [("bad_credentials", GENERIC_AUTH_FAILURE)]
    assert store.is_name_locked("ghost", later) is None
    # names are case-insensitive for the count too, and an account created later starts clean
    _answers(store, "Ghost2", wrong, T0)
    assert store.is_name_locked("ghost2", T0) is not None
    store.add_user("ghost2", PW, ["staff"])
    assert store.authenticate("ghost2", PW, now=T0 + timedelta(seconds=1)).name == "ghost2"


def test_failed_names_are_kept_as_hashes_and_forgotten(tmp_path: Path) -> None:
    store = UserStore(tmp_path / USERS_DB_NAME, hasher=fast_hasher())
    typed = "Typed-Password-In-Name-Field-481"
    _answers(store, typed, ["x"], T0)
    assert typed.encode() not in raw_bytes(tmp_path / USERS_DB_NAME)
    assert typed.lower().encode() not in raw_bytes(tmp_path / USERS_DB_NAME)
    with sqlite3.connect(tmp_path / USERS_DB_NAME) as conn:
        assert conn.execute("SELECT COUNT(*) FROM failed_names").fetchone()[0] == 1
    conn.close()
    _answers(store, "someone-else", ["x"], T0 + timedelta(days=31))  # prunes counts older than 30 days
    with sqlite3.connect(tmp_path / USERS_DB_NAME) as conn:
        assert conn.execute("SELECT COUNT(*) FROM failed_names").fetchone()[0] == 1
    conn.close()


def test_a_users_file_from_before_sso_accounts_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / USERS_DB_NAME
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE, pw_hash TEXT NOT NULL,"
                     " roles TEXT NOT NULL, groups_json TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,"
                     " created_at TEXT NOT NULL, updated_at TEXT NOT NULL, password_changed_at TEXT NOT NULL,"
                     " failed_attempts INTEGER NOT NULL DEFAULT 0, locked_until TEXT,"
                     " must_change_password INTEGER NOT NULL DEFAULT 0, last_login_at TEXT)")
        conn.execute("INSERT INTO users (name, pw_hash, roles, groups_json, created_at, updated_at,"
                     " password_changed_at) VALUES ('old', ?, '[\"staff\"]', '[]', ?, ?, ?)",
                     (fast_hasher().hash(PW), T0.isoformat(), T0.isoformat(), T0.isoformat()))
    conn.close()
    store = UserStore(path, hasher=fast_hasher())
    assert store.authenticate("old", PW, now=T0).source == "password"


def test_sign_ins_are_throttled_per_name_and_per_client(store: UserStore, audit: AuditLog) -> None:
    store.add_user("alice", PW, ["staff"])
    service = AuthService(store, audit, per_name=RateLimiter(3, 60), per_client=RateLimiter(5, 60))
    for i in range(3):
        with pytest.raises(AuthError):
            service.sign_in("alice", f"wrong-{i}", client="10.0.0.7", tick=100.0 + i)
    # per name: the 4th attempt is refused before any password check, even from another client
    with pytest.raises(RateLimited) as throttled:
        service.sign_in("alice", PW, client="10.0.0.8", tick=110.0)
    assert "wait 50 second" in str(throttled.value)
    assert store.get("alice").failed_attempts == 3  # a throttled attempt is not a lockout failure
    # an unknown name gets the same treatment and the same words
    for i in range(3):
        with pytest.raises(AuthError):
            service.sign_in("nobody", f"wrong-{i}", client="10.0.0.9", tick=100.0 + i)
    with pytest.raises(RateLimited) as unknown:
        service.sign_in("nobody", PW, client="10.0.0.8", tick=110.0)
    assert str(unknown.value) == str(throttled.value)
    # per client: spraying names from one address stops after 5 failures, whatever the name
    for name in ("carol", "dave"):
        with pytest.raises(AuthError):
            service.sign_in(name, "x", client="10.0.0.7", tick=111.0)
    with pytest.raises(RateLimited):
        service.sign_in("erin", "x", client="10.0.0.7", tick=112.0)
    assert service.sign_in("alice", PW, client="10.0.0.8", tick=161.0).name == "alice"  # the window passed
    reasons = [r.detail["reason"] for r in audit.search(action="login_failed", reader=EVERYTHING)]
    assert reasons.count("rate_limited") == 3
    # successes are not counted: a busy office behind one address is never throttled by them
    for i in range(10):
        service.sign_in("alice", PW, client="10.0.0.8", tick=200.0 + i)


def test_rate_limiter_can_count_only_some_events() -> None:
    limiter = RateLimiter(2, 10)
    assert limiter.retry_after("k", now=0.0) is None
    limiter.add("k", now=0.0)
    limiter.add("k", now=1.0)
    limiter.add("k", now=2.0)  # add records even past the limit
    assert limiter.retry_after("k", now=3.0) == pytest.approx(8.0)  # until only 1 event is left in the window
    assert limiter.retry_after("k", now=11.0) is None
    assert limiter.retry_after("other", now=3.0) is None


def test_client_key_uses_the_proxy_header_only_on_loopback() -> None:
    from auth.service import LOOPBACK_CLIENT, client_key

    headers = {"X-Forwarded-For": "203.0.113.9, 10.1.2.3"}
    assert client_key("10.9.9.9", headers, "X-Forwarded-For") == "10.9.9.9"  # a remote peer's header is ignored
    assert client_key(None, headers, "X-Forwarded-For") == "10.1.2.3"  # the address the proxy saw
    assert client_key(None, headers, None) == LOOPBACK_CLIENT
    assert client_key(None, {}, "X-Forwarded-For") == LOOPBACK_CLIENT


def _site(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_site_password_policy_and_lockout_apply_to_every_entry_point(tmp_path: Path, monkeypatch) -> None:
    """The form, first-admin setup and the CLI all use the service the composition root builds
    from the site file: a 12-character password passes the built-in policy but not this site's."""
    from settings import load_settings
    from wiring import Container

    data = tmp_path / "data"
    site = _site(tmp_path, "[security]\nmin_password_length = 14\nmax_failed_logins = 2\nlockout_minutes = 60\n")
    monkeypatch.setenv("CQA_SETTINGS_FILE", str(site))
    monkeypatch.setenv("CQA_DATA_DIR", str(data))
    container = Container(load_settings())
    with pytest.raises(PasswordPolicyError, match="at least 14"):
        container.auth.create_first_admin("boss", "twelve-chars", client="c1")
    container.auth.create_first_admin("boss", "fourteen-chars", client="c1")

    env = {"CQA_SETTINGS_FILE": str(site)}
    proc = run_cli("add", "alice", "--role", "staff", "--password-stdin", data_dir=data, stdin="twelve-chars\n",
                   env=env)
    assert proc.returncode == 1 and "at least 14" in proc.stderr
    proc = run_cli("add", "alice", "--role", "staff", "--password-stdin", "--no-must-change", data_dir=data,
                   stdin="fourteen-chars\n", env=env)
    assert proc.returncode == 0, proc.stderr
    for i in range(2):  # the site's max_failed_logins = 2
        with pytest.raises(AuthError):
            container.auth.sign_in("alice", f"wrong-{i}", client="c1")
    with pytest.raises(AuthError, match="locked.*60 minute"):
        container.auth.sign_in("alice", "fourteen-chars", client="c2")
    listed = {u["name"]: u for u in json.loads(run_cli("list", "--json", data_dir=data, env=env).stdout)}
    assert listed["alice"]["locked"] is True and not listed["boss"]["locked"]
    records = container.audit.search(action="user_change", reader=EVERYTHING)
    assert {r.detail["op"] for r in records} == {"create_initial_admin", "add"}


# --------------------------------------------------------------------------- single sign-on accounts


def _sso_service(store: UserStore, audit: AuditLog) -> AuthService:
    from auth.service import SSOPolicy

    policy = SSOPolicy(group_map={
        "CQA-Staff": (("staff",), ()),
        "CQA-Compliance": (("compliance",), ("compliance",)),
        "CQA-Board": ((), ("board",)),  # access only: no role of its own
        "CQA-Admins": (("admin",), ()),
    })
    return AuthService(store, audit, sso=policy)


def _claims(name: str, *groups: str, exp: float | None = None) -> dict:
    claims = {"is_logged_in": True, "sub": f"sub-{name}", "preferred_username": name, "groups": list(groups)}
    if exp is not None:
        claims["exp"] = exp
    return claims


def test_sso_maps_idp_groups_and_follows_them_at_each_sign_in(store: UserStore, audit: AuditLog) -> None:
    service = _sso_service(store, audit)
    user = service.sso_sign_in(_claims("carol", "CQA-Compliance", "CQA-Board", "Unmapped"), client="c1", now=T0)
    assert (user.roles, user.groups, user.source) == (("compliance",), ("board", "compliance"), "oidc")
    user = service.sso_sign_in(_claims("carol", "CQA-Compliance"), client="c1", now=T0)  # removed from the board
    assert user.groups == ("compliance",)
    assert store.get("carol").groups == ("compliance",)
    records = reversed(audit.search(action="user_change", reader=EVERYTHING))
    changes = [(r.detail["op"], r.detail["via"]) for r in records]
    assert changes == [("add", "oidc"), ("sso_update", "oidc")]
    update = audit.search(action="user_change", reader=EVERYTHING)[0].detail
    assert update["before"]["groups"] == ["board", "compliance"] and update["groups"] == ["compliance"]
    logins = audit.search(action="login", reader=EVERYTHING)
    assert len(logins) == 2 and logins[0].detail["via"] == "oidc" and logins[0].detail["idp_groups"] == [
        "CQA-Compliance"]
    # an SSO account has no password here: a password sign-in fails as a wrong password does, and counts
    with pytest.raises(AuthError) as exc:
        service.sign_in("carol", "", client="c1", now=T0)
    assert str(exc.value) == GENERIC_AUTH_FAILURE and store.get("carol").failed_attempts == 1
    with pytest.raises(UserError, match="single sign-on"):
        UserAdmin(store, audit, "boss").reset_password("carol", "a-new-password-1")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        (_claims("dave", "Unmapped"), "sso_no_role"),  # authenticated by the IdP, not provisioned for this app
        (_claims("dave", "CQA-Board"), "sso_no_role"),  # access groups but no role
        (_claims("dave"), "sso_no_role"),
        ({"is_logged_in": True, "sub": "x", "groups": ["CQA-Staff"]}, "sso_bad_name"),  # no user-name claim
        (_claims("no spaces allowed", "CQA-Staff"), "sso_bad_name"),
        (_claims("alice", "CQA-Admins"), "sso_password_account"),  # the IdP never takes over a local account
        (_claims("dave", "CQA-Staff", exp=T0.timestamp() - 1), "sso_expired"),
    ],
)
def test_sso_refusals_fail_closed(store: UserStore, audit: AuditLog, claims: dict, reason: str) -> None:
    from auth.service import SSO_EXPIRED
    from auth.store import SSO_REFUSED

    store.add_user("alice", PW, ["staff"])
    service = _sso_service(store, audit)
    with pytest.raises(AuthError) as exc:
        service.sso_sign_in(claims, client="c1", now=T0)
    assert exc.value.reason == reason
    assert str(exc.value) == (SSO_EXPIRED if reason == "sso_expired" else SSO_REFUSED)
    assert store.get("dave") is None
    assert store.get("alice").roles == ("staff",)
    failed = audit.search(action="login_failed", reader=EVERYTHING)[0]
    assert failed.detail["reason"] == reason and failed.detail["via"] == "oidc"


def test_sso_lockout_is_the_password_lockout(store: UserStore, audit: AuditLog) -> None:
    service = _sso_service(store, audit)
    service.sso_sign_in(_claims("erin", "CQA-Staff"), client="c1", now=T0)
    for i in range(5):  # someone guesses erin's (non-existent) password
        with pytest.raises(AuthError):
            service.sign_in("erin", f"guess-{i}", client="c2", now=T0)
    with pytest.raises(AuthError, match="locked") as exc:
        service.sso_sign_in(_claims("erin", "CQA-Staff"), client="c1", now=T0 + timedelta(minutes=1))
    assert exc.value.reason == "locked"
    assert service.sso_sign_in(_claims("erin", "CQA-Staff"), client="c1", now=T0 + timedelta(minutes=16)).name == "erin"
    assert store.get("erin").failed_attempts == 0
    # refused SSO sign-ins count too: an unprovisioned name locks after five, like a wrong password
    for _ in range(4):
        with pytest.raises(AuthError, match="no access"):
            service.sso_sign_in(_claims("frank", "Unmapped"), client="c1", now=T0)
    with pytest.raises(AuthError, match="locked"):
        service.sso_sign_in(_claims("frank", "Unmapped"), client="c1", now=T0)
    with pytest.raises(AuthError, match="locked"):  # even once an admin maps the group, until the lock ends
        service.sso_sign_in(_claims("frank", "CQA-Staff"), client="c1", now=T0 + timedelta(minutes=1))
    assert store.get("frank") is None
    # a disabled SSO account stays disabled whatever the IdP says
    store.disable("erin")
    with pytest.raises(AuthError, match="disabled"):
        service.sso_sign_in(_claims("erin", "CQA-Staff"), client="c1", now=T0 + timedelta(minutes=20))


def test_sso_cannot_remove_the_last_admin(store: UserStore, audit: AuditLog) -> None:
    service = _sso_service(store, audit)
    assert service.sso_sign_in(_claims("root", "CQA-Admins"), client="c1", now=T0).roles == ("admin",)
    with pytest.raises(AuthError) as exc:
        service.sso_sign_in(_claims("root", "CQA-Staff"), client="c1", now=T0)
    assert exc.value.reason == "sso_last_admin"
    assert store.get("root").roles == ("admin",) and store.has_admin()


def test_sso_policy_from_site_settings(tmp_path: Path, monkeypatch) -> None:
    from settings import load_settings
    from wiring import Container

    site = _site(tmp_path, """
[security]
oidc_provider = "bank-sso"
oidc_username_claim = "upn"
[security.oidc_group_map."CN=CQA-Compliance,OU=Groups,DC=bank,DC=local"]
roles = ["compliance"]
groups = ["compliance"]
""")
    monkeypatch.setenv("CQA_SETTINGS_FILE", str(site))
    monkeypatch.setenv("CQA_DATA_DIR", str(tmp_path / "data"))
    service = Container(load_settings()).auth
    user = service.sso_sign_in({"upn": "kenji@bank.co.jp", "groups": "CN=CQA-Compliance,OU=Groups,DC=bank,DC=local"},
                               client="c1")
    assert (user.name, user.roles, user.groups) == ("kenji@bank.co.jp", ("compliance",), ("compliance",))
    site.write_text('[security]\noidc_provider = "bank_sso"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="'_'"):
        load_settings()


def test_a_group_map_with_an_unknown_role_stops_the_settings_load(tmp_path: Path, monkeypatch) -> None:
    from settings import load_settings

    site = _site(tmp_path, '[security.oidc_group_map.CQA-Root]\nroles = ["root"]\n')
    monkeypatch.setenv("CQA_SETTINGS_FILE", str(site))
    with pytest.raises(ValueError, match="oidc_group_map"):
        load_settings()
