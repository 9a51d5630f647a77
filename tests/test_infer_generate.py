from __future__ import annotations

import asyncio
import json
import re

import pytest
from pydantic import ValidationError

from hyperalign.errors import InputError
from hyperalign.llm import Capabilities, CompletionRequest
from hyperalign.llm.fake import FakeBackend
from hyperalign.pipeline import generate as generate_module
from hyperalign.pipeline.context import PROMPT_OVERHEAD_TOKENS, fit_examples
from hyperalign.pipeline.evidence import locate, normalize
from hyperalign.pipeline.generate import Generation, GenerationOptions, Strategy, unused_settings
from hyperalign.pipeline.infer import InferenceOptions
from hyperalign.pipeline.selection import SelectionOptions
from hyperalign.pipeline.update import UpdateOptions
from hyperalign.profiles.model import Fact, UserExample, examples_hash

REAL_QUOTE = "Gears first, opinions later."
FABRICATED = "I simply adore a crowded harbour party."
ATTRIBUTES = {"likely_role": "lighthouse keeper", "domain": "maritime", "audience": "relief keepers", "formality": "informal"}


def paper(**changes) -> InferenceOptions:
    """The paper's one pass: a call per aspect and one for attributes, no re-ask (these tests count those calls)."""
    return InferenceOptions(method="paper", proposal="per-aspect", reask=False, **changes)


def is_hypotheses(request: CompletionRequest) -> bool:
    return re.match(r"infer_hypotheses[\[-]", request.schema_name) is not None


def aspect_of(request: CompletionRequest) -> str:
    """The aspect from the step's schema name: "infer_hypotheses[style]" (or, sanitized, "infer_hypotheses-style")."""
    return re.sub(r"^infer_hypotheses[\[-]|\]$", "", request.schema_name)


def aspect_drafts(aspect: str) -> list[dict]:
    return [{"statement": f"{aspect}: repeats a motto", "evidence": [REAL_QUOTE, FABRICATED]},
            {"statement": f"{aspect}: loves parties", "evidence": [FABRICATED]}]


def scripted(request: CompletionRequest) -> str:
    """One verified and one fabricated hypothesis per aspect; fixed attributes; no better quotes when asked again.
    Answers the single-call proposal and the paper's per-aspect calls alike."""
    if request.schema_name == "infer_attributes":
        return json.dumps(ATTRIBUTES)
    if request.schema_name == "infer_profile":
        aspects = [k for k in request.json_schema["properties"] if k != "attributes"]
        return json.dumps({**{a: aspect_drafts(a) for a in aspects}, "attributes": ATTRIBUTES})
    if request.schema_name == "fix_evidence":
        return json.dumps({key: [] for key in request.json_schema["properties"]})
    assert is_hypotheses(request), request.schema_name
    return json.dumps({"hypotheses": aspect_drafts(aspect_of(request))})


def enums_in(schema) -> list[list]:
    found = []
    if isinstance(schema, dict):
        if "enum" in schema:
            found.append(schema["enum"])
        for value in schema.values():
            found += enums_in(value)
    elif isinstance(schema, list):
        for value in schema:
            found += enums_in(value)
    return found


def menu_responder(request: CompletionRequest) -> str:
    """Cites the first sentence the schema allows (if it offers a menu), else a real quote."""
    if request.schema_name == "infer_attributes":
        return json.dumps(ATTRIBUTES)
    menus = [e for e in enums_in(request.json_schema) if e not in (["formal", "neutral", "informal"],)]
    quote = menus[0][0] if menus else REAL_QUOTE
    return json.dumps({"hypotheses": [{"statement": f"{aspect_of(request)}: cites itself", "evidence": [quote]}]})


def hypothesis_requests(backend: FakeBackend) -> list[CompletionRequest]:
    return [r for r in backend.requests if is_hypotheses(r)]


# --- inference -------------------------------------------------------------------------------------------------


def test_infer_keeps_only_verified_hypotheses(make_hyperalign, examples):
    ha, backend = make_hyperalign(scripted)
    profile = ha.infer_profile("morwenna", examples, options=paper())
    aspects = list(InferenceOptions().aspects)
    assert sorted(aspect_of(r) for r in hypothesis_requests(backend)) == sorted(aspects)
    assert [h.aspect for h in profile.inferred_hypotheses] == aspects
    assert all(h.supported and h.statement.endswith("repeats a motto") for h in profile.inferred_hypotheses)
    assert profile.facts and all(isinstance(f, Fact) and f.origin == "measured" for f in profile.facts)
    evidence = profile.hypotheses[0].evidence
    assert [(e.quote, e.verified, e.example_index) for e in evidence] == [(REAL_QUOTE, True, 0), (FABRICATED, False, None)]
    assert profile.report.proposed == 2 * len(aspects)
    assert profile.report.dropped_unsupported == len(aspects)


