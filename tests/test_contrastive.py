"""The contrastive method on hand-made texts whose right answer is known: the default voice, contrastive proposal,
discriminative verification, distinctive facts and words, the generic flag, and that no other person's text is used."""

from __future__ import annotations

import json
import math
import re

import pytest

from hyperalign import HyperAlign, UserExample
from hyperalign.llm import CompletionRequest, LLMClient
from hyperalign.llm.fake import FakeBackend
from hyperalign.pipeline.contrast import task_for
from hyperalign.pipeline.distinctive import distinctive_facts, distinctive_words
from hyperalign.pipeline.facts import Text
from hyperalign.pipeline.generic import canonical, generic_share, mark_generic
from hyperalign.pipeline.infer import InferenceOptions
from hyperalign.pipeline.measured import explains, names_metric, showing
from hyperalign.pipeline.reference import ReferenceStats
from hyperalign.pipeline.verify import MIN_LEAN, PLACEBO
from hyperalign.profiles.edit import Edits, apply_edits
from hyperalign.profiles.model import Fact, Hypothesis, Measure, Profile

# One stream of common words for everyone: the person and the default voice differ only in how they cut it into
# sentences (6 words against 18), so sentence length is the one true difference.
POOL = ("we went down to the old mill after lunch and found the river high so we walked back along the top field "
        "where the grass was long and wet from the rain last night").split()
SPECIFIC = "Writes very short sentences of about six words."
GENERIC = "Writes in a clear and friendly tone."
# Stated from the measured facts the proposal is shown: one names what its fact measures, one only claims to.
MEASURED = "The person cuts every thought into short sentences."
MISLABELLED = "The person is warm and friendly."


def stream_text(offset: int, words_per_sentence: int, sentences: int) -> str:
    words = [POOL[(offset + i) % len(POOL)] for i in range(words_per_sentence * sentences)]
    out = []
    for start in range(0, len(words), words_per_sentence):
        chunk = words[start:start + words_per_sentence]
        out.append(" ".join([chunk[0].capitalize(), *chunk[1:]]) + ".")
    return " ".join(out)


PERSON = [UserExample(prompt=f"Write a note about walk {i}.", text=stream_text(7 * i, 6, 18)) for i in range(6)]


def mean_sentence_words(text: str) -> float:
    sentences = Text.of(text).sentences
    return sum(map(len, sentences)) / max(1, len(sentences))


def pair_texts(prompt: str) -> tuple[str, str]:
    texts = re.findall(r'<user_text id="[AB]">\n(.*?)\n</user_text>', prompt, re.S)
    return texts[0], texts[1]


def oracle(request: CompletionRequest, *, biased: bool = False, acquiescent: bool = False) -> str:
    """The default voice writes long sentences; the proposal names one true and one generic difference; the checker
    picks the text with shorter sentences for the true one and says "same" for the generic one (or, `biased`,
    always answers "A", as a position-biased small model does). Rating one text alone, it says "supports" to the
    true difference only on short sentences (or, `acquiescent`, to everything)."""
    prompt = request.messages[-1]["content"]
    if request.json_schema is None:  # the default voice (zero-shot)
        offset = sum(map(ord, prompt)) % len(POOL)
        return stream_text(offset, 18, 6)
    if request.schema_name == "infer_differences":
        quote = PERSON[0].text.split(". ")[1] + "."
        drafts = [{"statement": SPECIFIC, "evidence": [quote], "instead": "sentences of 18 words"},
                  {"statement": GENERIC, "evidence": [quote], "instead": ""}]
        aspects = [k for k in request.json_schema["properties"] if k not in ("attributes", "measured")]
        reply: dict = {a: drafts if i == 0 else drafts[1:] for i, a in enumerate(aspects)}
        if "measured" in request.json_schema["properties"]:  # the label of the sentence-length fact
            found = re.search(r"^- (M\d+): shorter sentences — Sentences average", prompt, re.M)
            label = found.group(1) if found else "M1"
            reply["measured"] = [{"statement": MEASURED, "evidence": [quote], "instead": "", "measurement": label},
                                 {"statement": MISLABELLED, "evidence": [quote], "instead": "", "measurement": label},
                                 ][: request.json_schema["properties"]["measured"]["maxItems"]]
        reply["attributes"] = {"likely_role": "walker", "domain": "walks", "audience": "friends",
                               "formality": "informal"}
        return json.dumps(reply)
    if request.schema_name == "verify_hypotheses":
        first, second = pair_texts(prompt)
        statements = re.findall(r"^h(\d+): (.*)$", prompt, re.M)
        shorter = "A" if mean_sentence_words(first) < mean_sentence_words(second) else "B"
        return json.dumps({f"h{n}": "A" if biased else (shorter if s == SPECIFIC else "same")
                           for n, s in statements})
    if request.schema_name == "verify_hypotheses-text":  # one text alone (after a position-bound pass)
        text = prompt.split("<user_text>\n", 1)[1].split("\n</user_text>", 1)[0].split("]\n", 1)[-1]
        statements = re.findall(r"^h(\d+): (.*)$", prompt, re.M)
        short = mean_sentence_words(text) < 12
        return json.dumps({f"h{n}": "supports" if acquiescent or s != SPECIFIC or short else "neutral"
                           for n, s in statements})
    if request.schema_name == "fix_evidence":
        return json.dumps({key: [] for key in request.json_schema["properties"]})
    raise AssertionError(f"unexpected call {request.schema_name}")


