"""Engines and sessions: one engine per database URL per process, migrated on first use; the live and the
replay store (`using(REPLAY)`); SQLite in WAL mode with writers taking the lock up front (`BEGIN IMMEDIATE`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _setup_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


LIVE, REPLAY = "live", "replay"
REPLAY_SCHEMA = "pollwatch_replay"
_store_kind: ContextVar[str] = ContextVar("pollwatch_store_kind", default=LIVE)


@contextmanager
def using(kind: str) -> Iterator[str]:
    """Sessions opened inside (in this thread, and the Prefect tasks it starts) use the `kind` store: LIVE or REPLAY."""
    if kind not in (LIVE, REPLAY):
        raise ValueError(f"unknown store {kind!r}: expected {LIVE!r} or {REPLAY!r}")
    token = _store_kind.set(kind)
    try:
        yield kind
    finally:
        _store_kind.reset(token)


def store_kind() -> str:
    """Which store sessions open here use: LIVE (the default) or REPLAY."""
    return _store_kind.get()


def replay_database_url(live_url: str) -> str:
    """The replay store beside a live store: `x.sqlite` -> `x-replay.sqlite`; PostgreSQL: the same database, schema
    `pollwatch_replay`."""
    if live_url.startswith("sqlite"):
        head, _, path = live_url.partition(":///")
        if not path or path == ":memory:":
            return live_url
        p = Path(path)
        suffix = p.suffix or ".sqlite"
        return f"{head}:///{p.with_name(p.stem + '-replay' + suffix)}"
    sep = "&" if "?" in live_url else "?"
    return f"{live_url}{sep}options=-csearch_path%3D{REPLAY_SCHEMA}"


def database_url(url: str | None = None) -> str:
    from pollwatch.settings import get_settings

    if not url:
        settings = get_settings()
        url = settings.resolved_database_url
        if store_kind() == REPLAY:
            url = settings.replay_database_url or replay_database_url(url)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def get_engine(url: str | None = None) -> Engine:
    """One engine per URL per process, migrated to the newest schema on first use."""
    url = database_url(url)
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                path = url.split("///", 1)[-1]
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
                _setup_sqlite(engine)
            else:
                engine = create_engine(url, pool_pre_ping=True)
                # the replay store's schema, made before its first migration
                if f"search_path%3D{REPLAY_SCHEMA}" in url:
                    with engine.begin() as conn:
                        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {REPLAY_SCHEMA}")
            migrate(engine)
            _engines[url] = engine
    return engine


def dispose_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to `revision` with Alembic."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back everything on error (no partial writes)."""
    with Session(get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def readonly_session(url: str | None = None) -> Iterator[Session]:
    """A session that cannot write: no migration, SQLite opened read-only (`immutable=1` for a copy
    without a WAL file, else `mode=ro`), PostgreSQL in read-only transactions. For checking the
    store or a copy of it (`pollwatch audit verify`)."""
    import sqlite3
    from urllib.parse import quote

    url = database_url(url)
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[-1]).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such store")

        # Without a -wal file every committed page is in the file itself: immutable=1 reads it without
        # locks or -shm (a copy on read-only media). With one, mode=ro also reads what the WAL holds.
        wal = path.with_name(path.name + "-wal").exists()
        order = ("mode=ro", "mode=ro&immutable=1") if wal else ("mode=ro&immutable=1",)

        def connect() -> sqlite3.Connection:
            for flags in order:
                conn = sqlite3.connect(f"file:{quote(str(path))}?{flags}", uri=True, check_same_thread=False)
                try:
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                    return conn
                except sqlite3.OperationalError:
                    conn.close()
                    if flags == order[-1]:
                        raise
            raise AssertionError("unreachable")

        engine = create_engine("sqlite://", creator=connect)
    else:
        engine = create_engine(url, connect_args={"options": "-c default_transaction_read_only=on"})
    try:
        with Session(engine) as session:
            try:
                yield session
            finally:
                session.rollback()
    finally:
        engine.dispose()
