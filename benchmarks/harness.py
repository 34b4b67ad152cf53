"""Shared plumbing of the abmhub benchmarks: databases, servers, timing, reports.

Every benchmark module (accounts today; deals, activities, signals, scoring, multi-process
later) builds on the same few pieces:

- `Run` — one benchmark run: an `ExitStack` that owns every resource (temp dirs, the
  PostgreSQL cluster, server processes), so a failure or Ctrl-C anywhere cleans all of them
  up; plus the `Report` it fills in.
- `Databases` — fresh, empty databases on the chosen backend: a SQLite file in a temp dir,
  or a new database on one throwaway PostgreSQL cluster (`tests/support/postgres.py`).
- `Server` — `python -m abmhub serve` as a child process (own session, so a terminal Ctrl-C
  reaches only the benchmark, which then stops the server in order), its first API key,
  its CPU time.
- `abmhub_cli` — the `abmhub` command line (workspaces, keys) against a database.
- `CpuMeter`, `latency_summary`, `percentile` — what a figure is made of.
- `Report` — figures (value, baseline, ratio) as a Markdown table and a JSON file with the
  machine's description.

Client and server share the machine (2 cores when this was written): every throughput is
"client + server + database on the same cores", and the report says so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.wire import WireClient

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent
RESULTS_DIR = BENCHMARKS_DIR / "results"
BACKENDS = ("sqlite", "postgresql")

SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 20.0
KEY_BANNER = "API key (shown once, store it now):"
SHARED_MACHINE_NOTE = (
    "Client, server and database share this machine's cores; every figure is the whole "
    "system's throughput, not the server's alone."
)


class BenchmarkError(RuntimeError):
    """A benchmark could not produce a trustworthy figure (HTTP error, failed item, ...)."""


def log(message: str) -> None:
    """Progress goes to stderr, so stdout holds only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- statistics ----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Request latencies in milliseconds: n, mean, p50, p90, p99, max."""
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": len(ms),
        "mean_ms": sum(ms) / len(ms) if ms else math.nan,
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else math.nan,
    }


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or baseline == 0 or math.isnan(value) or math.isnan(baseline):
        return None
    return value / baseline


# --- CPU accounting -----------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a live process (0.0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read().decode()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces; fields after it start past the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def proc_status_mb(pid: int, field: str) -> float | None:
    """A memory field of /proc/PID/status (`VmRSS`, `VmHWM`, ...) in MiB; None when unreadable."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return None