def llm_checked(profile: Profile) -> list[Hypothesis]:
    """The hypotheses the LLM's check kept (those explaining a measured fact are checked by the measurement)."""
    return [h for h in profile.inferred_hypotheses if h.measured_by is None]


def infer(responder, examples=PERSON, **options) -> tuple[Profile, FakeBackend]:
    backend = FakeBackend(responder)
    ha = HyperAlign(LLMClient(backend))
    options.setdefault("proposal", "single")
    return ha.infer_profile("walker", examples, options=InferenceOptions(**options)), backend


def test_a_person_who_differs_only_in_sentence_length_gets_that_fact_and_no_generic_hypothesis():
    profile, backend = infer(oracle)
    statements = [h.statement for h in profile.inferred_hypotheses]
    assert statements == [MEASURED, SPECIFIC]  # the generic one fit both texts: undecided, dropped
    measured, kept = profile.inferred_hypotheses
    assert kept.counterpart == "sentences of 18 words"
    assert kept.discrimination is not None and kept.discrimination.contrast == 0
    assert kept.discrimination.person == 5 - 1  # verify_pairs=5 pairs, less the one whose text it quotes
    assert kept.discrimination.value > 0.5
    metrics = [f.measure.metric for f in profile.facts]
    assert "sentence_words" in metrics
    fact = next(f for f in profile.facts if f.measure.metric == "sentence_words")
    assert fact.measure.z < -1 and fact.measure.contrast_mean == pytest.approx(18, abs=0.5)
    assert "a typical answer" in fact.statement
    # Nothing else sets this person apart: same words, same punctuation, same letters per word.
    assert not any(m.startswith(("punctuation:", "uses:", "word_letters", "contractions")) for m in metrics)
    # The proposal was shown the measured differences, labelled; the statement that names its fact's measurement
    # is checked by it, the one that only claims the label is left to the LLM's check, and fails it.
    proposal = next(r for r in backend.requests if r.schema_name == "infer_differences").messages[-1]["content"]
    assert re.search(rf"^- M\d+: shorter sentences — {re.escape(fact.statement)}$", proposal, re.M)
    assert measured.measured_by == fact.id and measured.discrimination is None
    assert measured.aspect == "writing_style" and f"explains fact `[{fact.id}]`" in profile.to_markdown()
    assert profile.report.method == "contrastive" and profile.report.verification["failed"] == 2
    assert profile.report.verification["measured"] == 1
    dropped = profile.report.failed_verification  # kept in the report, with what the check measured
    assert [h.statement for h in dropped] == [GENERIC, MISLABELLED]
    assert all(h.discrimination.person == 0 and h.measured_by is None for h in dropped)


def test_a_hypothesis_whose_measured_fact_is_deleted_stays_but_is_no_longer_checked_by_it():
    profile, _ = infer(oracle)
    measured = next(h for h in profile.hypotheses if h.measured_by)
    edited = apply_edits(profile, Edits.from_flags(delete=[measured.measured_by]))
    kept = next(h for h in edited.hypotheses if h.id == measured.id)
    assert kept.measured_by is None and kept.statement == MEASURED and kept.supported
    assert measured.measured_by not in {f.id for f in edited.facts}
    assert "checked by measurement" not in edited.to_markdown()
    other = next(f for f in profile.facts if f.id != measured.measured_by)  # deleting another leaves the check alone
    assert apply_edits(profile, Edits.from_flags(delete=[other.id])).hypotheses == profile.hypotheses


