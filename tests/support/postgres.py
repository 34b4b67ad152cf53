"""Throwaway PostgreSQL cluster for the test suite.

No running server is assumed: :class:`PostgresCluster` runs ``initdb`` into a
private temporary directory, starts ``postgres`` on 127.0.0.1 with a free TCP
port and crash-unsafe-but-fast settings, and removes everything on
:meth:`PostgresCluster.stop` (also registered with :mod:`atexit`).

``initdb`` refuses to run as root, so when the tests run as root (CI) the
server tools are executed as the ``postgres`` system user via ``runuser``
(or ``su`` as a fallback), and the cluster directory is handed to that user.
"""

from __future__ import annotations

import atexit
import grp
import os
import pathlib
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import urllib.parse
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from abmhub.db.engine import Database

__all__ = [
    "PostgresCluster",
    "PostgresStartError",
    "PostgresUnavailable",
    "drop_every_connection",
    "find_pg_bin",
    "postgres_required",
]

PG_BIN_ENV = "ABMHUB_PG_BIN"
REQUIRE_ENV = "ABMHUB_REQUIRE_POSTGRES"
DEBIAN_PG_ROOT = pathlib.Path("/usr/lib/postgresql")
SUPERUSER = "abmhub"
SYSTEM_USER = "postgres"  # used to run initdb/pg_ctl when we are root
REQUIRED_TOOLS = ("initdb", "pg_ctl", "postgres")
START_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """PostgreSQL server binaries (or the means to run them) are missing."""


class PostgresStartError(RuntimeError):
    """The binaries exist but initdb / pg_ctl failed. Never a reason to skip."""


