"""Opening study storage: URL checks, Optuna's ``RDBStorage`` for SQLite or a server, and locks.

Every process that opens a storage goes through :func:`open_storage`: the tuner's
workers, the dashboard, the trainer, ``tuner show``. Processes that open a *new*
database at the same moment would all run Optuna's ``CREATE TABLE`` statements and stamp
its schema version, and all but one would fail ("table ... already exists", a duplicate
``alembic_version`` row, PostgreSQL's ``pg_type_typname_nsp_index``, SQLite's "database is
locked"). That race is handled in one place: a database whose schema is not complete yet
is set up under :func:`storage_lock`, so exactly one process creates it and the others
find it done; a database that is ready is opened without taking the lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from nst.errors import StyletuneError

DEFAULT_STORAGE = "sqlite:///studies/studies.db"
#: Optuna's grace period, in heartbeats: a running trial without a heartbeat for this many
#: intervals is stale (its worker died) and is failed by the next worker that looks.
GRACE_HEARTBEATS = 4


class StorageError(StyletuneError):
    """A storage URL, study or trial that cannot be used."""


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL, or None for other back ends."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        return Path(path) if path and path != ":memory:" else None
    return None


def check_url(url: str) -> str:
    """Refuse a storage URL that cannot work, in one line, before anything is created for it.

    Checks the form (``dialect[+driver]://...``), that SQLAlchemy knows the dialect, that
    its driver is installed and, for a SQLite file, that no file sits where a folder on
    its path should be. Whether the server answers or the file holds a study is left to
    :func:`open_storage`.
    """
    import sqlalchemy

    if not isinstance(url, str) or "://" not in url:
        raise StorageError(f"{url!r} is not a storage URL; use e.g. {DEFAULT_STORAGE} or postgresql://user@host/db")
    try:
        dialect = sqlalchemy.engine.make_url(url).get_dialect()
    except (sqlalchemy.exc.ArgumentError, ValueError) as exc:
        raise StorageError(f"{url!r} is not a valid storage URL ({str(exc).splitlines()[0]})") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        missing = exc.name or "its driver"
        raise StorageError(f"{url}: its database driver {missing} is not installed; pip install {missing} "
                           "(PostgreSQL: pip install 'psycopg[binary]')") from None
    db = sqlite_path(url)
    if db is not None:
        blocker = next((p for p in (db.parent, *db.parent.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise StorageError(f"{blocker} is a file, not a folder, so {db} cannot be there; choose another --storage")
    return url


# -- locks ---------------------------------------------------------------------------------------

_held_lock = threading.Lock()
_held: dict[str, tuple[threading.RLock, list[int]]] = {}


def _in_process(key: str) -> tuple[threading.RLock, list[int]]:
    with _held_lock:
        return _held.setdefault(key, (threading.RLock(), [0]))


@contextlib.contextmanager
def _reentrant(key: str) -> Iterator[Callable[[], None] | None]:
    """The in-process side of storage lock ``key``: other threads wait, the holding thread re-enters.

    Yields None when this thread holds the lock already (nothing more to take). Otherwise
    yields ``taken``, to be called once the real lock (file or server) is held, so that
    calls nested inside see it as held until this one ends.
    """
    rlock, depth = _in_process(key)
    with rlock:
        if depth[0]:
            depth[0] += 1
            try:
                yield None
            finally:
                depth[0] -= 1
            return

        def taken() -> None:
            depth[0] = 1

        try:
            yield taken
        finally:
            depth[0] = 0


@contextlib.contextmanager
def storage_lock(url: str, name: str = "") -> Iterator[None]:
    """Hold an exclusive lock on storage ``url`` (and, on a server, on ``name`` within it).

    SQLite: ``flock`` on the hidden file ``.<db>.lock`` beside the database (SQLite is one
    machine's storage, so a file lock reaches every process that can open it); one lock
    per database, whatever ``name``. PostgreSQL and MySQL: a session-level advisory lock
    on the server, per ``name``, on a connection of its own. Other back ends: no lock.
    The operating system or the server releases the lock when its process dies, so a
    killed run never leaves it held. Re-entrant within a process (the tuner creates a
    study under the lock and opens the storage inside it); other threads wait.
    """
    db = sqlite_path(url)
    dialect = url.split(":", 1)[0].split("+", 1)[0].lower()
    if db is not None:
        with _sqlite_lock(db):
            yield
    elif dialect in ("postgresql", "postgres", "mysql", "mariadb"):
        with _server_lock(url, dialect, name):
            yield
    else:
        yield


@contextlib.contextmanager
def _sqlite_lock(db: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no file lock
        yield
        return
    lock_path = db.parent / f".{db.name}.lock"
    with _reentrant(str(lock_path.resolve())) as taken:
        if taken is None:  # this thread holds the file lock already
            yield
            return
        try:
            fh = open(lock_path, "a+b")  # noqa: SIM115 - closed below, after the lock is released
        except OSError:  # a read-only folder: nobody can create tables in it either
            yield
            return
        with fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            taken()
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _server_lock(url: str, dialect: str, name: str) -> Iterator[None]:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    key = int.from_bytes(hashlib.sha256(f"styletune-study:{name}".encode()).digest()[:8], "big", signed=True)
    with _reentrant(f"{url}#{name}") as taken:
        if taken is None:
            yield
            return
        try:
            engine = sqlalchemy.create_engine(url, poolclass=NullPool)
            conn = engine.connect()
        except Exception:  # noqa: BLE001 - open_storage then reports the bad URL or server in one line
            yield
            return
        try:
            if dialect in ("postgresql", "postgres"):
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            else:
                conn.execute(sqlalchemy.text("SELECT GET_LOCK(:k, 3600)"), {"k": f"styletune-{key}"})
            taken()
            yield
        finally:
            conn.close()  # ends the session, which releases a session-level lock
            engine.dispose()


# -- opening -------------------------------------------------------------------------------------

def _ready(url: str, db: Path | None) -> bool:
    """Whether the database already holds Optuna's complete schema (and, for SQLite, is in WAL mode).

    Optuna stamps ``alembic_version`` last, after creating its tables, so a stamped
    database needs no writes to open. Reads only; any error means "not ready".
    """
    if db is not None:
        import sqlite3

        if not db.exists() or db.stat().st_size == 0:
            return False
        try:
            with contextlib.closing(sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True, timeout=60)) as conn:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                stamped = conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0]
            return mode == "wal" and stamped > 0
        except sqlite3.Error:
            return False
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    try:
        engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    except Exception:  # noqa: BLE001 - RDBStorage reports it
        return False
    try:
        with engine.connect() as conn:
            return bool(conn.execute(sqlalchemy.text("SELECT count(*) FROM alembic_version")).scalar())
    except Exception:  # noqa: BLE001 - no table yet, or a server that does not answer (reported later)
        return False
    finally:
        engine.dispose()


def _set_up(url: str, db: Path | None, **kwargs: Any):
    """Create Optuna's schema (under the storage lock) and return the storage."""
    import optuna

    with storage_lock(url, "optuna-schema"):
        if db is not None:
            import sqlite3

            # Write-ahead logging lets the dashboard read while workers write; set once, it
            # stays with the file. Done first, so the tables are created in WAL mode.
            with contextlib.closing(sqlite3.connect(db, timeout=60)) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
        return optuna.storages.RDBStorage(url, **kwargs)


def open_storage(url: str = DEFAULT_STORAGE, *, create: bool = False, heartbeat: int | None = None,
                 stale_trial_callback=None):
    """An Optuna ``RDBStorage`` for ``url``, with SQLite tuned for concurrent readers and writers.

    SQLite gets a 60 s busy timeout and write-ahead logging, so a dashboard reading while
    workers write waits briefly instead of failing with "database is locked". Without
    ``create``, a SQLite URL whose file does not exist is an error (nothing is created
    by merely looking). ``heartbeat`` (seconds) turns on Optuna's heartbeats with a grace
    period of :data:`GRACE_HEARTBEATS` intervals, and ``stale_trial_callback`` is Optuna's
    ``heartbeat_stale_trial_callback``: the tuner passes :class:`tuner.workers.RetryCleanCopy`
    so a trial whose worker died is queued again with the same parameters.
    """
    import sqlalchemy

    check_url(url)
    db = sqlite_path(url)
    engine_kwargs: dict[str, Any] = {}
    if db is not None:
        if not create and not db.exists():
            raise StorageError(f"{db}: no study database here; run `tuner search` first or pass --storage")
        if create:
            try:
                db.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create {db.parent} ({exc.strerror}); choose a writable --storage") from None
            if not os.access(db.parent, os.W_OK):
                raise StorageError(f"{db.parent} is not writable; fix its permissions or choose another --storage")
        engine_kwargs = {"connect_args": {"timeout": 60}}
    kwargs: dict[str, Any] = {"engine_kwargs": engine_kwargs, "heartbeat_interval": heartbeat,
                              "grace_period": heartbeat * GRACE_HEARTBEATS if heartbeat else None,
                              "heartbeat_stale_trial_callback": stale_trial_callback}
    try:
        if _ready(url, db):
            import optuna

            return optuna.storages.RDBStorage(url, **kwargs)
        return _set_up(url, db, **kwargs)
    except (sqlalchemy.exc.ArgumentError, ValueError) as exc:
        raise StorageError(f"{url!r} is not a valid storage URL ({str(exc).splitlines()[0]})") from None
    except sqlalchemy.exc.DatabaseError as exc:
        reason = str(exc.orig).splitlines()[0]
        if db is None:
            raise StorageError(f"{url}: cannot use the database server ({reason}); check that it runs and the URL's "
                               "host, port, user and database name") from None
        raise StorageError(f"{url}: cannot open the database ({reason}); point --storage at a study database") from None
    except Exception as exc:
        import sqlite3

        if isinstance(exc, sqlite3.DatabaseError) and db is not None:
            raise StorageError(f"{url}: cannot open the database ({str(exc).splitlines()[0]}); point --storage at "
                               "a study database") from None
        if not isinstance(exc, ImportError):
            raise
        # Optuna re-raises a missing driver as a plain ImportError
        missing = next((e.name for e in (exc, exc.__cause__) if isinstance(e, ModuleNotFoundError) and e.name), None)
        fix = f"pip install {missing}" if missing else "install the driver the URL names"
        raise StorageError(f"{url}: its database driver {missing or ''} is not installed; {fix} "
                           "(PostgreSQL: pip install 'psycopg[binary]')".replace("  ", " ")) from None