def test_infer_keep_unsupported_keeps_them_flagged(make_hyperalign, examples):
    ha, _ = make_hyperalign(scripted)
    profile = ha.infer_profile("morwenna", examples, options=paper(keep_unsupported=True))
    unsupported = [h for h in profile.hypotheses if not h.supported]
    assert len(profile.hypotheses) == 6 and len(unsupported) == 3
    assert all(h.statement.endswith("loves parties") for h in unsupported)
    assert profile.report.dropped_unsupported == 0 and profile.report.proposed == 6
    assert len(profile.inferred_hypotheses) == 3


def test_infer_metadata_attributes_and_usage(make_hyperalign, examples):
    ha, backend = make_hyperalign(scripted, model="keeper-model")
    profile = ha.infer_profile("morwenna", examples, attributes={"formality": "formal", "team": "North Light"}, options=paper())
    assert profile.user_id == "morwenna"
    assert profile.attributes == {**ATTRIBUTES, "formality": "formal", "team": "North Light"}
    assert profile.examples_hash == examples_hash(examples)
    assert profile.n_examples == len(examples)
    assert (profile.backend, profile.model) == ("fake", "keeper-model")
    assert profile.prompt_version == "infer_hypotheses.v1+infer_attributes.v1"
    report = profile.report
    assert report.usage.llm_calls == len(backend.requests) == 4 and report.usage.cache_hits == 0
    assert report.usage.prompt_tokens > 0 and report.usage.completion_tokens > 0
    assert report.truncated_examples == []


@pytest.mark.parametrize(("make", "field"), [
    (lambda: InferenceOptions(max_per_aspect=0), "max_per_aspect"),
    (lambda: InferenceOptions(method="both"), "method"),
    (lambda: InferenceOptions(colour="blue"), "colour"),
    (lambda: SelectionOptions(held_out=0), "held_out"),
    (lambda: SelectionOptions(min_score=1.5), "min_score"),
    (lambda: UpdateOptions(retire_below=-0.1), "retire_below"),
    (lambda: UpdateOptions(min_ratings=0), "min_ratings"),
])
def test_options_are_validated_where_they_are_made(make, field):
    with pytest.raises(ValidationError, match=field):
        make()


def test_inference_and_selection_options_are_frozen_and_copied_with_changes():
    options = InferenceOptions(selection=SelectionOptions(per_aspect=2))
    with pytest.raises(ValidationError, match="frozen"):
        options.method = "paper"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        options.selection.per_aspect = 5  # type: ignore[misc, union-attr]
    changed = options.model_copy(update={"method": "paper"})
    assert (changed.method, options.method) == ("paper", "contrastive") and changed.selection == options.selection


def test_infer_without_attributes_step(make_hyperalign, examples):
    ha, backend = make_hyperalign(scripted)
    options = paper(infer_attributes=False, aspects={"writing_style": "surface style"})
    profile = ha.infer_profile("morwenna", examples, options=options)
    assert [aspect_of(r) for r in backend.requests] == ["writing_style"] and is_hypotheses(backend.requests[0])
    assert profile.attributes == {} and profile.prompt_version == "infer_hypotheses.v1"


def test_infer_dedupes_statements_across_aspects(make_hyperalign, examples):
    reply = json.dumps({"hypotheses": [{"statement": "Repeats a motto.", "evidence": [REAL_QUOTE]}] * 2})
    ha, _ = make_hyperalign(lambda r: reply, cache=False)
    profile = ha.infer_profile("u", examples, options=paper(infer_attributes=False, style_facts=False))
    assert len(profile.hypotheses) == 1 and profile.report.proposed == 1


