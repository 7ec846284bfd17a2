"""Soak: many scene jobs through real workers while their processes are killed, over and over.

    make soak                       # SOAK_ARGS="--jobs 200 --kill-every 6" make soak
    .venv/bin/python bench/soak.py [--jobs 100] [--workers 2] [--kill-every 8] [--kills-per-job 2] [--worker-kill-share 0.25]
                                   [--restart-redis-every 60 [--redis-port 6391]]

Real Celery workers (prefork, one child each) over Redis on PostgreSQL run generation jobs
with the bundled model. Every `--kill-every` seconds a job in the middle of its work (one
killed fewer than `--kills-per-job` times) has its process killed with SIGKILL: usually the pool child, sometimes (`--worker-kill-share`) the
whole worker, which is then started again. With `--restart-redis-every`, the broker is a
private `redis-server` without persistence that is killed and started again (empty) that
often: the queued and unacknowledged messages are lost each time, and the workers' re-send of
lost messages must bring every job back. Leases are short (4 s), reaping frequent (2 s) and
lost messages re-sent after 10 s, so that recovery is measured in seconds. At the end it
prints, as JSON:

* jobs, kills (pool children, whole workers), completed, failed, not finished;
* duplicates: asset files stored more than once for one (job, channel, variant) — a killed
  worker may have written a file and died before its row;
* orphans: files in storage that no row points to (`manage.py storage_sweep`'s count);
* rows left running; the longest a killed job waited before a worker took it up again;
* redis_restarts.

Needs PostgreSQL and Redis (defaults: 127.0.0.1, database `vitrine_soak`, created if missing,
Redis db 9, flushed). Uses its own media folder in a temporary directory.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RECOVERY = {"VITRINE_JOB_LEASE_SECONDS": "4", "VITRINE_JOB_REAP_SECONDS": "2", "VITRINE_JOB_RESEND_SECONDS": "10"}
REDIS_SERVER = "/usr/bin/redis-server"


class PrivateRedis:
    """A redis-server of the soak's own, without persistence: killed, it comes back empty."""

    def __init__(self, port: int, log_dir: Path):
        self.port, self.log = port, (log_dir / "redis.log").open("a")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


