"""The library's front door: HyperAlign ties a configured LLM client to the pipeline's steps (infer, generate,
deliberate) and to living profiles (update). Every method has an async twin that returns the same type."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from .config import Settings, load_settings
from .llm import CompletionCache, LLMBackend, LLMClient, create_backend
from .llm.loop import run_sync
from .pipeline.deliberate import Deliberation, DeliberationMethod, SpecForm, adeliberate
from .pipeline.generate import Generation, GenerationOptions, Strategy, agenerate
from .pipeline.infer import InferenceOptions, ainfer_profile
from .pipeline.update import UpdateOptions, aupdate_profile
from .profiles.model import Profile, UserExample
from .profiles.store import ProfileStore
from .profiles.update import AUTOMATED_AUTHOR, UpdateResult
from .usage import Usage


class HyperAlign:
    """Infer a person's profile from their texts, write as they would, answer deliberately, keep profiles living.

    Made with `from_config` (a backend by name, settings from arguments, HYPERALIGN_* variables and the settings
    file) or around an `LLMClient`. Every method has an `a`-prefixed async twin returning the same type; the
    blocking ones run on hyperalign's own event loop, so the client's concurrency and token budget hold across
    threads. `close()` (or `with HyperAlign.from_config(...) as ha:`) releases the backend's connections and the
    cache. `generation` holds the default `GenerationOptions`; a call's `options=` overrides them."""

    def __init__(self, client: LLMClient, generation: GenerationOptions | None = None):
        self.client = client
        self.generation = generation or GenerationOptions()

    def close(self) -> None:
        """Release the backend's connections and the completion cache; the instance is not used afterwards."""
        run_sync(self.client.aclose())

    def __enter__(self) -> HyperAlign:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @classmethod
    def from_config(
        cls,
        backend: str | LLMBackend | None = None,
        *,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        cache: str | bool | None = None,
        concurrency: int | None = None,
        context_tokens: int | None = None,
        max_repairs: int | None = None,
        **backend_options: Any,
    ) -> HyperAlign:
        """`backend` is a registered name ("embedded", "openai", "fake", plugins) or a backend instance.
        `cache` is a path, True for the default path, False for none. Anything not given comes from the
        environment (HYPERALIGN_*) or the settings file, as on the command line."""
        settings = load_settings(
            backend=backend if isinstance(backend, str) else None,
            model=model,
            base_url=base_url,
            api_key=api_key,
            concurrency=concurrency,
            context_tokens=context_tokens,
            max_repairs=max_repairs,
            cache=cache if isinstance(cache, str) else None,
            no_cache=True if cache is False else None,
        )
        instance = backend if backend is not None and not isinstance(backend, str) else None
        return cls.from_settings(settings, backend=instance, **backend_options)

    @classmethod
    def from_settings(cls, settings: Settings, *, backend: LLMBackend | None = None,
                      **backend_options: Any) -> HyperAlign:
        """From resolved `Settings` (`config.load_settings`), with `backend` instead of the named one if given."""
        store = CompletionCache(settings.cache_path) if settings.cache_path else None  # refused before any call
        instance = backend or create_backend(settings.backend, **settings.backend_options(), **backend_options)
        return cls(LLMClient(instance, cache=store, concurrency=settings.concurrency, max_repairs=settings.max_repairs,
                             tokens_per_minute=settings.tokens_per_minute))

    @property
    def stats(self) -> Usage:
        """Every LLM call this instance made so far: calls, cache hits, tokens."""
        return self.client.stats

    # --- infer ---------------------------------------------------------------------------------------------------

    async def ainfer_profile(
        self,
        user_id: str,
        examples: Sequence[UserExample],
        attributes: dict[str, str] | None = None,
        options: InferenceOptions | None = None,
    ) -> Profile:
        """The person's profile from their `examples`: hypotheses with quoted evidence, measured facts and
        attributes (`attributes` given here win over inferred ones). `options`: how (the contrastive method by
        default; `InferenceOptions(method="paper")` for HyPerAlign's one pass)."""
        return await ainfer_profile(self.client, user_id, list(examples), attributes, options)

    def infer_profile(
        self,
        user_id: str,
        examples: Sequence[UserExample],
        attributes: dict[str, str] | None = None,
        options: InferenceOptions | None = None,
    ) -> Profile:
        """The blocking `ainfer_profile`."""
        return run_sync(self.ainfer_profile(user_id, examples, attributes, options))

    # --- generate ------------------------------------------------------------------------------------------------

    async def agenerate(
        self,
        profile: Profile | None,
        task: str,
        strategy: Strategy | str = Strategy.HYPERALIGN,
        examples: Sequence[UserExample] | None = None,
        *,
        options: GenerationOptions | None = None,
    ) -> Generation:
        """Write `task` as the person would (`options`: this call's, else the instance's `generation`)."""
        return await agenerate(
            self.client,
            task,
            strategy,
            profile=profile,
            examples=list(examples) if examples else None,
            options=options or self.generation,
        )

    def generate(
        self,
        profile: Profile | None,
        task: str,
        strategy: Strategy | str = Strategy.HYPERALIGN,
        examples: Sequence[UserExample] | None = None,
        *,
        options: GenerationOptions | None = None,
    ) -> Generation:
        """The blocking `agenerate`."""
        return run_sync(self.agenerate(profile, task, strategy, examples, options=options))

    async def agenerate_many(
        self,
        profile: Profile | None,
        tasks: Sequence[str],
        strategy: Strategy | str = Strategy.HYPERALIGN,
        examples: Sequence[UserExample] | None = None,
        on_done: Callable[[int, Generation], None] | None = None,
        *,
        options: GenerationOptions | None = None,
    ) -> list[Generation]:
        """Runs concurrently (bounded by the client); `on_done(index, generation)` fires as each one finishes, on
        hyperalign's event loop, so callers can persist results before the rest complete (it must not block on
        another hyperalign call: use the async API there)."""

        async def one(index: int, task: str) -> Generation:
            generation = await self.agenerate(profile, task, strategy, examples, options=options)
            if on_done:
                on_done(index, generation)
            return generation

        return list(await asyncio.gather(*(one(i, t) for i, t in enumerate(tasks))))

    def generate_many(
        self,
        profile: Profile | None,
        tasks: Sequence[str],
        strategy: Strategy | str = Strategy.HYPERALIGN,
        examples: Sequence[UserExample] | None = None,
        on_done: Callable[[int, Generation], None] | None = None,
        *,
        options: GenerationOptions | None = None,
    ) -> list[Generation]:
        """The blocking `agenerate_many`."""
        return run_sync(self.agenerate_many(profile, tasks, strategy, examples, on_done, options=options))

    # --- deliberate ----------------------------------------------------------------------------------------------

    async def adeliberate(
        self, request: str, method: DeliberationMethod | str = DeliberationMethod.HYPERALIGN,
        profile: Profile | None = None, *, spec: str | None = None, form: SpecForm = "rules", max_tokens: int = 700,
    ) -> Deliberation:
        """Answer `request` after reasoning about it: `vanilla` (no reasoning), `spec` (against a safety
        specification: `spec`, or the shipped one written as `form`, rules or cases) or `hyperalign` (the
        specification and the person's profile); reasoning and answer apart."""
        return await adeliberate(self.client, request, method, profile, spec=spec, form=form, max_tokens=max_tokens)

    def deliberate(
        self, request: str, method: DeliberationMethod | str = DeliberationMethod.HYPERALIGN,
        profile: Profile | None = None, *, spec: str | None = None, form: SpecForm = "rules", max_tokens: int = 700,
    ) -> Deliberation:
        """The blocking `adeliberate`."""
        return run_sync(self.adeliberate(request, method, profile, spec=spec, form=form, max_tokens=max_tokens))

    # --- living profiles -----------------------------------------------------------------------------------------

    async def aupdate_profile(
        self, store: ProfileStore, user_id: str, examples: Sequence[UserExample], options: UpdateOptions | None = None,
        *, author: str = AUTOMATED_AUTHOR, message: str | None = None,
    ) -> UpdateResult:
        """Update the stored profile of `user_id` from new texts: rescore its hypotheses on them, add new ones,
        retire those they keep contradicting, blend in the facts measured on them — a new version in `store`,
        merged with whatever a person edited meanwhile (their edits and deletions win)."""
        return await aupdate_profile(self.client, store, user_id, examples, options, author=author, message=message)

    def update_profile(
        self, store: ProfileStore, user_id: str, examples: Sequence[UserExample], options: UpdateOptions | None = None,
        *, author: str = AUTOMATED_AUTHOR, message: str | None = None,
    ) -> UpdateResult:
        """The blocking `aupdate_profile`."""
        return run_sync(self.aupdate_profile(store, user_id, examples, options, author=author, message=message))