def test_second_run_with_same_cache_makes_no_backend_calls(make_hyperalign, tmp_cache, examples):
    first_ha, _ = make_hyperalign(scripted)
    first = first_ha.infer_profile("morwenna", examples, options=paper())
    second_ha, backend = make_hyperalign(scripted, cache=tmp_cache)
    second = second_ha.infer_profile("morwenna", examples, options=paper())
    assert backend.requests == []
    assert second.report.usage.cache_hits == 4 and second.report.usage.llm_calls == 0
    # The tokens count the cache hits too: a resumed run reports the same size of work as a fresh one.
    assert second.report.usage.prompt_tokens == first.report.usage.prompt_tokens > 0
    assert second.report.usage.completion_tokens == first.report.usage.completion_tokens > 0
    assert second.hypotheses == first.hypotheses and second.attributes == first.attributes
    assert second_ha.stats.llm_calls == 0 and second_ha.stats.cache_hits == 4


def test_infer_repairs_invalid_output(make_hyperalign, examples):
    replies = iter(['{"hypotheses": []}', json.dumps({"hypotheses": [{"statement": "Repeats a motto.", "evidence": [REAL_QUOTE]}]})])
    ha, backend = make_hyperalign(lambda r: next(replies), cache=False)
    options = paper(infer_attributes=False, aspects={"writing_style": "surface style"})
    profile = ha.infer_profile("u", examples, options=options)
    assert len(backend.requests) == 2 and profile.report.usage.llm_calls == 2
    assert "hypotheses" in backend.requests[1].messages[-1]["content"]
    assert profile.hypotheses[0].supported


@pytest.mark.parametrize(("bad", "message"), [
    ({"examples": []}, "no examples"), ({"user_id": "   "}, "the user id is empty"),
    ({"user_id": "a\nb"}, "control character"), ({"user_id": "u" * 201}, "at most 200"),
])
def test_infer_rejects_bad_input(make_hyperalign, examples, bad, message):
    ha, backend = make_hyperalign(scripted)
    kwargs = {"user_id": "u", "examples": examples, **bad}
    with pytest.raises(InputError, match=message):
        ha.infer_profile(kwargs["user_id"], kwargs["examples"])
    assert backend.requests == []


@pytest.mark.parametrize("quote_menu", [True, False, None])
def test_quote_menu_option(make_hyperalign, examples, quote_menu):
    ha, backend = make_hyperalign(menu_responder)
    profile = ha.infer_profile("u", examples, options=paper(quote_menu=quote_menu))
    menus = [enums_in(r.json_schema) for r in hypothesis_requests(backend)]
    if quote_menu:
        assert all(len(m) == 1 for m in menus)
        menu = menus[0][0]
        assert "Gears first, opinions later." in menu and "Fog again." not in menu  # too short to quote
        texts = [normalize(e.text) for e in examples]
        assert all(locate(sentence, texts) is not None for sentence in menu)  # every option is citable
        assert {s for s in menu if "Morwenna" in s} == {"— Keeper Morwenna, North Light"}
    else:
        assert menus and all(m == [] for m in menus)
    assert all(h.supported for h in profile.hypotheses) and profile.hypotheses


# --- fitting examples into the context -------------------------------------------------------------------------


def sized(*lengths: int) -> list[UserExample]:
    return [UserExample(text="x" * n) for n in lengths]


def test_fit_examples_without_context_or_when_it_fits():
    items = sized(100, 200)
    assert fit_examples(items, None, 500) == (items, [])
    fitted, truncated = fit_examples(items, 10_000, 500)
    assert fitted == items and truncated == []


def test_fit_examples_truncates_the_longest():
    items = sized(20, 1000, 30, 800)
    context = 100 + PROMPT_OVERHEAD_TOKENS + 100  # budget: 100 tokens = 350 characters
    fitted, truncated = fit_examples(items, context, reserve_tokens=100)
    assert truncated == [1, 3]
    assert fitted[0] is items[0] and fitted[2] is items[2]
    for index in truncated:
        assert fitted[index].text.endswith(" […truncated]")
        assert len(fitted[index].text) < len(items[index].text)
    kept = sum(len(e.text.removesuffix(" […truncated]")) for e in fitted)
    assert kept <= 350


def test_fit_examples_no_room_raises():
    with pytest.raises(InputError, match=r"context \(500 tokens\) leaves no room"):
        fit_examples(sized(10), 500, reserve_tokens=100)


