"""Burrows' Delta and the second-metric block (eval/authorship/delta.py) on two authors whose function-word habits
differ by construction: one writes "the … of the …", the other "I … and you …"."""

import random

import pytest

from hyperalign.eval.authorship.delta import DeltaModel, second_metrics

NOUNS = ["river", "market", "council", "garden", "letter", "engine", "harbor", "season", "table", "window"]


def formal(seed: int) -> str:
    rng = random.Random(seed)
    sentences = [f"The {rng.choice(NOUNS)} of the {rng.choice(NOUNS)} is in the {rng.choice(NOUNS)}."
                 for _ in range(12)]
    return " ".join(sentences)


def chatty(seed: int) -> str:
    rng = random.Random(seed)
    sentences = [f"I think you and I could fix my {rng.choice(NOUNS)}, and you know it." for _ in range(12)]
    return " ".join(sentences)


@pytest.fixture()
def training():
    return {"formal": [formal(i) for i in range(5)], "chatty": [chatty(i) for i in range(5)]}


def test_held_out_texts_are_attributed_to_their_author(training):
    model = DeltaModel(training, top=20)
    assert len(model.vocabulary) == 20
    for seed in range(100, 105):
        deltas = model.deltas(formal(seed))
        assert model.score(formal(seed), "formal") == {"delta": pytest.approx(deltas["formal"]), "correct": 1.0,
                                                       "margin": pytest.approx(deltas["chatty"] - deltas["formal"])}
        assert model.score(chatty(seed), "formal")["correct"] == 0.0
        deltas = model.deltas(chatty(seed))
        assert deltas["chatty"] < deltas["formal"]


def test_a_word_no_training_text_varies_does_not_divide_by_zero(training):
    same = {a: [t + " Amen." for t in texts] for a, texts in training.items()}
    model = DeltaModel(same, top=200)
    assert all(v == v for v in model.deltas("Amen. The river of the table.").values())  # no NaN


def test_second_metrics_frame_ceiling_floor_and_methods(training):
    references = [(formal(200), "formal"), (chatty(200), "chatty")]
    candidates = {"good": [(formal(300), "formal"), (chatty(300), "chatty")],
                  "swapped": [(chatty(301), "formal"), (formal(301), "chatty")]}
    result = second_metrics(training, training, candidates, references, seed=0)

    assert result["ceiling_real_texts"]["n"] == 2
    assert result["ceiling_real_texts"]["delta_accuracy"]["mean"] == 1.0
    floor = result["floor_other_authors"]
    assert floor["n"] == 2 and floor["delta_accuracy"] is None  # each reference against the one other author
    assert floor["delta"]["mean"] > result["ceiling_real_texts"]["delta"]["mean"]
    good, swapped = result["methods"]["good"], result["methods"]["swapped"]
    assert good["delta_accuracy"]["mean"] == 1.0 and swapped["delta_accuracy"]["mean"] == 0.0
    assert good["delta_margin"]["mean"] > 0 > swapped["delta_margin"]["mean"]
    assert result["ceiling_real_texts"]["delta_margin"]["mean"] > 0 > floor["delta_margin"]["mean"]
    assert good["facts_adherence"]["mean"] > swapped["facts_adherence"]["mean"]
    assert 0.0 <= swapped["facts_adherence"]["mean"] <= good["facts_adherence"]["mean"] <= 1.0
    assert result["features"].startswith(f"{len(DeltaModel(training).vocabulary)} most frequent words")


def test_each_method_is_also_compared_with_few_shot_prompt_by_prompt(training):
    references = [(formal(200), "formal"), (chatty(200), "chatty")]
    candidates = {"few-shot": [(formal(300), "formal"), (chatty(300), "chatty"), (formal(302), "formal")],
                  "swapped": [(chatty(301), "formal"), (formal(301), "chatty")],
                  "zero-shot": [(formal(303), "formal")]}
    ids = {"few-shot": ["a", "b", "c"], "swapped": ["b", "a"], "zero-shot": ["z"]}  # "z": no few-shot text to pair
    result = second_metrics(training, training, candidates, references, seed=0, item_ids=ids)
    model = DeltaModel(training)
    margin = {(m, i): model.score(t, a)["margin"] for m in candidates for i, (t, a) in zip(ids[m], candidates[m], strict=True)}
    paired = result["methods"]["swapped"]["delta_margin_vs_few-shot"]
    expected = [margin[("swapped", i)] - margin[("few-shot", i)] for i in ("b", "a")]
    assert paired["n"] == 2 and paired["mean"] == pytest.approx(sum(expected) / 2) and paired["mean"] < 0
    assert "delta_margin_vs_few-shot" not in result["methods"]["few-shot"]
    assert "delta_margin_vs_few-shot" not in result["methods"]["zero-shot"] and result["paired_against"] == "few-shot"
    without = second_metrics(training, training, candidates, references, seed=0)
    assert "delta_margin_vs_few-shot" not in without["methods"]["swapped"]