def test_the_default_voice_is_stored_with_the_profile_and_its_cost_counted():
    examples = [*PERSON[:3], UserExample(text="Fog again. The lamp turned all night. Gears first, opinions later.")]
    profile, backend = infer(oracle, examples=examples)
    zero_shot = [r for r in backend.requests if r.json_schema is None]
    assert len(zero_shot) == len(examples)
    assert [r.messages[-1]["content"] for r in zero_shot[:3]] == [e.prompt for e in examples[:3]]
    assert zero_shot[3].messages[-1]["content"] == task_for(examples[3])
    assert "starts with the following: Fog again." in task_for(examples[3])
    assert profile.contrast is not None and len(profile.contrast.texts) == len(examples)
    assert [c.example_index for c in profile.contrast.texts] == list(range(len(examples)))
    usage, contrast = profile.report.usage, profile.contrast.usage
    assert (usage.llm_calls, usage.cache_hits) == (len(backend.requests), 0)  # the contrast's calls are counted too
    assert usage.prompt_tokens == sum(prompt_words(r) for r in backend.requests)
    assert (contrast.llm_calls, contrast.cache_hits) == (len(examples), 0)
    assert contrast.prompt_tokens == sum(prompt_words(r) for r in zero_shot) < usage.prompt_tokens
    again = Profile.from_json(profile.to_json())
    assert again == profile and again.schema_version == 9


def test_a_stored_default_voice_is_reused_for_the_tasks_it_answered_and_only_the_rest_generated():
    first, _ = infer(oracle, examples=PERSON[:4])
    again, backend = infer(oracle, examples=PERSON, contrast=first.contrast)
    generated = [r.messages[-1]["content"] for r in backend.requests if r.json_schema is None]
    assert generated == [task_for(e) for e in PERSON[4:]]  # two new tasks; four answers lent by the stored contrast
    assert [c.text for c in again.contrast.texts[:4]] == [c.text for c in first.contrast.texts]
    assert again.contrast.usage.llm_calls == 2 and len(again.contrast.texts) == len(PERSON)
    other_model = first.contrast.model_copy(update={"model": "another-model"})
    _, backend = infer(oracle, examples=PERSON[:4], contrast=other_model)  # another model's default is not ours
    assert len([r for r in backend.requests if r.json_schema is None]) == 4


@pytest.mark.parametrize(("statement", "metric", "names"), [
    ("The person writes long paragraphs of six sentences or more.", "paragraph_sentences", True),
    ("The person is confident and warm.", "paragraph_sentences", False),
    ("The person keeps sentences short.", "sentence_words", True),
    ("The person rarely uses commas.", "punctuation:comma", True),
    ("The person quotes people in quotation marks.", "punctuation:quote", True),
    ("The person talks about herself: I, my, me.", "first_person", True),
    ("The person speaks to the reader directly.", "second_person", True),
    ("The person often says actually and basically.", "uses:actually|basically", True),
    ("The person often says honestly.", "uses:actually|basically", False),
    ("The person opens with Right then.", "opens_with:Right then.", True),
    ("The person writes in a formal register.", "contractions", False),
    ("The person often writes about her parents.", "punctuation:parenthesis", False),
    ("The person puts asides in parentheses.", "punctuation:parenthesis", True),
    ("The person doesn't like exclamation marks.", "contractions", False),
])
def test_a_statement_is_checked_by_a_measurement_only_when_it_names_what_was_measured(statement, metric, names):
    assert names_metric(statement, metric) is names


@pytest.mark.parametrize(("statement", "metric", "z", "checked"), [
    ("The person writes shorter sentences than a typical answer.", "sentence_words", -2.0, True),
    # Seen on Qwen2.5-Coder-1.5B, given "Sentences average 15 words — less than a typical answer's 23":
    ("The person uses more words per sentence than a typical answer.", "sentence_words", -2.0, False),
    ("The person uses more question marks than a typical answer.", "punctuation:question", 2.0, True),
    ("The person never uses exclamation marks.", "punctuation:exclamation", -3.0, True),
    ("The person uses exclamation marks.", "punctuation:exclamation", 2.0, True),
    ("The person uses exclamation marks.", "punctuation:exclamation", -2.0, False),
    ("The person uses more commas but shorter sentences.", "punctuation:comma", 2.0, False),  # both ways
    # Seen too: a statement about words per paragraph given the letters-per-word fact.
    ("The person writes more words per paragraph than a typical answer.", "word_letters", -2.0, False),
    ("The person prefers short, plain words.", "word_letters", -2.0, True),
])
def test_a_measurement_checks_a_statement_only_in_the_direction_the_person_differs(statement, metric, z, checked):
    assert explains(statement, Measure(metric=metric, mean=1.0, spread=1.0, z=z)) is checked