def test_infer_with_small_context_records_truncation(make_hyperalign, examples):
    long = UserExample(text=" ".join(["Count the steps, all of them, every time."] * 20))
    sizes = [len(e.text) + len(e.prompt or "") for e in examples]
    room_chars = sum(sizes) + max(sizes) + 50  # water-filling cap > every short example, < the long one
    ha, backend = make_hyperalign(scripted, context_tokens=100 + PROMPT_OVERHEAD_TOKENS + int(room_chars / 3.5) + 1)
    profile = ha.infer_profile("u", [*examples, long], options=paper(max_tokens=100))
    assert profile.report.truncated_examples == [len(examples)]
    assert all("[…truncated]" in r.messages[1]["content"] for r in backend.requests)
    assert profile.hypotheses and profile.n_examples == len(examples) + 1


# --- generation ------------------------------------------------------------------------------------------------


def echo(request: CompletionRequest) -> str:
    return f"  reply to: {request.messages[-1]['content']}  \n"


@pytest.fixture
def profile(make_hyperalign, examples):
    ha, _ = make_hyperalign(scripted, cache=False)
    return ha.infer_profile("morwenna", examples, options=paper())


async def test_all_strategies_go_through_the_same_function(make_hyperalign, examples, profile, monkeypatch):
    seen = []
    original = generate_module.build_messages

    def spy(task, strategy, *args, **kwargs):
        seen.append(generate_module.Strategy(strategy))
        return original(task, strategy, *args, **kwargs)

    monkeypatch.setattr(generate_module, "build_messages", spy)
    ha, backend = make_hyperalign(echo)
    results = [await ha.agenerate(profile, "Write about fog.", s, examples) for s in Strategy]
    assert seen == list(Strategy)
    assert [g.strategy for g in results] == list(Strategy)
    params = {(r.max_tokens, r.temperature, r.seed, r.json_schema) for r in backend.requests}
    assert params == {(600, 0.0, 0, None)}
    assert len({r.messages[0]["content"] for r in backend.requests}) == 3  # different system prompts


async def test_generation_carries_tokens_and_strategy(make_hyperalign, profile):
    ha, _ = make_hyperalign(echo)
    # The reply as the backend gave it: steering (which would add morwenna's sign-off) is tests/test_steer.py's.
    generation = await ha.agenerate(profile, "Write about fog.", options=GenerationOptions(steer="off"))
    assert isinstance(generation, Generation)
    assert generation.strategy is Strategy.HYPERALIGN and generation.task == "Write about fog."
    assert generation.text == "reply to: Write about fog."
    assert generation.usage.prompt_tokens > 0 and generation.usage.completion_tokens > 0
    assert (generation.usage.llm_calls, generation.usage.cache_hits) == (1, 0)
    assert (generation.finish_reason, generation.model) == ("stop", "fake-model")
    assert generation.prompt_version == "generate.v3"
    again = await ha.agenerate(profile, "Write about fog.", options=GenerationOptions(steer="off"))
    from_cache = {"llm_calls": 0, "cache_hits": 1, "seconds": 0.0}  # a cache hit takes no backend time
    assert again.usage == generation.usage.model_copy(update=from_cache)
    assert again.text == generation.text
    # Steered, the same request (this backend takes no biases) comes from the cache, finished by code.
    steered = await ha.agenerate(profile, "Write about fog.")
    assert steered.usage.llm_calls == 0 and steered.usage.cache_hits == 1
    assert steered.text == "reply to: Write about fog.\n\n— Keeper Morwenna, North Light"


def test_generate_and_agenerate_return_the_same_generation(make_hyperalign, examples):
    ha, _ = make_hyperalign(echo)
    sync = ha.generate(None, "Write about seals.", "few-shot", examples)
    assert isinstance(sync, Generation) and sync.text == "reply to: Write about seals."
    again = asyncio.run(ha.agenerate(None, "Write about seals.", "few-shot", examples))
    cache_hit = sync.usage.model_copy(update={"llm_calls": 0, "cache_hits": 1, "seconds": 0.0})
    assert again == sync.model_copy(update={"usage": cache_hit})  # a cache hit took no backend time
    assert again.usage.backend_seconds is None and sync.usage.backend_seconds is not None


@pytest.mark.parametrize(
    ("strategy", "use_profile", "use_examples", "task", "message"),
    [
        ("hyperalign", False, True, "Write.", "needs a profile"),
        ("few-shot", True, False, "Write.", "needs the user's examples"),
        ("zero-shot", True, True, "  \n ", "the task is empty"),
    ],
)
def test_generate_input_errors(make_hyperalign, examples, profile, strategy, use_profile, use_examples, task, message):
    ha, backend = make_hyperalign(echo)
    with pytest.raises(InputError, match=message):
        ha.generate(profile if use_profile else None, task, strategy, examples if use_examples else None)
    assert backend.requests == []


