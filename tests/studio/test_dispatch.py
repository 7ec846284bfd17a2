"""Fair dispatch of generation jobs: workspaces take turns for the gpu slots, the in-flight
limit holds under concurrent dispatchers, and a workspace's limits refuse with a reason."""
import threading
import time
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from brand.models import ScenePreset
from brand.services import workspace_defaults_ensure
from catalog.jobs import jobs_resend_lost
from catalog.models import JobStatus, PhotoJob
from config.celery import app
from studio import dispatch
from studio.dispatch import generation_jobs_dispatch
from studio.models import GenerationJob
from studio.services import WorkspaceLimitReached, generation_job_cancel, generation_job_create, photo_add
from tests.images import product_on_white

CHANNELS = ["as-photo"]


@pytest.fixture
def sent(monkeypatch):
    """Record the job ids the dispatcher sends to the broker, in order, instead of sending."""
    ids: list[int] = []
    monkeypatch.setattr(dispatch, "_send", lambda task_name, job_id: ids.append(job_id))
    return ids


@pytest.fixture
def photo_of(django_capture_on_commit_callbacks):
    """A product photo, with its cutout made, in the given workspace."""

    def make(workspace):
        workspace_defaults_ensure(workspace=workspace)
        ScenePreset.objects.filter(workspace=workspace).update(steps=2)
        with django_capture_on_commit_callbacks(execute=True):
            return photo_add(workspace=workspace, file=SimpleUploadedFile("box.png", product_on_white(size=(64, 48)))).photo

    return make


def _finish(job_id: int) -> None:
    GenerationJob.objects.filter(pk=job_id).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())


def _in_flight() -> int:
    return GenerationJob.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING], dispatched_at__isnull=False).count()


@pytest.mark.django_db
def test_a_single_job_of_another_workspace_goes_right_after_the_running_one(
    settings, sent, photo_of, workspace, other_membership, user, django_capture_on_commit_callbacks
):
    settings.VITRINE_GPU_IN_FLIGHT = 1
    photo_a, photo_b = photo_of(workspace), photo_of(other_membership.workspace)
    with django_capture_on_commit_callbacks(execute=True):
        a_jobs = [generation_job_create(photo=photo_a, user=user, variants=1, seed=i, channels=CHANNELS).pk for i in range(100)]
    with django_capture_on_commit_callbacks(execute=True):
        b_job = generation_job_create(photo=photo_b, user=other_membership.user, variants=1, seed=0, channels=CHANNELS).pk

    assert sent == [a_jobs[0]]  # one slot: the rest wait undispatched
    assert GenerationJob.objects.filter(dispatched_at__isnull=True).count() == 100
    for _ in range(4):
        _finish(sent[-1])
        with django_capture_on_commit_callbacks(execute=True):
            generation_jobs_dispatch()
        assert _in_flight() == 1

    assert sent == [a_jobs[0], b_job, a_jobs[1], a_jobs[2], a_jobs[3]]


@pytest.mark.django_db
def test_with_two_slots_workspaces_alternate(settings, sent, photo_of, workspace, other_membership, user, django_capture_on_commit_callbacks):
    settings.VITRINE_GPU_IN_FLIGHT = 0  # queue everything first, then open the slots
    photo_a, photo_b = photo_of(workspace), photo_of(other_membership.workspace)
    with django_capture_on_commit_callbacks(execute=True):
        a_jobs = [generation_job_create(photo=photo_a, user=user, variants=1, seed=i, channels=CHANNELS).pk for i in range(4)]
        b_jobs = [generation_job_create(photo=photo_b, user=user, variants=1, seed=i, channels=CHANNELS).pk for i in range(2)]
    assert sent == []

    settings.VITRINE_GPU_IN_FLIGHT = 2
    with django_capture_on_commit_callbacks(execute=True):
        generation_jobs_dispatch()
    assert sent == [a_jobs[0], b_jobs[0]]
    _finish(a_jobs[0])
    _finish(b_jobs[0])
    with django_capture_on_commit_callbacks(execute=True):
        generation_jobs_dispatch()

    assert sent == [a_jobs[0], b_jobs[0], a_jobs[1], b_jobs[1]]


@pytest.mark.django_db
def test_cancelling_an_undispatched_job_cancels_it_and_it_is_never_sent(
    settings, sent, photo_of, workspace, user, django_capture_on_commit_callbacks
):
    settings.VITRINE_GPU_IN_FLIGHT = 1
    photo = photo_of(workspace)
    with django_capture_on_commit_callbacks(execute=True):
        first, waiting = (generation_job_create(photo=photo, user=user, variants=1, seed=i, channels=CHANNELS) for i in range(2))
    assert sent == [first.pk]

    cancelled = generation_job_cancel(job=waiting)
    _finish(first.pk)
    with django_capture_on_commit_callbacks(execute=True):
        generation_jobs_dispatch()

    assert (cancelled.status, cancelled.finished_at is not None, cancelled.dispatched_at) == (JobStatus.CANCELLED, True, None)
    assert sent == [first.pk]