def test_a_measured_hypothesis_quotes_what_shows_its_difference():
    """Seen on Qwen2.5-Coder-1.5B: "uses more question marks" backed by a sentence without one. A quote that does
    not show the difference is replaced by the person's sentences that do, nearest their own mean."""
    asks = Measure(metric="punctuation:question", mean=5.0, spread=2.0, contrast_mean=0.0, z=2.5)
    sentences = ["Why now?", "We are angry.", "Is it fair to ask, or is it not?"]
    assert showing(["We are angry."], sentences, asks) == ["Is it fair to ask, or is it not?", "Why now?"]
    assert showing(["Why now?"], sentences, asks) == ["Why now?"]  # the model's own quote, when it shows it
    terse = Measure(metric="sentence_words", mean=6.0, spread=2.0, contrast_mean=18.0, z=-3.0)
    long = "We walked along the top field where the grass was long and wet from all the rain of the night before."
    assert showing([long], ["We went down to the old mill.", "Rain.", long], terse)[0] == "We went down to the old mill."
    digits = Measure(metric="numbers_as_digits", mean=0.9, spread=0.2, contrast_mean=0.0, z=3.0)
    assert showing(["We are angry."], ["We left at 7 and came back at 10.", *sentences], digits) == [
        "We left at 7 and came back at 10."]  # a quote without a number cannot show how numbers are written
    paragraphs = Measure(metric="paragraph_sentences", mean=6.0, spread=1.0, contrast_mean=2.0, z=3.0)
    assert showing(["We are angry."], sentences, paragraphs) == ["We are angry."]  # no sentence shows a paragraph


def test_the_proposal_grammar_lets_a_statement_describe_the_person_but_not_quote_the_input():
    """Seen on Qwen2.5-Coder-1.5B: most proposed "statements" were a stretch of the input opened with its tag. The
    schema the backend decodes with allows a statement only as a description of the person, without markup."""
    _, backend = infer(oracle)
    request = next(r for r in backend.requests if r.schema_name == "infer_differences")
    patterns = {d["properties"]["statement"]["pattern"] for d in request.json_schema["$defs"].values()
                if "statement" in d.get("properties", {})}
    assert len(patterns) == 1
    allowed = re.compile(patterns.pop())
    assert allowed.match("The person writes 'I reckon' where typical answers write 'I think'.")
    for copied in ("<user_text>There are two main ways to carbonate beer.</user_text>",
                   "There are two main ways to carbonate beer.",
                   "The person <user_text>There are two main ways", "The person writes:\nThere are two ways"):
        assert not allowed.match(copied), copied


def test_the_profile_keeps_the_persons_own_sentences_that_carry_their_habits():
    """Voice samples: sentences of the person's texts as written, each naming its text, from several texts."""
    profile, _ = infer(oracle)
    assert 0 < len(profile.voice_samples) <= InferenceOptions().voice_samples
    for sample in profile.voice_samples:
        assert sample.text in PERSON[sample.example_index].text
    assert len({s.example_index for s in profile.voice_samples}) > 1
    plain, _ = infer(oracle, voice_samples=0)
    assert plain.voice_samples == []


def prompt_words(request) -> int:
    """The fake backend's prompt tokens: the words of the messages."""
    return sum(len(m["content"].split()) for m in request.messages)


def test_a_position_biased_checker_decides_nothing_instead_of_deciding_wrong():
    profile, _ = infer(lambda r: oracle(r, biased=True, acquiescent=True))
    assert llm_checked(profile) == []
    assert profile.report.too_few
    assert profile.report.verification["position_bound"] == 1.0
    assert profile.report.verification["per_text"] == 1.0  # rated alone too, and "supports" everything
    assert profile.facts  # the facts are measured by code and do not depend on the checker


def test_after_a_position_bound_pass_each_text_is_rated_alone():
    profile, backend = infer(lambda r: oracle(r, biased=True))
    assert [h.statement for h in llm_checked(profile)] == [SPECIFIC]
    assert profile.report.verification["calls"] == 20  # 5 pairs in both orders, then their 10 texts alone
    assert sum(r.schema_name == "verify_hypotheses-text" for r in backend.requests) == 10


def leaning_checker(request: CompletionRequest, *, human: float = 0.0) -> dict[str, float]:
    """A checker read by probabilities that leans to "A" by 3 log-odds whatever it is shown (so its likeliest letter
    is always "A"), towards the text with shorter sentences by 1 for the true difference only, and (`human`) towards
    the person's text by that much for every statement, the placebo included."""
    prompt = request.messages[-1]["content"]
    first, second = pair_texts(prompt)
    statement = re.search(r"^Statement about a writer: (.*)$", prompt, re.M).group(1)
    person_first = mean_sentence_words(first) < mean_sentence_words(second)
    lean = 3.0 + (human if person_first else -human)
    if statement == SPECIFIC:
        lean += 1.0 if person_first else -1.0
    p = 1 / (1 + math.exp(-lean))
    return {"A": 0.95 * p, "B": 0.95 * (1 - p), "The": 0.05}


