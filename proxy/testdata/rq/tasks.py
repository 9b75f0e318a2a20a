"""tasks: the functions the RQ jobs of jobs.py run in the worker."""


def add(a, b):
    """Returns a + b."""
    return a + b


def total(*job_ids):
    """Returns the sum of the results of the jobs job_ids (the jobs this one
    depends on, which finished before it started)."""
    from rq import get_current_job
    from rq.job import Job

    conn = get_current_job().connection
    return sum(Job.fetch(i, connection=conn).return_value() for i in job_ids)


def fail(message):
    """Raises a ValueError with message: a job that fails."""
    raise ValueError(message)