class ReverseSpeedBackend(FakeBackend):
    """Later tasks finish first, so completion order differs from input order."""

    async def acomplete(self, request: CompletionRequest):
        task = request.messages[-1]["content"]
        await asyncio.sleep(0.001 * (10 - int(task.split()[-1])))
        return self.reply(request)


def test_generate_many_calls_on_done_for_every_task_and_keeps_order(make_hyperalign, profile):
    ha, _ = make_hyperalign(backend=ReverseSpeedBackend(echo))
    tasks = [f"Task number {i}" for i in range(6)]
    done: dict[int, Generation] = {}
    results = ha.generate_many(profile, tasks, on_done=lambda i, g: done.__setitem__(i, g),
                               options=GenerationOptions(steer="off"))  # the replies as given, to check their order
    assert [g.task for g in results] == tasks
    assert [g.text for g in results] == [f"reply to: {t}" for t in tasks]
    assert sorted(done) == list(range(6))
    assert all(done[i] is results[i] for i in range(6))


def test_the_single_call_asks_for_two_per_aspect_but_accepts_one(make_hyperalign, examples):
    seen: list[dict] = []

    def one_each(request: CompletionRequest) -> str:
        seen.append(request.json_schema)
        aspects = [k for k in request.json_schema["properties"] if k != "attributes"]
        return json.dumps({**{a: aspect_drafts(a)[:1] for a in aspects}, "attributes": ATTRIBUTES})

    ha, backend = make_hyperalign(one_each)
    profile = ha.infer_profile("morwenna", examples, options=InferenceOptions(method="paper", reask=False, style_facts=False))
    (schema,) = seen  # one call, no repair turn
    aspects = [k for k in schema["properties"] if k != "attributes"]
    assert aspects and all(schema["properties"][a]["minItems"] == 2 for a in aspects)
    assert "2 to 4 for each of these aspects" in backend.requests[0].messages[1]["content"]
    assert len(profile.inferred_hypotheses) == len(aspects)  # one each, all with the verified quote


class PrefixCachingFake(FakeBackend):
    """A fake that declares what the embedded backend declares: the shared prompt prefix is computed once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, capabilities=Capabilities(prompt_prefix_cache=True), **kwargs)


@pytest.mark.parametrize("backend_class, proposal, expected", [
    (FakeBackend, None, ["infer_profile"]),  # an API bills the examples again for every call: one call
    (PrefixCachingFake, None, ["infer_attributes", "infer_hypotheses"]),  # in-process: the paper's calls
    (PrefixCachingFake, "single", ["infer_profile"]),  # an explicit choice wins either way
    (FakeBackend, "per-aspect", ["infer_attributes", "infer_hypotheses"]),
])
def test_the_default_proposal_follows_the_backend(make_hyperalign, examples, backend_class, proposal, expected):
    backend = backend_class(scripted)
    ha, _ = make_hyperalign(backend=backend)
    ha.infer_profile("morwenna", examples, options=InferenceOptions(method="paper", proposal=proposal, reask=False))
    steps = sorted({re.sub(r"[\[-].*", "", r.schema_name) for r in backend.requests})
    assert steps == expected


def test_unused_settings_names_what_a_strategy_would_ignore():
    """A baseline ignores the profile's levers, and a single answer ignores best-of's settings; defaults and steering
    off are never reported (a baseline is never steered)."""
    levers = GenerationOptions(steer="strong", excerpts=3, example_texts=1, max_copied=0.5, revise=True, rerank="margin")
    assert unused_settings(Strategy.HYPERALIGN, levers) == ["rerank"]
    assert unused_settings("few-shot", levers) == ["steer", "example_texts", "excerpts", "max_copied", "revise",
                                                   "rerank"]
    assert unused_settings("few-shot", levers.model_copy(update={"best_of": 4})) == [
        "steer", "example_texts", "excerpts", "max_copied", "revise"]
    assert unused_settings("zero-shot", GenerationOptions()) == []
    assert unused_settings("zero-shot", GenerationOptions(steer="off")) == []
    assert unused_settings("hyperalign", GenerationOptions(best_of=3, rerank="adherence", check_hypotheses=True)) == []