def test_a_checker_read_by_probabilities_is_calibrated_and_finds_the_true_difference():
    backend = FakeBackend(oracle, probabilities=leaning_checker)
    profile = HyperAlign(LLMClient(backend)).infer_profile(
        "walker", PERSON, options=InferenceOptions(proposal="single"))
    assert [h.statement for h in llm_checked(profile)] == [SPECIFIC]  # the generic one is within the bias
    kept = llm_checked(profile)[0].discrimination
    assert kept is not None and kept.person == 4 and kept.contrast == 0
    assert kept.leans == pytest.approx([2.0] * 4, abs=0.01)  # +1 log-odds in each order; the "A" bias cancels
    verification = profile.report.verification
    assert verification["probabilities"] == 1.0 and verification["position_bias_p_a"] == pytest.approx(
        1 / (1 + math.exp(-3)), abs=0.01)
    label_calls = [r for r in backend.requests if r.top_logprobs]
    # pairs x orders x (statements + the placebo), one token each
    # (statements: the specific and generic ones, and the mislabelled measured one)
    assert len(label_calls) == verification["calls"] == 5 * 2 * 4
    assert all(r.max_tokens == 1 for r in label_calls)
    assert not any(r.schema_name.startswith("verify_hypotheses") for r in backend.requests if not r.top_logprobs)


def test_a_checker_that_prefers_the_persons_text_whatever_it_is_asked_keeps_no_generic_statement():
    """The placebo's lean is the checker's preference for the person's text itself; without removing it, the generic
    statement would lean to the person on every pair and be kept."""
    backend = FakeBackend(oracle, probabilities=lambda r: leaning_checker(r, human=1.5))
    profile = HyperAlign(LLMClient(backend)).infer_profile(
        "walker", PERSON, options=InferenceOptions(proposal="single"))
    assert [h.statement for h in llm_checked(profile)] == [SPECIFIC]
    generic = profile.report.failed_verification[0].discrimination
    assert generic.leans == pytest.approx([0.0] * 4, abs=0.01) and generic.person == generic.contrast == 0
    assert profile.report.verification["placebo_lean"] == pytest.approx(3.0, abs=0.01)


def test_a_consistent_lean_is_kept_though_one_pair_points_the_other_way():
    """Four pairs lean clearly to the person, one the other way: 4 of 5 signs cannot clear the Wilson bound at 0.5,
    the mean lean's t bound can. A statement that leans both ways as much is dropped, and so is one whose leans
    all point to the person but by specks (a small checker's noise)."""
    leans_by_walk = {1: 1.3, 2: 1.1, 3: 1.2, 4: -0.3, 5: 1.0}
    mixed = {1: 1.0, 2: -1.0, 3: 0.9, 4: -1.1, 5: 0.1}

    def checker(request: CompletionRequest) -> dict[str, float]:
        prompt = request.messages[-1]["content"]
        first, second = pair_texts(prompt)
        person_first = mean_sentence_words(first) < mean_sentence_words(second)
        walk = int(re.search(r"Write a note about walk (\d+)\.", prompt).group(1))
        statement = re.search(r"^Statement about a writer: (.*)$", prompt, re.M).group(1)
        table = leans_by_walk if statement == SPECIFIC else mixed if statement == GENERIC else {}
        half = table.get(walk, 0.0) / 2  # half the lean in each order
        lean = half if person_first else -half
        p = 1 / (1 + math.exp(-lean))
        return {"A": p, "B": 1 - p}

    profile = HyperAlign(LLMClient(FakeBackend(oracle, probabilities=checker))).infer_profile(
        "walker", PERSON, options=InferenceOptions(proposal="single", verify_pairs=6))
    assert [h.statement for h in llm_checked(profile)] == [SPECIFIC]
    kept = llm_checked(profile)[0].discrimination
    assert (kept.person, kept.contrast) == (4, 1) and kept.value < 0.5  # walk 0 is quoted: 5 held-out pairs
    assert kept.leans == pytest.approx([1.3, 1.1, 1.2, -0.3, 1.0], abs=0.01) and kept.lean_bound > MIN_LEAN
    dropped = profile.report.failed_verification[0].discrimination
    assert dropped.lean_bound is not None and dropped.lean_bound < 0
    markdown = profile.to_markdown()  # the reader sees both, and why the generic one went
    assert "mean lean +0.86" in markdown
    dropped_section = markdown.split("## Checked and dropped", 1)[1]
    assert GENERIC in dropped_section and "mean lean -0.02" in dropped_section