def child_pids(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                raw = handle.read().decode()
        except OSError:
            continue
        if int(raw[raw.rindex(")") + 2 :].split()[1]) == parent:
            found.append(int(entry))
    return found


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (/proc/stat), for foreign-load checks."""
    try:
        with open("/proc/stat", "rb") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return math.nan
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    # guest time is already included in user/nice
    return (sum(fields[:8]) - idle) / _CLOCK_TICKS


class CpuMeter:
    """CPU seconds spent by named groups of processes between `start()` and `stop()`.

    Groups: "client" (this process, all threads), plus whatever the caller registers, e.g.
    "server" (the abmhub process) and "postgres" (postmaster and its children). Processes
    that start during the interval count from zero; ones that exit during it are lost, so
    the figures are lower bounds — good enough to see who burns the cores.
    """

    def __init__(self, groups: dict[str, Any]) -> None:
        # group name -> callable returning the pids of the group right now
        self._groups = groups
        self._start: dict[str, dict[int, float]] = {}
        self._wall = 0.0
        self._client = 0.0
        self.result: dict[str, float] = {}

    def _sample(self) -> dict[str, dict[int, float]]:
        return {name: {pid: process_cpu_seconds(pid) for pid in pids()} for name, pids in self._groups.items()}

    def start(self) -> None:
        self._start = self._sample()
        self._machine = machine_busy_seconds()
        self._client = time.process_time()
        self._wall = time.perf_counter()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._wall
        client = time.process_time() - self._client
        end = self._sample()
        result = {"wall_s": wall, "client_cpu_s": client}
        for name, pids in end.items():
            before = self._start.get(name, {})
            result[f"{name}_cpu_s"] = sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in pids.items())
        cpu_total = sum(v for k, v in result.items() if k.endswith("_cpu_s"))
        result["cores_busy"] = cpu_total / wall if wall > 0 else math.nan
        # Everything else the machine did meanwhile (other users, kernel threads): a run
        # with a large share here was measured on a busy machine.
        machine = machine_busy_seconds() - self._machine
        result["machine_busy_s"] = machine
        result["other_cpu_s"] = max(0.0, machine - cpu_total)
        self.result = result
        return result


# --- machine -------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_total_mb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total_mb = int(line.split()[1]) // 1024
    git_commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git_commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
    try:
        from abmhub import __version__ as abmhub_version
    except Exception:
        abmhub_version = None
    return {
        "nproc": os.cpu_count(),
        "sched_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model,
        "mem_total_mb": mem_total_mb,
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "abmhub_version": abmhub_version,
        "git_commit": git_commit,
        "note": SHARED_MACHINE_NOTE,
    }


def utc_stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


# --- processes and ports -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_env() -> dict[str, str]:
    """The environment for abmhub child processes: ours, minus anything that picks a database."""
    env = {k: v for k, v in os.environ.items() if k != "ABMHUB_DATABASE_URL"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def abmhub_cli(args: Sequence[str], database_url: str, *, timeout: float = 120.0) -> str:
    """Run `python -m abmhub ARGS --database-url URL`; return its stdout, raise on failure."""
    argv = [sys.executable, "-m", "abmhub", *args, "--database-url", database_url]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=python_env(), stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise BenchmarkError(f"`abmhub {' '.join(args)}` failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def create_workspace_key(database_url: str, workspace: str, user: str = "bench@example.com") -> str:
    """Create a workspace (if new) and an API key for `user` in it; return the key."""
    abmhub_cli(["workspaces", "create", workspace, "--quiet"], database_url)
    key = abmhub_cli(["keys", "create", "--workspace", workspace, "--user", user, "--quiet"], database_url).strip()
    if len(key) < 32 or any(c.isspace() for c in key):
        raise BenchmarkError(f"`abmhub keys create` printed {key!r}, not a key")
    return key


_SERVE_HELP: dict[tuple[str, ...], str] = {}


def serve_supports(option: str, command: Sequence[str] | None = None) -> bool:
    """Whether `abmhub serve` (or `command serve`) knows `option` — abmhub grows options over time."""
    key = tuple(command) if command else (sys.executable, "-m", "abmhub")
    if key not in _SERVE_HELP:
        proc = subprocess.run(
            [*key, "serve", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**python_env(), "COLUMNS": "200"},
        )
        _SERVE_HELP[key] = proc.stdout
    return option in _SERVE_HELP[key]


class Server:
    """`python -m abmhub serve` on a free port, as a context manager.

    `key` is the API key the server prints on an empty database (None otherwise). The child
    runs in its own session: a Ctrl-C in the terminal interrupts the benchmark only, and
    the benchmark stops the server (SIGINT, then SIGKILL after a grace period).
    """

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        *,
        name: str = "server",
        log_level: str = "warning",
        extra_args: Sequence[str] = (),
        command: Sequence[str] | None = None,
    ) -> None:
        # `command` replaces `python -m abmhub` (e.g. a wrapper that patches something for an
        # A/B experiment); `serve --port ... --database-url ...` is appended to it.
        self.command = list(command) if command else [sys.executable, "-m", "abmhub"]
        self.database_url = database_url
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{name}.log"
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None
        self.key: str | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        argv = [
            *self.command, "serve",
            "--port", str(self.port),
            "--database-url", self.database_url,
            "--log-level", self.log_level,
            *self.extra_args,
        ]  # fmt: skip
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=python_env(),
                start_new_session=True,
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        with httpx.Client(timeout=2.0) as probe:
            while True:
                if self.process.poll() is not None:
                    raise BenchmarkError(
                        f"abmhub serve exited with {self.process.returncode} while starting:\n{self.log_tail()}"
                    )
                try:
                    if probe.get(f"{self.base_url}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise BenchmarkError(
                        f"abmhub serve not healthy after {SERVER_START_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
                    )
                time.sleep(0.1)
        self.key = self._key_from_log()

    def _key_from_log(self) -> str | None:
        lines = self.log_path.read_text(errors="replace").splitlines()
        for i, line in enumerate(lines):
            if KEY_BANNER in line and i + 1 < len(lines):
                return lines[i + 1].strip()
        return None

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid) if self.process else 0.0

    def memory_mb(self) -> dict[str, float | None]:
        """The server's resident memory now (`VmRSS`) and at its peak so far (`VmHWM`), in MiB."""
        return {"rss_mb": proc_status_mb(self.pid, "VmRSS"), "peak_mb": proc_status_mb(self.pid, "VmHWM")}

    def stop(self) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=10)