@pytest.mark.django_db
def test_a_send_the_broker_refuses_puts_the_job_back_to_waiting(settings, monkeypatch, photo_of, workspace, user):
    settings.VITRINE_GPU_IN_FLIGHT = 0
    job = generation_job_create(photo=photo_of(workspace), user=user, variants=1, seed=0, channels=CHANNELS)
    GenerationJob.objects.filter(pk=job.pk).update(dispatched_at=timezone.now())

    def refuse(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(app.tasks[job.task_name], "apply_async", refuse)
    with pytest.raises(ConnectionError):
        dispatch._send(job.task_name, job.pk)

    job.refresh_from_db()
    assert (job.status, job.dispatched_at) == (JobStatus.QUEUED, None)


@pytest.mark.django_db
def test_a_dispatched_job_whose_message_was_lost_is_sent_again_by_the_reaper(settings, photo_of, workspace, user):
    """`catalog.jobs.jobs_resend_lost` covers the gpu queue: a dispatched job that never
    started, with no message left on the broker, is sent again and runs."""
    settings.VITRINE_GPU_IN_FLIGHT, settings.VITRINE_JOB_RESEND_SECONDS = 1, 600
    job = generation_job_create(photo=photo_of(workspace), user=user, variants=1, seed=0, channels=CHANNELS)
    long_ago = timezone.now() - timedelta(seconds=601)
    # Dispatched long ago (it holds the only slot); the test's transaction never commits, so no message was sent.
    GenerationJob.objects.filter(pk=job.pk).update(dispatched_at=long_ago)
    assert generation_jobs_dispatch() == []

    assert jobs_resend_lost() == 1

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert jobs_resend_lost() == 0


# Limits --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_queued_jobs_limit_refuses_with_a_reason_and_stores_nothing(settings, sent, photo_of, workspace, user):
    settings.VITRINE_WORKSPACE_MAX_QUEUED_JOBS = 2
    photo = photo_of(workspace)
    for i in range(2):
        generation_job_create(photo=photo, user=user, variants=1, seed=i, channels=CHANNELS)
    photo.cutouts.all().delete()  # a job would also queue a new cutout: that must not happen either
    jobs_before, photo_jobs_before = GenerationJob.objects.count(), PhotoJob.objects.count()

    with pytest.raises(WorkspaceLimitReached) as refused:
        generation_job_create(photo=photo, user=user, variants=1, seed=9, channels=CHANNELS)

    assert refused.value.code == "too_many_queued_jobs"
    assert refused.value.messages == [
        "This workspace already has 2 scene jobs waiting, the most it may queue at once. "
        "Wait for some to finish, or cancel some, then try again."
    ]
    assert (GenerationJob.objects.count(), PhotoJob.objects.count()) == (jobs_before, photo_jobs_before)


@pytest.mark.django_db
def test_the_queued_jobs_limit_is_per_workspace(settings, sent, photo_of, workspace, other_membership, user):
    settings.VITRINE_WORKSPACE_MAX_QUEUED_JOBS = 1
    generation_job_create(photo=photo_of(workspace), user=user, variants=1, seed=0, channels=CHANNELS)

    other = generation_job_create(photo=photo_of(other_membership.workspace), user=other_membership.user, variants=1, seed=0, channels=CHANNELS)

    assert other.status == JobStatus.QUEUED


@pytest.mark.django_db
def test_the_daily_image_limit_counts_variants_times_channels(settings, sent, photo_of, workspace, user):
    settings.VITRINE_WORKSPACE_MAX_IMAGES_PER_DAY = 10
    photo = photo_of(workspace)
    generation_job_create(photo=photo, user=user, variants=4, seed=0, channels=["as-photo", "square-2048"])  # 8
    never_started = generation_job_create(photo=photo, user=user, variants=2, seed=0, channels=CHANNELS)  # 10
    with pytest.raises(WorkspaceLimitReached):
        generation_job_create(photo=photo, user=user, variants=1, seed=0, channels=CHANNELS)
    generation_job_cancel(job=never_started)  # cancelled before it started: it costs nothing
    generation_job_create(photo=photo, user=user, variants=2, seed=0, channels=CHANNELS)  # 10: at the limit
    count = GenerationJob.objects.count()

    with pytest.raises(WorkspaceLimitReached) as refused:
        generation_job_create(photo=photo, user=user, variants=1, seed=0, channels=CHANNELS)

    assert refused.value.code == "daily_image_limit"
    assert refused.value.messages == [
        "This workspace may ask for 10 images in any 24 hours and has asked for 10; this request would add 1. "
        "Ask for fewer variants or channels, or try again later."
    ]
    assert GenerationJob.objects.count() == count


@pytest.mark.django_db
def test_the_daily_image_limit_forgets_jobs_older_than_a_day(settings, sent, photo_of, workspace, user):
    settings.VITRINE_WORKSPACE_MAX_IMAGES_PER_DAY = 4
    photo = photo_of(workspace)
    old = generation_job_create(photo=photo, user=user, variants=4, seed=0, channels=CHANNELS)
    GenerationJob.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=24, minutes=1))

    assert generation_job_create(photo=photo, user=user, variants=4, seed=0, channels=CHANNELS).status == JobStatus.QUEUED