def test_specks_of_lean_keep_nothing():
    """Every pair leans to the person, by 0.05 log-odds: a consistent speck (a 1.5B checker's leans were all this
    small), not a difference a reader or a generator could use."""
    def checker(request: CompletionRequest) -> dict[str, float]:
        prompt = request.messages[-1]["content"]
        first, second = pair_texts(prompt)
        lean = 0.025 if mean_sentence_words(first) < mean_sentence_words(second) else -0.025
        if PLACEBO.statement in prompt:
            lean = 0.0
        p = 1 / (1 + math.exp(-lean))
        return {"A": p, "B": 1 - p}

    profile = HyperAlign(LLMClient(FakeBackend(oracle, probabilities=checker))).infer_profile(
        "walker", PERSON, options=InferenceOptions(proposal="single"))
    assert llm_checked(profile) == []
    tally = profile.report.failed_verification[0].discrimination
    assert tally.person == tally.contrast == 0 and 0 < tally.lean_bound < MIN_LEAN


def one_text_checker(request: CompletionRequest) -> dict[str, float]:
    """A checker read one text at a time: P("Yes") leans to "Yes" by 1 log-odds on anything (an acquiescent small
    model), and by 1.5 more for the true difference on short sentences, 1.5 less on long ones; the generic statement
    and the placebo fit every text alike."""
    prompt = request.messages[-1]["content"]
    texts = re.findall(r"<user_text>\n(.*?)\n</user_text>", prompt, re.S)
    assert len(texts) == 1 and 'id="B"' not in prompt, "a pointwise check shows one text"
    statement = re.search(r"^Statement about the writer: (.*)$", prompt, re.M).group(1)
    lean = 1.0
    if statement == SPECIFIC:
        lean += 1.5 if mean_sentence_words(texts[0]) < 12 else -1.5
    p = 1 / (1 + math.exp(-lean))
    return {"Yes": 0.95 * p, "No": 0.95 * (1 - p), "The": 0.05}


def test_pointwise_verification_reads_each_text_alone_and_keeps_only_the_true_difference():
    backend = FakeBackend(oracle, probabilities=one_text_checker)
    profile = HyperAlign(LLMClient(backend)).infer_profile(
        "walker", PERSON, options=InferenceOptions(proposal="single", verification="pointwise"))
    assert [h.statement for h in llm_checked(profile)] == [SPECIFIC]
    kept = llm_checked(profile)[0].discrimination
    assert kept.person == 4 and kept.contrast == 0 and kept.leans == pytest.approx([3.0] * 4, abs=0.01)
    generic = profile.report.failed_verification[0].discrimination
    assert generic.leans == pytest.approx([0.0] * 4, abs=0.01)  # fits both texts: no lean, dropped
    verification = profile.report.verification
    assert verification["pointwise"] == 1.0 and "position_bias_p_a" not in verification
    assert verification["mean_p_yes"] > 0.5  # the acquiescence is reported, and cancels in every lean
    label_calls = [r for r in backend.requests if r.top_logprobs]
    assert len(label_calls) == verification["calls"] == 5 * 2 * 4  # pairs x texts x (statements + placebo)


def test_pointwise_verification_without_log_probabilities_falls_back_to_the_pairwise_check():
    profile, backend = infer(oracle, verification="pointwise")
    assert [h.statement for h in llm_checked(profile)] == [SPECIFIC]
    assert "pointwise" not in profile.report.verification
    assert any(r.schema_name == "verify_hypotheses" for r in backend.requests)


def test_the_paper_method_is_one_flag_away_and_needs_no_contrast():
    def paper(request: CompletionRequest) -> str:
        assert request.json_schema is not None, "the paper method writes no default voice"
        assert request.schema_name != "verify_hypotheses"
        return FakeBackend()._responder(request)

    profile, backend = infer(paper, method="paper")
    assert profile.contrast is None and profile.report.method == "paper"
    assert all(f.measure.z is None for f in profile.facts)


def test_distinctive_words_are_habits_not_topics_or_names():
    person = [f"Indeed we went to see Lucy at the mill. Indeed the river was high. We saw {topic} there. "
              "Indeed it rained, and Lucy laughed." for topic in ("gears", "sheep", "a heron", "the boats")]
    contrast = ["We went to the mill. The river was high. It rained and we laughed."] * 4
    uses, avoids = distinctive_words(person, contrast)
    assert "indeed" in uses
    assert "lucy" not in uses  # a proper noun: the texts' subject
    assert "gears" not in uses  # in one text only: topic, not habit
    contrast_with_a_tic = [c + " Additionally, overall it was nice." for c in contrast] * 2
    _, avoids = distinctive_words(person, contrast_with_a_tic)
    assert "additionally" in avoids and "overall" in avoids