def test_a_method_with_no_outputs_has_no_summary(training):
    result = second_metrics(training, training, {"empty": []}, [(formal(9), "formal")], seed=0)
    assert result["methods"]["empty"] == {"n": 0, "delta_accuracy": None, "delta": None, "delta_margin": None,
                                          "facts_adherence": None}


def test_the_margin_tells_writing_like_the_author_from_writing_like_everyone(training):
    # A text half "formal", half "chatty" sits near the middle of the two authors: closer to "formal" than a chatty
    # text is, yet no more formal's than chatty's. Delta to the target alone would credit it; the margin does not.
    model = DeltaModel(training, top=20)
    own, blend, other = formal(400), formal(401)[:300] + " " + chatty(401)[:300], chatty(402)
    assert model.deltas(blend)["formal"] < model.deltas(other)["formal"]
    margins = {name: model.score(text, "formal")["margin"] for name, text in
               (("own", own), ("blend", blend), ("other", other))}
    assert margins["own"] > 0 > margins["other"]
    assert abs(margins["blend"]) < margins["own"] / 2


def test_the_margin_without_copying_leaves_out_the_outputs_that_copy_and_only_those(training):
    # One output per author is (by its flag) a copy of the author's own text: its margin is high, and a method whose
    # margin comes from copies alone shows it once they are left out.
    references = [(formal(500), "formal"), (chatty(500), "chatty")]
    candidates = {"copies": [(formal(0), "formal"), (chatty(501), "formal"), (chatty(1), "chatty"),
                             (formal(502), "chatty")],
                  "clean": [(formal(503), "formal")]}
    copying = {"copies": [True, False, True, False], "clean": [False]}
    result = second_metrics(training, training, candidates, references, seed=0, copying=copying)
    model = DeltaModel(training)
    kept = [model.score(t, a)["margin"] for (t, a), c in zip(candidates["copies"], copying["copies"], strict=True)
            if not c]
    without = result["methods"]["copies"]["delta_margin_without_copying"]
    assert without["n"] == 2 and without["mean"] == pytest.approx(sum(kept) / 2)
    assert without["mean"] < 0 < result["methods"]["copies"]["delta_margin"]["mean"]
    assert result["methods"]["clean"]["delta_margin_without_copying"]["mean"] == pytest.approx(
        result["methods"]["clean"]["delta_margin"]["mean"])
    every_copy = second_metrics(training, training, {"all": candidates["copies"][:1]}, references, seed=0,
                                copying={"all": [True]})
    assert every_copy["methods"]["all"]["delta_margin_without_copying"] is None


def test_the_paired_difference_without_copying_keeps_the_prompts_where_neither_output_copies(training):
    references = [(formal(600), "formal"), (chatty(600), "chatty")]
    candidates = {"few-shot": [(formal(0), "formal"), (formal(601), "formal"), (chatty(602), "chatty")],
                  "ours": [(formal(603), "formal"), (formal(604), "formal"), (chatty(3), "chatty")]}
    ids = {"few-shot": ["a", "b", "c"], "ours": ["a", "b", "c"]}
    # few-shot copies on "a", ours on "c": only "b" is compared.
    copying = {"few-shot": [True, False, False], "ours": [False, False, True]}
    result = second_metrics(training, training, candidates, references, seed=0, item_ids=ids, copying=copying)
    model = DeltaModel(training)
    expected = model.score(*candidates["ours"][1])["margin"] - model.score(*candidates["few-shot"][1])["margin"]
    clean = result["methods"]["ours"]["delta_margin_vs_few-shot_without_copying"]
    assert clean["n"] == 1 and clean["mean"] == pytest.approx(expected)
    assert result["methods"]["ours"]["delta_margin_vs_few-shot"]["n"] == 3
    plain = second_metrics(training, training, candidates, references, seed=0, item_ids=ids)
    assert "delta_margin_vs_few-shot_without_copying" not in plain["methods"]["ours"]
