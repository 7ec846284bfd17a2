"""The fault test on `make run`'s embedded defaults: DATABASE_URL unset (a SQLite file under
VITRINE_VAR_DIR) and REDIS_URL empty (the filesystem broker), prefork workers as `make run`
starts them. The suite's own connection is PostgreSQL, so everything here runs in
subprocesses against a var dir of the test's own, and the outcome is read from the SQLite file."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, wait_for
from tests.test_job_faults import FAST_RECOVERY, _children

VARIANTS, CHANNELS = 2, ["as-photo"]

SETUP = """
import json
from django.core.files.uploadedfile import SimpleUploadedFile
from brand.models import ScenePreset
from brand.services import workspace_defaults_ensure
from catalog.models import Role
from studio.services import generation_job_create, photo_add
from tests.factories import MembershipFactory
from tests.images import product_on_white
from catalog.models import Membership, ProductPhoto
m = Membership.objects.first()
if m is None:  # the first batch: a workspace and its photo (whose cutout job goes to the broker too)
    m = MembershipFactory(role=Role.MERCHANT)
    workspace_defaults_ensure(workspace=m.workspace)
    ScenePreset.objects.filter(workspace=m.workspace).update(steps=10)
    photo_add(workspace=m.workspace, file=SimpleUploadedFile("box.png", product_on_white(size=(320, 240))))
photo = ProductPhoto.objects.get()
ids = [generation_job_create(photo=photo, user=m.user, variants=%d, seed=%d + 10 * i, channels=%r).pk for i in range(%d)]
print("IDS=" + json.dumps(ids))
"""

OUTCOME = """
import json
from catalog.management.commands.storage_sweep import referenced_names, stored_names
from catalog.models import PhotoJob
from studio.models import Asset, GenerationJob
print("OUTCOME=" + json.dumps({
    "jobs": {j.pk: [j.status, j.error, j.attempts, sorted(map(list, Asset.objects.filter(job=j).values_list("channel", "variant")))] for j in GenerationJob.objects.all()},
    "photo_jobs": {j.pk: [j.kind, j.status, j.error] for j in PhotoJob.objects.all()},
    "orphans": sorted(n for n in stored_names("assets") if n not in referenced_names()),
}))
"""


class Embedded:
    """`make run`'s environment under a var dir of the test's own."""

    def __init__(self, var: Path):
        self.var, self.db = var, var / "vitrine.sqlite3"
        self.env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        self.env.update(
            DJANGO_SETTINGS_MODULE="config.settings.local", REDIS_URL="", VITRINE_VAR_DIR=str(var),
            VITRINE_MEDIA_ROOT=str(var / "media"), **FAST_RECOVERY,
        )
        self.workers: list[tuple[subprocess.Popen, Path]] = []

    def manage(self, *args: str, marker: str = "") -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        if marker:
            return next(line[len(marker):] for line in done.stdout.splitlines() if line.startswith(marker))
        return done.stdout

    def rows(self, sql: str, *params) -> list[tuple]:
        with sqlite3.connect(self.db, timeout=20) as db:
            return db.execute(sql, params).fetchall()

    def start_worker(self, name: str) -> subprocess.Popen:
        log = self.var / f"worker-{name}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "cpu,gpu,io", "--concurrency", "2",
             "-n", f"{name}@%h", "--loglevel", "INFO"],
            cwd=ROOT, env=self.env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        )
        self.workers.append((process, log))
        wait_for(lambda: self.rows("SELECT 1 FROM catalog_workerheartbeat WHERE hostname LIKE ?", f"{name}@%") or process.poll() is not None, 90, f"worker {name}")
        assert process.poll() is None, log.read_text()
        return process

    def running(self, job_ids: list[int], not_pids: set[int]) -> tuple[int, int] | None:
        marks = ",".join("?" * len(job_ids))
        for pk, worker in self.rows(
            f"SELECT id, worker FROM studio_generationjob WHERE id IN ({marks}) AND status='running' AND progress >= 5 AND progress < 90 AND worker != ''", *job_ids
        ):
            pid = int(worker.rsplit(":", 1)[1])
            if pid not in not_pids:
                return pk, pid
        return None

    def unfinished(self) -> int:
        return sum(
            self.rows(f"SELECT count(*) FROM {table} WHERE status IN ('queued', 'running')")[0][0]
            for table in ("studio_generationjob", "catalog_photojob")
        )

    def stop(self) -> None:
        for process, _ in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.mark.integration
def test_jobs_survive_killed_pool_children_and_a_killed_worker_on_sqlite_and_the_filesystem_broker(tmp_path):
    embedded = Embedded(tmp_path / "var")
    embedded.var.mkdir()
    try:
        embedded.manage("migrate", "--no-input")
        assert not embedded.env.get("DATABASE_URL") and embedded.db.exists()  # the default: a file under the var dir
        worker = embedded.start_worker("faults")
        job_ids = json.loads(embedded.manage("shell", "-c", SETUP % (VARIANTS, 0, CHANNELS, 4), marker="IDS="))

        # A busy pool child dies, then (once a new child runs a job) the whole worker with its children.
        first_job, child = wait_for(lambda: embedded.running(job_ids, set()), 240, "a job in the middle of its work")
        assert child != worker.pid
        os.kill(child, signal.SIGKILL)
        job_ids += json.loads(embedded.manage("shell", "-c", SETUP % (VARIANTS, 100, CHANNELS, 1), marker="IDS="))
        second_job, second_child = wait_for(lambda: embedded.running(job_ids, {child}), 240, "a job running in a new pool child")
        children = _children(worker.pid)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        for pid in {second_child, *children}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        embedded.start_worker("rescuer")

        wait_for(lambda: embedded.unfinished() == 0, 420, "every job to finish")
        outcome = json.loads(embedded.manage("shell", "-c", OUTCOME, marker="OUTCOME="))
        expected = sorted([c, v] for c in CHANNELS for v in range(VARIANTS))
        jobs = {int(pk): row for pk, row in outcome["jobs"].items()}
        assert {pk: jobs[pk][:2] + [jobs[pk][3]] for pk in job_ids} == {pk: ["succeeded", "", expected] for pk in job_ids}
        assert jobs[first_job][2] >= 2 and jobs[second_job][2] >= 2, jobs
        # The photos' cutout and thumbnail jobs (sent over the same broker) ended too, and well.
        assert outcome["photo_jobs"] and all(status == "succeeded" for _, status, _ in outcome["photo_jobs"].values()), outcome["photo_jobs"]
        assert outcome["orphans"] == []
    except BaseException:
        embedded.stop()
        for _, log in embedded.workers:
            print(f"--- {log.name} ---\n{log.read_text()[-15000:]}")
        raise
    embedded.stop()