def test_a_reference_population_makes_a_genre_habit_not_the_persons():
    person = [PERSON[i].text.replace(".", "!", 3) for i in range(4)]
    default_voice = [stream_text(i, 6, 18) for i in range(4)]  # the model never exclaims
    alone, _ = distinctive_facts(person, default_voice)
    assert "punctuation:exclamation" in [f.measure.metric for f in alone]
    genre = ReferenceStats.of("genre", person)  # every writer of the genre exclaims as much
    with_genre, _ = distinctive_facts(person, default_voice, reference=genre)
    assert "punctuation:exclamation" not in [f.measure.metric for f in with_genre]


def test_no_text_of_the_reference_population_reaches_any_prompt_or_the_profile():
    marker = "zanzibarquokka"
    reference = ReferenceStats.of("others", [f"{marker} wrote this. {marker} again, {marker}."] * 5)
    profile, backend = infer(oracle, reference=reference)
    assert all(marker not in m["content"] for r in backend.requests for m in r.messages)
    assert marker not in profile.to_json()
    assert profile.contrast.reference == "others" and profile.contrast.reference_texts == 5


def hypothesis(statement: str) -> Hypothesis:
    return Hypothesis(aspect="personality", statement=statement, supported=True)


def profile_with(user: str, *statements: str) -> Profile:
    return Profile(user_id=user, hypotheses=[hypothesis(s) for s in statements], examples_hash="x", n_examples=0,
                   backend="fake", model="m", prompt_version="v")


def test_statements_many_profiles_share_are_marked_generic_and_ranked_last():
    assert canonical("The person is humorous.") == canonical("This person is humorous")
    population = [profile_with(f"u{i}", "The person is humorous.", f"Signs off with 'cheers {i}'.")
                  for i in range(6)]
    population[0] = profile_with("u0", "This person is humorous", "Opens with a weather report.")
    marked = mark_generic(population)
    first = {h.statement: h for h in marked[0].hypotheses}
    assert first["This person is humorous"].generic and first["This person is humorous"].shared_by == 1.0
    assert not first["Opens with a weather report."].generic
    assert generic_share(population) == pytest.approx(0.5)
    from hyperalign.pipeline.generate import GenerationOptions, shown_to_generator

    shown, _ = shown_to_generator(marked[0], GenerationOptions())
    assert [h.statement for h in shown][-1] == "This person is humorous"


def test_one_trait_in_many_wordings_is_generic_and_a_statement_with_a_word_of_its_own_is_not():
    # A small model words skepticism several ways; each profile also has a habit of its own.
    assert canonical("The person is more humorous than the typical answers.") == canonical("This person is humorous")
    wordings = ["The person is skeptical.", "The person is skeptical and critical.", "The person shows skepticism.",
                "The person is critical of lager brewers.", "The person is critical."]
    openings = ["Opens with 'Right then.'", "Opens with 'Hello all.'", "Opens with 'Well now.'",
                "Opens with 'Cheers, friends.'", "Opens with 'Good evening.'"]
    population = [profile_with(f"u{i}", wording, opening)
                  for i, (wording, opening) in enumerate(zip(wordings, openings, strict=True))]
    marks = {h.statement: h for p in mark_generic(population) for h in p.hypotheses}
    # Stemmed, "shows skepticism" is "is skeptical"; the other wordings stay apart, word for word.
    assert canonical("The person shows skepticism.") == canonical("The person is skeptical.")
    assert len({canonical(w) for w in wordings}) == 4
    assert all(marks[w].generic for w in wordings if "brewers" not in w)
    assert marks["The person is skeptical and critical."].shared_by == 0.6  # "critic": 3 of 5 profiles at most
    # A word no other profile says keeps a statement the person's: "lager brewers", and every opening, though
    # "open" is in all five.
    assert not marks["The person is critical of lager brewers."].generic
    assert not any(marks[o].generic for o in openings)
    # Word for word (stemmed), 2 of the 10 statements are in two profiles: that measure sees little of it.
    assert generic_share(population) == pytest.approx(0.2)