def postgres_required() -> bool:
    """True when a missing PostgreSQL must fail the tests instead of skipping them."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true"}


def _has_tools(bin_dir: pathlib.Path) -> bool:
    return all(os.access(bin_dir / tool, os.X_OK) for tool in REQUIRED_TOOLS)


def _version_key(path: pathlib.Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin -> numeric sort ("9.6" < "10" < "15").
    return tuple(int(p) for p in re.findall(r"\d+", path.parent.name)) or (-1,)


def find_pg_bin() -> pathlib.Path:
    """Directory holding initdb, pg_ctl and postgres.

    Order: ``$ABMHUB_PG_BIN`` (if set it must be valid), the highest
    ``/usr/lib/postgresql/<version>/bin``, then ``initdb`` on ``$PATH``.
    """
    searched: list[str] = []
    override = os.environ.get(PG_BIN_ENV)
    if override:
        bin_dir = pathlib.Path(override).expanduser()
        if _has_tools(bin_dir):
            return bin_dir
        raise PostgresUnavailable(
            f"${PG_BIN_ENV}={override!r} does not contain executable "
            f"{', '.join(REQUIRED_TOOLS)}; point it at a PostgreSQL server bin "
            "directory or unset it."
        )

    searched.append(str(DEBIAN_PG_ROOT / "*" / "bin"))
    candidates = sorted(
        (d for d in DEBIAN_PG_ROOT.glob("*/bin") if _has_tools(d)),
        key=_version_key,
        reverse=True,
    )
    if candidates:
        return candidates[0]

    searched.append("$PATH")
    initdb = shutil.which("initdb")
    if initdb:
        bin_dir = pathlib.Path(initdb).resolve().parent
        if _has_tools(bin_dir):
            return bin_dir

    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; searched "
        + ", ".join(searched)
        + f" (and ${PG_BIN_ENV} is unset). Install them with "
        "`apt-get install postgresql` (Debian/Ubuntu), or set "
        f"${PG_BIN_ENV} to the directory containing initdb."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: pathlib.Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<log {path} unreadable: {exc}>"
    return "\n".join(text.splitlines()[-lines:]) or "<log empty>"


def _traversable_by(path: pathlib.Path, user: pwd.struct_passwd) -> bool:
    """Can ``user`` reach ``path`` (x bit on it and every ancestor)?"""
    groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem}
    for p in [path, *path.parents]:
        st = p.stat()
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
    return True


class PostgresCluster:
    """A private PostgreSQL cluster living in a temporary directory.

    >>> with PostgresCluster() as pg:
    ...     url = pg.create_database("t1")
    """

    def __init__(self, base_dir: pathlib.Path | None = None, settings: dict[str, str] | None = None):
        self.bin_dir = find_pg_bin()
        self._settings = dict(settings or {})  # postgresql.conf overrides, e.g. {"shared_buffers": "2GB"}
        self._base_dir = pathlib.Path(base_dir) if base_dir is not None else None
        self._as_root = os.geteuid() == 0
        self._sys_user: pwd.struct_passwd | None = None
        if self._as_root:
            try:
                self._sys_user = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root but there is no {SYSTEM_USER!r} system user "
                    "to run initdb as (initdb refuses to run as root); "
                    "`apt-get install postgresql` creates it."
                ) from None
        self.root_dir: pathlib.Path | None = None  # removed by stop()
        self.data_dir: pathlib.Path | None = None
        self.socket_dir: pathlib.Path | None = None
        self.log_file: pathlib.Path | None = None
        self._port: int | None = None
        self._running = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------ plumbing
    def _cmd(self, argv: Sequence[str]) -> list[str]:
        argv = [str(a) for a in argv]
        if not self._as_root:
            return argv
        if shutil.which("runuser"):
            return ["runuser", "-u", SYSTEM_USER, "--", *argv]
        if shutil.which("su"):
            return ["su", SYSTEM_USER, "-s", "/bin/sh", "-c", shlex.join(argv)]
        raise PostgresUnavailable(
            f"running as root and neither `runuser` nor `su` is available to drop to the {SYSTEM_USER!r} user"
        )

    def _run(self, argv: Sequence[str], what: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        proc = subprocess.run(
            self._cmd(argv),
            cwd=self.root_dir,  # the postgres user may not be able to read our cwd
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S + 30,
        )
        if proc.returncode != 0:
            msg = f"{what} failed (exit {proc.returncode}): {shlex.join(proc.args)}\n"
            msg += (proc.stdout + proc.stderr).strip()
            if self.log_file is not None and self.log_file.exists():
                msg += f"\n--- tail of {self.log_file} ---\n{_tail(self.log_file)}"
            raise PostgresStartError(msg)
        return proc

    def _chown(self, path: pathlib.Path) -> None:
        if self._sys_user is not None:
            os.chown(path, self._sys_user.pw_uid, self._sys_user.pw_gid)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        with self._lock:
            if self._running:
                return
            # Register first so that even a half-started cluster is cleaned up.
            atexit.register(self.stop)
            try:
                self._start()
            except BaseException:
                self._stop_locked()
                raise

    def _start(self) -> None:
        if self._base_dir is not None:
            self._base_dir.mkdir(parents=True, exist_ok=True)
        self.root_dir = pathlib.Path(tempfile.mkdtemp(prefix="abmhub-pg-", dir=self._base_dir))
        # mkdtemp gives 0700 root; the postgres user must be able to enter it.
        os.chmod(self.root_dir, 0o755)
        if self._sys_user is not None and not _traversable_by(self.root_dir, self._sys_user):
            raise PostgresStartError(
                f"{self.root_dir} is not traversable by the {SYSTEM_USER!r} user "
                "(some parent directory lacks o+x); pass a different base_dir"
            )
        self.data_dir = self.root_dir / "data"
        self.socket_dir = self.root_dir / "sock"  # short: sun_path is ~107 bytes
        for d in (self.data_dir, self.socket_dir):
            d.mkdir(mode=0o700)
            self._chown(d)
        self.log_file = self.data_dir / "postgresql.log"

        self._run(
            [
                self.bin_dir / "initdb",
                "-D",
                self.data_dir,
                "-A",
                "trust",
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            "initdb",
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "128MB",
            "logging_collector": "off",
            **self._settings,
        }
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# abmhub throwaway test cluster\n")
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())

        # The free port is probed then released, so another process can grab it
        # before postgres binds it: retry a few times with a fresh port.
        last_error: PostgresStartError | None = None
        for _ in range(5):
            port = _free_port()
            try:
                self._run(
                    [
                        self.bin_dir / "pg_ctl",
                        "start",
                        "-D",
                        self.data_dir,
                        "-l",
                        self.log_file,
                        "-w",
                        "-t",
                        str(START_TIMEOUT_S),
                        "-o",
                        f"-p {port}",
                    ],
                    "pg_ctl start",
                )
            except PostgresStartError as exc:
                last_error = exc
                if "could not bind" in str(exc) or "already in use" in str(exc):
                    continue
                raise
            self._port = port
            self._running = True
            return
        assert last_error is not None
        raise last_error

    def stop(self) -> None:
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        try:
            if self.data_dir is not None and (self.data_dir / "postmaster.pid").exists():
                try:
                    self._run(
                        [self.bin_dir / "pg_ctl", "stop", "-D", self.data_dir, "-m", "immediate", "-w"],
                        "pg_ctl stop",
                    )
                except (PostgresStartError, subprocess.TimeoutExpired):
                    self._kill_postmaster()
        finally:
            self._running = False
            if self.root_dir is not None:
                shutil.rmtree(self.root_dir, ignore_errors=True)
                self.root_dir = None
            atexit.unregister(self.stop)

    def _kill_postmaster(self) -> None:
        """Last resort if pg_ctl stop failed: SIGKILL the postmaster by pid."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self._port}" if self._running else "stopped"
        return f"<PostgresCluster {state} dir={self.root_dir}>"

    # ------------------------------------------------------------ access
    @property
    def running(self) -> bool:
        return self._running

    @property
    def port(self) -> int:
        if not self._running or self._port is None:
            raise RuntimeError("PostgresCluster is not running; call start() first")
        return self._port

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL for ``dbname`` on this cluster."""
        db = urllib.parse.quote(dbname, safe="")
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{db}"

    def _admin_connect(self):
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        )

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE ``name`` (optionally from ``template``); returns its URL.

        PostgreSQL refuses to copy a template that has open connections, so
        dispose of engines on the template first.
        """
        from psycopg import sql

        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            stmt += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with self._admin_connect() as conn:
            conn.execute(stmt)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS, terminating other connections first."""
        from psycopg import sql

        with self._admin_connect() as conn:
            if conn.info.server_version >= 130000:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                return
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def drop_every_connection(db: Database) -> int:
    """What a server restart does to the pool: every session of the database is ended."""
    import psycopg

    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert ended is not None
    return int(ended[0])