@pytest.mark.django_db
def test_the_api_answers_429_with_the_reason(settings, sent, api, photo_of, workspace):
    settings.VITRINE_WORKSPACE_MAX_QUEUED_JOBS = 1
    photo = photo_of(workspace)
    assert api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 1, "channels": CHANNELS}, format="json").status_code == 202

    response = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 1, "channels": CHANNELS}, format="json")

    assert response.status_code == 429
    assert response.json() == {
        "error": {
            "code": "too_many_queued_jobs",
            "message": "This workspace already has 1 scene jobs waiting, the most it may queue at once. "
            "Wait for some to finish, or cancel some, then try again.",
        }
    }
    assert GenerationJob.objects.count() == 1


@pytest.mark.django_db
def test_the_compose_page_shows_the_reason(settings, sent, client, user, photo_of, workspace):
    settings.VITRINE_WORKSPACE_MAX_QUEUED_JOBS = 0
    photo = photo_of(workspace)
    client.force_login(user)
    preset = ScenePreset.objects.get(workspace=workspace, is_default=True)
    kit = workspace.brand_kits.get(is_default=True)

    response = client.post(
        f"/photos/{photo.pk}/compose/", {"preset": preset.pk, "brand_kit": kit.pk, "variants": 1, "channels": ["square-2048"]}
    )

    assert response.status_code == 200
    assert '<div class="error" role="alert">This workspace already has 0 scene jobs waiting' in response.content.decode()
    assert GenerationJob.objects.count() == 0


# Concurrency ---------------------------------------------------------------------------------


# PostgreSQL: the test database on SQLite is in memory with a shared cache, whose table locks
# fail at once instead of waiting; a SQLite file (`make run`) serializes IMMEDIATE transactions.
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_never_pass_the_in_flight_limit(settings, sent, monkeypatch, photo_of, workspace, other_membership, user):
    settings.VITRINE_GPU_IN_FLIGHT = 0
    for ws, who in ((workspace, user), (other_membership.workspace, other_membership.user)):
        photo = photo_of(ws)
        for i in range(3):
            generation_job_create(photo=photo, user=who, variants=1, seed=i, channels=CHANNELS)
    settings.VITRINE_GPU_IN_FLIGHT = 1
    counted = dispatch._in_flight

    def slow_count():  # widen the window between counting and sending
        value = counted()
        time.sleep(0.5)
        return value

    monkeypatch.setattr(dispatch, "_in_flight", slow_count)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def dispatcher():
        try:
            start.wait()
            generation_jobs_dispatch()
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert len(sent) == 1
    assert _in_flight() == 1


def _holding(enter, *, release: threading.Event, held: threading.Event, errors: list) -> threading.Thread:
    """A thread that runs ``enter()`` on its own connection; ``enter`` sets ``held`` once it
    holds its row locks and waits for ``release`` before committing."""

    def run():
        try:
            enter()
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
            held.set()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert held.wait(30), "the other transaction never took its locks"
    return thread


# A worker storing a cutout locks the photo row and inserts a row pointing at the workspace;
# queuing a scene job locks the workspace row and inserts a row pointing at the photo. Row
# locks that only serialize (FOR NO KEY UPDATE) let the other side's foreign-key checks
# through; FOR UPDATE blocked them, and the two deadlocked (seen in CI, test_job_faults).
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("held_by", ["cutout being stored", "scene job being queued"])
def test_queuing_a_scene_job_and_storing_a_cutout_of_the_same_photo_do_not_wait_for_each_other(
    held_by, sent, monkeypatch, photo_of, workspace, user
):
    from studio import services, work

    photo = photo_of(workspace)
    cutout = photo.cutouts.get()
    release, held, errors = threading.Event(), threading.Event(), []

    def pause(real):
        def paused(*args, **kwargs):
            if threading.current_thread() is not threading.main_thread():
                held.set()
                release.wait(30)
            return real(*args, **kwargs)

        return paused

    def store_cutout():
        work.cutout_files_save(
            photo=photo, cutout_png=b"png", mask_png=b"png", source="touch_up", parent=cutout, user=user,
            backend=cutout.backend, backend_version=cutout.backend_version, mask_sha256=cutout.mask_sha256,
            bbox=cutout.bbox, locked_pixels=cutout.locked_pixels, coverage=cutout.coverage,
            edge_confidence=cutout.edge_confidence, confident=cutout.confident, notes=cutout.notes,
        )

    def queue_job():
        generation_job_create(photo=photo, user=user, variants=1, seed=7, channels=CHANNELS)

    if held_by == "cutout being stored":
        monkeypatch.setattr(work, "save_files", pause(work.save_files))
        thread, mine = _holding(store_cutout, release=release, held=held, errors=errors), queue_job
    else:
        monkeypatch.setattr(services, "_workspace_limits_check", pause(services._workspace_limits_check))
        thread, mine = _holding(queue_job, release=release, held=held, errors=errors), store_cutout
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")  # a wait on the other side fails here, not hangs
        mine()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
        release.set()
        thread.join(30)

    assert errors == []
    assert GenerationJob.objects.filter(photo=photo).count() == 1
    assert photo.cutouts.count() == 2
