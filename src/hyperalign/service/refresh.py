"""The one kind of background job: bring a user's profile up to date with their examples — infer it from all of them
when there is none, otherwise update it with the examples added since the last job (a person's edits survive an
update, as on the command line). With `serve --population-texts N`, an inference compares the person with the
tenant's other users' aggregates as well as with the model's default voice (population.py). The new version is
saved in one transaction at the end, through a store fenced by the job's row: if the user was deleted while the job
ran, the save is refused (JobCancelled) and nothing returns."""

from __future__ import annotations

import asyncio

from ..api import HyperAlign
from ..errors import InputError
from ..pipeline.options import InferenceOptions
from ..profiles.rejections import rejections, without_rejected
from ..profiles.store import Action, ProfileStore
from .jobs import Job, JobQueue, Outcome
from .population import tenant_population
from .users import list_examples

SERVICE_AUTHOR = "hyperalign-service"
REFRESH = "refresh"
REINFER = "reinfer"  # infer again from every text, as the first time (a new version on top of the current one)


class ProfileRefresher:
    def __init__(self, ha: HyperAlign, store: ProfileStore, queue: JobQueue, *, population_texts: int = 0,
                 population_min_users: int = 5):
        self.ha, self.store, self.queue = ha, store, queue
        self.population_texts, self.population_min_users = population_texts, population_min_users

    def options(self, store: ProfileStore, user_key: str) -> InferenceOptions | None:
        """The inference's options: the tenant's other users as its reference population, where there are enough
        of them (population.py); the library's defaults otherwise."""
        population = tenant_population(store, user_key, texts=self.population_texts,
                                       min_users=self.population_min_users)
        return InferenceOptions(reference=population) if population is not None else None

    async def __call__(self, user_key: str, job: Job) -> Outcome:
        if job.kind not in (REFRESH, REINFER):
            raise InputError(f"unknown job kind {job.kind!r}")
        store = self.store.fenced(self.queue.fence(job))  # every write of the job checks it may still write
        current = store.current_version(user_key)
        if current is None or job.kind == REINFER:
            stored = list_examples(store, user_key)
            if not stored:
                raise InputError("the user has no examples; add some first")
            # Measuring the population's texts is CPU work: off the event loop that also serves requests.
            options = await asyncio.to_thread(self.options, store, user_key) if self.population_texts else None
            profile = await self.ha.ainfer_profile(user_key, [s.example() for s in stored], options=options)
            # Inferred again from scratch, it must still not bring back what the person deleted.
            profile = without_rejected(profile, rejections(store, user_key))
            info = store.save(profile, expected_version=current or 0, author=SERVICE_AUTHOR, action=Action.INFER,
                              details={"job": job.id})
            return Outcome(version=info.version, through=stored[-1].id)
        through = self.queue.examples_through(user_key)
        stored = list_examples(store, user_key, after_id=through)
        if not stored:
            return Outcome(through=through)
        result = await self.ha.aupdate_profile(store, user_key, [s.example() for s in stored],
                                               author=SERVICE_AUTHOR, message=f"job {job.id}")
        return Outcome(version=result.version.version if result.version else None, through=stored[-1].id)


def finished_job(store: ProfileStore, queue: JobQueue, user_key: str, job_id: str) -> Job | None:
    """A job as clients are shown it: with `thin` once it succeeded (its profile has too few supported hypotheses).
    None when the job (or its user) is gone."""
    job = queue.get(user_key, job_id)
    if job is not None and job.status == "succeeded" and job.result_version is not None:
        try:
            job.thin = store.get(user_key, job.result_version).profile.report.too_few
        except InputError:  # the version is gone (the user was deleted and came back): nothing to say
            pass
    return job
