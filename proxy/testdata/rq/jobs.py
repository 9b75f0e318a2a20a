"""jobs.py: RQ as an application uses it, run by proxy/apps_rq_test.go
straight to a redis-server and through the proxy.

It enqueues JOBS jobs of tasks.add on the queue "default", one job that
fails, and one that depends on the first three (RQ then WATCHes their keys
while it enqueues the dependent), runs a burst worker (a Worker that forks
a work horse per job and returns when the queue is empty: it pops with
LPOP), then a worker that waits for jobs (BLPOP) while another thread
enqueues three more, and prints one JSON object: how many jobs finished
and failed, the sum of the results, the failed job's exception and the
dependent's result. It prints the error and exits 1 when RQ raises one.

Environment: REDIS_URL (redis://host:port), JOBS (default 50).
"""

import json
import logging
import os
import sys
import threading
import time
import traceback

from redis import Redis
from rq import Queue, Worker
from rq.job import JobStatus

import tasks


def blocking_worker(queue, conn, first):
    """Runs a worker that waits for jobs with BLPOP (its dequeue timeout
    5 s) until it has run three, which a thread enqueues after it started;
    returns those jobs."""
    late, errors = [], []
    worker = Worker([queue], connection=conn, name="apps-blocking", default_worker_ttl=20)

    def enqueue_late():
        try:
            for n in range(first, first + 3):
                time.sleep(0.3)
                late.append(queue.enqueue(tasks.add, n, n))
        except Exception as err:  # noqa: BLE001: raised again by the caller
            errors.append(err)
            worker._stop_requested = True  # it stops after its BLPOP ends

    pusher = threading.Thread(target=enqueue_late)
    pusher.start()
    try:
        worker.work(burst=False, max_jobs=3, logging_level="WARNING")
    finally:
        pusher.join()
    if errors:
        raise errors[0]
    return late


def main():
    started = time.monotonic()
    total = int(os.environ.get("JOBS", "50"))
    # No socket timeout: the Worker sets one longer than its BLPOP's.
    conn = Redis.from_url(os.environ["REDIS_URL"])
    out = {"ok": False, "stage": "enqueue", "enqueued": 0}
    try:
        queue = Queue("default", connection=conn)
        jobs = []
        for n in range(total):
            jobs.append(queue.enqueue(tasks.add, n, n))
            out["enqueued"] += 1
        failing = queue.enqueue(tasks.fail, "job meant to fail")
        dependent = queue.enqueue(tasks.total, *[j.id for j in jobs[:3]], depends_on=jobs[:3])
        out["queued"] = queue.count
        out["stage"] = "work"
        worker = Worker([queue], connection=conn, name="apps-worker")
        out["worked"] = worker.work(burst=True, logging_level="WARNING")
        out["stage"] = "blocking"
        jobs += blocking_worker(queue, conn, total)
        out["stage"] = "results"
        statuses = {}
        results = 0
        for job in jobs + [failing, dependent]:
            job.refresh()
            status = job.get_status()
            statuses[status] = statuses.get(status, 0) + 1
            if job in jobs and status == JobStatus.FINISHED:
                results += job.return_value()
        out.update(
            statuses=statuses,
            finished=queue.finished_job_registry.count,
            failed=queue.failed_job_registry.count,
            results=results,
            dependent=dependent.return_value(),
            failure=(failing.exc_info or "").strip().splitlines()[-1:],
            left=queue.count,
            ok=True,
        )
    except Exception as err:  # noqa: BLE001: printed for the test
        out["error"] = f"{type(err).__name__}: {err}"
        out["trace"] = traceback.format_exc().splitlines()[-6:]
    out["seconds"] = round(time.monotonic() - started, 3)
    print(json.dumps(out, sort_keys=True))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