def http_client(base_url: str, key: str, *, timeout: float = 120.0) -> WireClient:
    """A keep-alive client for one benchmark thread, already connected (benchmarks/wire.py)."""
    client = WireClient(base_url, headers={"X-Api-Key": key, "Content-Type": "application/json"}, timeout=timeout)
    client.get("/healthz").raise_for_status()  # open the connection outside any timing
    return client


# --- databases -----------------------------------------------------------------------------


def _shared_buffers() -> str:
    """A quarter of the machine's RAM, at most 8 GiB (PostgreSQL's guidance for a dedicated server)."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{min(ram // 4, 8 << 30) >> 20}MB"


class Databases:
    """Fresh empty databases on one backend; everything is removed by the run's ExitStack."""

    def __init__(self, backend: str, stack: contextlib.ExitStack, workdir: Path) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}")
        self.backend = backend
        self._stack = stack
        self._workdir = workdir
        self._cluster: Any = None
        self.info: dict[str, Any] = {"backend": backend}

    def new(self, name: str) -> str:
        """A SQLAlchemy URL of a new, empty database (not migrated: abmhub does that itself)."""
        if self.backend == "sqlite":
            path = self._workdir / f"{name}.db"
            if path.exists():
                raise BenchmarkError(f"{path} exists already")
            self.info.setdefault("sqlite_version", _sqlite_version())
            return f"sqlite:///{path}"
        cluster = self._postgres()
        return cluster.create_database(name)

    def drop(self, url: str) -> None:
        """Remove a database once a benchmark is done with it (no server may still use it).

        Besides disk space this matters for timing: PostgreSQL's autovacuum would otherwise
        analyze and vacuum a freshly written database while the next phase is measured.
        """
        if self.backend == "sqlite":
            path = Path(url.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        if self._cluster is not None:
            self._cluster.drop_database(url.rsplit("/", 1)[1])

    def _postgres(self) -> Any:
        if self._cluster is None:
            if str(REPO_ROOT) not in sys.path:
                sys.path.insert(0, str(REPO_ROOT))
            from tests.support.postgres import PostgresCluster

            cluster = PostgresCluster(settings={"shared_buffers": _shared_buffers()})
            # Registered before start(): a half-started cluster is stopped too.
            self._stack.callback(cluster.stop)
            log("starting a throwaway PostgreSQL cluster")
            cluster.start()
            self._cluster = cluster
            self.info.update(postgres_bin=str(cluster.bin_dir), postgres_version=self._postgres_version())
            self.info["postgres_settings"] = (
                "throwaway cluster (tests/support/postgres.py): fsync=off, synchronous_commit=off, "
                f"full_page_writes=off, shared_buffers={_shared_buffers()} (a quarter of the RAM, PostgreSQL's "
                "guidance for a dedicated server; the default 128MB caches little of a 1M-account database)"
            )
        return self._cluster

    def _postgres_version(self) -> str | None:
        with contextlib.suppress(Exception), self._cluster._admin_connect() as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
        return None

    def postgres_pids(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer, ...), for CpuMeter."""
        if self._cluster is None or self._cluster.data_dir is None:
            return []
        try:
            postmaster = int((self._cluster.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return [postmaster, *child_pids(postmaster)]

    def sizes(self, url: str) -> dict[str, Any]:
        """On-disk size of a database (SQLite file + WAL, or pg_database_size)."""
        if self.backend == "sqlite":
            path = Path(url.removeprefix("sqlite:///"))
            return {
                "db_bytes": path.stat().st_size if path.exists() else None,
                "wal_bytes": Path(f"{path}-wal").stat().st_size if Path(f"{path}-wal").exists() else 0,
            }
        name = url.rsplit("/", 1)[1]
        with contextlib.suppress(Exception), self._cluster._admin_connect() as conn:
            return {"db_bytes": conn.execute("SELECT pg_database_size(%s)", (name,)).fetchone()[0]}
        return {}


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


# --- report --------------------------------------------------------------------------------


@dataclass(slots=True)
class Figure:
    """One line of the report: a measured value, optionally against a baseline."""

    key: str
    label: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str | None = None
    ratio: float | None = None
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def fmt_number(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit == "ms":
        text = f"{value:.2f}" if value < 100 else f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


@dataclass
class Report:
    benchmark: str
    backend: str
    config: dict[str, Any]
    machine: dict[str, Any] = field(default_factory=machine_info)
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    started_utc: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    def add(
        self,
        key: str,
        label: str,
        value: float,
        unit: str,
        *,
        baseline: float | None = None,
        baseline_label: str | None = None,
        note: str | None = None,
        **extra: Any,
    ) -> Figure:
        figure = Figure(key, label, value, unit, baseline, baseline_label, ratio(value, baseline), note, extra)
        self.figures.append(figure)
        return figure

    def markdown(self) -> str:
        lines = [
            f"### {self.benchmark} — {self.backend}, {self.config.get('accounts', '?'):,} accounts"
            if isinstance(self.config.get("accounts"), int)
            else f"### {self.benchmark} — {self.backend}",
            "",
            "| figure | value | baseline | ratio |",
            "|---|---:|---|---:|",
        ]
        for f in self.figures:
            baseline = "–"
            if f.baseline is not None:
                baseline = f"{fmt_number(f.baseline, f.unit)}"
                if f.baseline_label:
                    baseline = f"{f.baseline_label}: {baseline}"
            elif f.baseline_label:
                baseline = f.baseline_label
            rat = "–" if f.ratio is None else f"{f.ratio:.2f}"
            lines.append(f"| {f.label} | {fmt_number(f.value, f.unit)} | {baseline} | {rat} |")
        m = self.machine
        lines += [
            "",
            f"{m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}, backend {self.backend}. {m['note']}",
        ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "backend": self.backend,
            "started_utc": self.started_utc,
            "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "config": self.config,
            "machine": self.machine,
            "figures": [asdict(f) for f in self.figures],
            "details": self.details,
        }

    def write(self, directory: Path = RESULTS_DIR) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.benchmark}-{self.backend}-{utc_stamp()}.json"
        path.write_text(json.dumps(self.to_json(), indent=2, default=_json_default) + "\n")
        return path


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# --- a run ----------------------------------------------------------------------------------


class Run:
    """One benchmark run: owns every resource through an ExitStack, and the signal handling.

    SIGTERM and SIGHUP are turned into SystemExit so that the same unwinding that handles
    Ctrl-C (KeyboardInterrupt) and errors stops servers and the cluster and deletes temp files.
    """

    def __init__(self, backend: str, *, keep_temp: bool = False) -> None:
        self.backend = backend
        self.keep_temp = keep_temp
        self.stack = contextlib.ExitStack()
        self._old_handlers: dict[int, Any] = {}

    def __enter__(self) -> Run:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, _exit_on_signal)
        self.stack.__enter__()
        if self.keep_temp:
            self.workdir = Path(tempfile.mkdtemp(prefix="abmhub-bench-"))
            log(f"keeping temp files in {self.workdir}")
        else:
            self.workdir = Path(self.stack.enter_context(tempfile.TemporaryDirectory(prefix="abmhub-bench-")))
        self.databases = Databases(self.backend, self.stack, self.workdir)
        return self

    def __exit__(self, *exc: object) -> bool | None:
        try:
            return self.stack.__exit__(*exc)
        finally:
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)

    def server(self, database_url: str, **kwargs: Any) -> Server:
        """A started server whose stop is owned by the run (also stoppable earlier)."""
        server = Server(database_url, self.workdir, **kwargs)
        self.stack.callback(server.stop)  # registered first: a failed start is cleaned up too
        server.start()
        return server

    def cpu_meter(self, server: Server | None = None) -> CpuMeter:
        groups: dict[str, Any] = {}
        if server is not None:
            groups["server"] = lambda: [server.pid]
        if self.backend == "postgresql":
            groups["postgres"] = self.databases.postgres_pids
        return CpuMeter(groups)


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def timed() -> Iterator[dict[str, float]]:
    """`with timed() as t: ...` then `t["s"]` holds the elapsed seconds (perf_counter)."""
    box: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["s"] = time.perf_counter() - start


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- profiling (optional: py-spy) -------------------------------------------------------------


class PySpy:
    """`py-spy record` of a server process while a phase runs (raw collapsed stacks).

    Sampling costs the profiled process a little, so figures of a profiled run are marked
    as such. Without py-spy on PATH (or next to the interpreter) this does nothing.
    """

    def __init__(self, pid: int, output: Path, *, rate: int = 250) -> None:
        self.pid = pid
        self.output = output
        self.rate = rate
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def executable() -> str | None:
        candidate = Path(sys.executable).with_name("py-spy")
        if candidate.exists():
            return str(candidate)
        from shutil import which

        return which("py-spy")

    def __enter__(self) -> PySpy:
        exe = self.executable()
        if exe is None:
            log("py-spy not found; not profiling")
            return self
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [exe, "record", "--pid", str(self.pid), "--format", "raw", "--rate", str(self.rate),
             "--nonblocking", "--output", str(self.output)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        time.sleep(0.5)  # let it attach before the phase starts
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def summarize_collapsed(path: Path, *, top: int = 30, focus: str = "abmhub") -> dict[str, Any]:
    """Inclusive share of samples per frame (and per `focus` frame) from a raw py-spy file."""
    if not path.exists():
        return {}
    total = 0
    inclusive: dict[str, int] = {}
    self_time: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        # Line numbers make frames unique per line; fold them to functions.
        names = [_frame_name(frame) for frame in frames]
        for name in set(names):
            inclusive[name] = inclusive.get(name, 0) + count
        self_time[names[-1]] = self_time.get(names[-1], 0) + count
    if total == 0:
        return {"samples": 0}

    def share(table: dict[str, int], pick: Any = lambda _: True) -> list[tuple[str, float]]:
        rows = sorted(((k, v / total) for k, v in table.items() if pick(k)), key=lambda kv: -kv[1])
        return [(k, round(v, 4)) for k, v in rows[:top]]

    return {
        "samples": total,
        "inclusive_focus": share(inclusive, lambda k: focus in k),
        "inclusive_all": share(inclusive),
        "self": share(self_time),
    }


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)".
    name, _, location = frame.partition(" (")
    file = location.rsplit(":", 1)[0] if location else ""
    return f"{name} ({file})" if file else name