def test_batch_marks_what_many_of_its_profiles_share_in_the_target(tmp_path):
    from hyperalign.batch.run import mark_generic_in
    from hyperalign.batch.targets import ProfileFolder

    target = ProfileFolder(tmp_path / "profiles")
    for i in range(6):
        target.write(profile_with(f"u{i}", "The person is humorous.", f"Signs off with 'cheers {i}'."))
    population, generic, total = mark_generic_in(target, [f"u{i}" for i in range(6)])
    assert (population, generic, total) == (6, 6, 12)
    reread = target.get("u3")
    assert [(h.generic, h.shared_by) for h in reread.hypotheses] == [(True, 1.0), (False, round(1 / 6, 3))]


def test_a_held_out_text_is_identified_by_the_profile_whose_facts_it_follows():
    from hyperalign.eval.authorship.profiles import Population, identify

    short = stream_text(0, 5, 20)
    long = stream_text(3, 20, 5)
    profiles = {}
    demonstrations = []
    for author, texts, others in (("terse", [stream_text(i, 5, 20) for i in range(4)], [long] * 4),
                                  ("wordy", [stream_text(i, 20, 5) for i in range(4)], [short] * 4)):
        facts, _ = distinctive_facts(texts, others)
        demonstrations += texts
        profiles[author] = Profile(user_id=author, facts=facts, examples_hash="x", n_examples=4,
                                   backend="fake", model="m", prompt_version="v")
    population = Population(demonstrations)
    assert identify(stream_text(9, 5, 20), profiles, population) == "terse"
    assert identify(stream_text(9, 20, 5), profiles, population) == "wordy"


def fact_of(metric: str, mean: float, spread: float) -> Fact:
    return Fact(statement=metric, measure=Measure(metric=metric, mean=mean, spread=spread))


def test_a_profile_whose_facts_every_text_meets_does_not_take_every_text():
    """Adherence would pick `anyone` for every text: no text has semicolons, so its one fact is met exactly, while a
    terse text of 6-word sentences sits half a spread off `terse`'s 5. Against the population, `anyone`'s fact says
    nothing about who wrote a text, and `terse`'s says much."""
    from hyperalign.eval.authorship.profiles import Population, identification_score, identify
    from hyperalign.pipeline.adherence import check_facts, facts_adherence

    def profile(user: str, *facts: Fact) -> Profile:
        return Profile(user_id=user, facts=list(facts), examples_hash="x", n_examples=4, backend="fake", model="m",
                       prompt_version="v")

    profiles = {"anyone": profile("anyone", fact_of("punctuation:semicolon", 0.0, 2.0)),
                "terse": profile("terse", fact_of("sentence_words", 5.0, 2.0)),
                "wordy": profile("wordy", fact_of("sentence_words", 20.0, 3.0))}
    population = Population([stream_text(i, n, 60 // n) for i, n in enumerate((5, 6, 12, 14, 16, 20, 22))])
    text = stream_text(40, 6, 15)
    adherence = {a: facts_adherence(check_facts(text, p.facts)) for a, p in profiles.items()}
    assert max(adherence, key=lambda a: adherence[a] or 0.0) == "anyone"  # the bias this scoring removes
    assert identify(text, profiles, population) == "terse"
    assert identification_score(text, profiles["anyone"], population) == pytest.approx(0.0, abs=1e-9)
    assert identify(stream_text(41, 21, 4), profiles, population) == "wordy"
    assert identify(text, {"empty": profile("empty")}, population) is None


def test_a_population_leaves_each_persons_own_texts_out():
    texts = {"a": [stream_text(0, 6, 10)], "b": [stream_text(1, 18, 4)], "c": [stream_text(2, 18, 4)]}
    everyone = ReferenceStats.of("batch", [t for ts in texts.values() for t in ts])
    others = everyone.without(texts["a"])
    alone = ReferenceStats.of("b+c", texts["b"] + texts["c"])
    assert others.texts == 2 and others.metrics["sentence_words"] == pytest.approx(alone.metrics["sentence_words"])
    assert others.words == alone.words


def test_batch_infer_with_population_compares_each_user_with_the_others_aggregates(tmp_path):
    from typer.testing import CliRunner

    from hyperalign.cli import app

    users = tmp_path / "users.jsonl"
    users.write_text("".join(json.dumps({"id": f"u{i}", "examples": [{"text": stream_text(i, 6 + 4 * i, 6)}]}) + "\n"
                             for i in range(3)))
    result = CliRunner().invoke(app, ["--backend", "fake", "--no-cache", "batch", "infer", str(users), "--out",
                                      str(tmp_path / "profiles"), "--population"])
    assert result.exit_code == 0, result.output
    profile = Profile.load(tmp_path / "profiles" / "u0.json")
    assert profile.contrast.reference == "the batch's other users" and profile.contrast.reference_texts == 2