class Worker:
    def __init__(self, index: int, env: dict, log_dir: Path):
        self.name = f"soak{index}"
        self.log = (log_dir / f"{self.name}.log").open("a")
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "cpu,gpu,io", "-P", "prefork",
             "--concurrency", "1", "-n", f"{self.name}@%h", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=8.0, help="seconds between kills")
    parser.add_argument("--kills-per-job", type=int, default=2, help="kill one job at most this often (VITRINE_JOB_MAX_ATTEMPTS fails a job killed 5 times, by design)")
    parser.add_argument("--worker-kill-share", type=float, default=0.25, help="share of kills that take the whole worker")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/vitrine_soak")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--restart-redis-every", type=float, default=0.0, metavar="SECONDS",
                        help="use a private redis-server without persistence and kill and restart it this often (0: never)")
    parser.add_argument("--redis-port", type=int, default=6391, help="port of that private redis-server")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    _ensure_database(args.database)
    var = Path(tempfile.mkdtemp(prefix="vitrine-soak-"))
    private_redis = None
    if args.restart_redis_every > 0:
        private_redis = PrivateRedis(args.redis_port, var)
        private_redis.start()
        args.redis = private_redis.url
    env = {
        **os.environ, **RECOVERY, "DJANGO_SETTINGS_MODULE": "config.settings.local", "DATABASE_URL": args.database,
        "REDIS_URL": args.redis, "VITRINE_VAR_DIR": str(var), "VITRINE_MEDIA_ROOT": str(var / "media"),
        "DJANGO_SECRET_KEY": "soak", "VITRINE_DEMO": "true",
    }
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "VITRINE_VAR_DIR", "VITRINE_MEDIA_ROOT", "DJANGO_SECRET_KEY", "VITRINE_DEMO", *RECOVERY)})

    import django

    django.setup()
    import redis
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command

    from brand.models import ScenePreset
    from brand.services import workspace_defaults_ensure
    from catalog.jobs import JobStatus
    from catalog.management.commands.storage_sweep import referenced_names, stored_names
    from catalog.services import workspace_create
    from catalog.models import User
    from studio.models import Asset, GenerationJob
    from studio.services import generation_job_create, photo_add
    from tests.images import product_on_white

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(args.redis).flushdb()
    owner = User.objects.create_user(email=f"soak-{int(time.time())}@example.com")
    workspace = workspace_create(name=f"Soak {int(time.time())}", owner=owner)
    workspace_defaults_ensure(workspace=workspace)
    ScenePreset.objects.filter(workspace=workspace).update(steps=args.steps)

    workers = [Worker(i, env, var) for i in range(args.workers)]
    for worker in workers:
        worker.start()
    kills: Counter = Counter()
    killed_jobs: Counter = Counter()
    waits: list[float] = []
    pending_kills: dict[int, tuple[float, str]] = {}  # job id → (time of the kill, worker it had)
    started = time.monotonic()
    redis_restarts = 0
    next_restart = started + args.restart_redis_every if private_redis else float("inf")
    try:
        photo = photo_add(workspace=workspace, file=SimpleUploadedFile("soak.png", product_on_white(size=(320, 240), seed=args.seed))).photo
        job_ids = [
            generation_job_create(photo=photo, user=owner, variants=2, seed=i, channels=["as-photo"]).pk for i in range(args.jobs)
        ]
        next_kill = time.monotonic() + args.kill_every
        while time.monotonic() - started < args.timeout:
            jobs = list(GenerationJob.objects.filter(pk__in=job_ids))
            for job in jobs:  # a killed job counts as recovered once another process holds it or it ended
                if job.pk in pending_kills and (job.worker != pending_kills[job.pk][1] or not job.is_active):
                    waits.append(time.monotonic() - pending_kills.pop(job.pk)[0])
            if all(not job.is_active for job in jobs):
                break
            if time.monotonic() >= next_restart:
                private_redis.restart()  # the queue and every unacknowledged message are gone
                redis_restarts += 1
                next_restart = time.monotonic() + args.restart_redis_every
            if time.monotonic() >= next_kill:
                busy = [
                    j for j in jobs
                    if j.status == JobStatus.RUNNING and j.worker and 5 <= j.progress < 90 and j.pk not in pending_kills
                    and killed_jobs[j.pk] < args.kills_per_job
                ]
                if busy:
                    victim = rng.choice(busy)
                    pid = int(victim.worker.rsplit(":", 1)[1])
                    owner_worker = next((w for w in workers if w.process and w.process.pid == pid), None)
                    whole = owner_worker is None and rng.random() < args.worker_kill_share
                    if whole:  # the job runs in a pool child; take its parent down with it
                        owner_worker = next((w for w in workers if w.process and _is_child(pid, w.process.pid)), None)
                    try:
                        if whole and owner_worker is not None:
                            owner_worker.process.send_signal(signal.SIGKILL)
                            owner_worker.process.wait()
                            # A pool child outlives its killed parent and would finish the
                            # job; a machine that dies takes both.
                            if _alive(pid):
                                os.kill(pid, signal.SIGKILL)
                            owner_worker.start()
                            kills["workers"] += 1
                        else:
                            os.kill(pid, signal.SIGKILL)
                            kills["pool_children"] += 1
                        pending_kills[victim.pk] = (time.monotonic(), victim.worker)
                        killed_jobs[victim.pk] += 1
                    except ProcessLookupError:
                        pass
                next_kill = time.monotonic() + args.kill_every
            time.sleep(0.25)
    finally:
        for worker in workers:
            worker.stop()
        if private_redis is not None:
            private_redis.stop()

    jobs = list(GenerationJob.objects.filter(pk__in=job_ids))
    statuses = Counter(job.status for job in jobs)
    files = [name for name in stored_names() if name.startswith(f"assets/{workspace.pk}/")]
    per_variant = Counter(name.rsplit("/", 1)[1].rsplit("-", 1)[0] + f"@{name.split('/')[2]}" for name in files if name.endswith(".png"))
    referenced = referenced_names()
    print(json.dumps({
        "jobs": len(jobs),
        "workers": args.workers,
        "kills": {"pool_children": kills["pool_children"], "workers": kills["workers"], "jobs_killed": len(killed_jobs)},
        "completed": statuses[JobStatus.SUCCEEDED],
        "failed": statuses[JobStatus.FAILED],
        "not_finished": sum(1 for job in jobs if job.is_active),
        "rows_left_running": statuses[JobStatus.RUNNING],
        "assets": Asset.objects.filter(job_id__in=job_ids).count(),
        "assets_expected": 2 * len(jobs),
        "duplicates": sum(count - 1 for count in per_variant.values() if count > 1),
        "orphans": sum(1 for name in stored_names() if name not in referenced),
        "redis_restarts": redis_restarts,
        "longest_wait_after_kill_s": round(max(waits), 2) if waits else None,
        "median_wait_after_kill_s": round(sorted(waits)[len(waits) // 2], 2) if waits else None,
        "wall_s": round(time.monotonic() - started, 1),
        "machine": f"{os.cpu_count()} cores",
    }, indent=2))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _is_child(pid: int, parent: int) -> bool:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[1]) == parent
    except (OSError, ValueError, IndexError):
        return False


if __name__ == "__main__":
    main()
