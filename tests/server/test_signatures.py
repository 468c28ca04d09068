"""Routing from tensor kinds alone (server/signatures.py), on configs written by hand."""

from __future__ import annotations

import pytest

from protos.recsys.v1 import model_config_pb2 as mc
from server.errors import ModelLoadError
from server.signatures import Routes, route, served_signatures

USER, ITEM = mc.TENSOR_KIND_USER_INDEX, mc.TENSOR_KIND_ITEM_INDEX
HISTORY = (mc.TENSOR_KIND_HISTORY_ITEMS, mc.TENSOR_KIND_HISTORY_RATINGS, mc.TENSOR_KIND_HISTORY_LENGTHS)
RATING, RATING_SCORES, RANKING = mc.TENSOR_KIND_RATING, mc.TENSOR_KIND_RATING_SCORES, mc.TENSOR_KIND_RANKING_SCORES
NAMES = {
    USER: "user",
    ITEM: "item",
    HISTORY[0]: "history_items",
    HISTORY[1]: "history_ratings",
    HISTORY[2]: "lengths",
    RATING: "rating",
    RATING_SCORES: "scores",
    RANKING: "scores",
}


def signature(
    name: str, inputs: tuple[int, ...], output: int, *, stored: bool = False, kinds: bool = True
) -> mc.Signature:
    """A signature whose tensors carry the usual names, and their kinds unless ``kinds`` is False."""

    def spec(kind: int) -> mc.TensorSpec:
        return mc.TensorSpec(name=NAMES[kind], kind=kind if kinds else mc.TENSOR_KIND_UNSPECIFIED)

    return mc.Signature(
        name=name, inputs=[spec(k) for k in inputs], outputs=[spec(output)], reads_stored_history=stored
    )


def config(*signatures: mc.Signature, architecture_name: str = "custom") -> mc.ModelConfig:
    return mc.ModelConfig(name="m", version=1, signatures=signatures, architecture_name=architecture_name)


def routes(*signatures: mc.Signature, architecture_name: str = "custom") -> Routes:
    return route(served_signatures(config(*signatures, architecture_name=architecture_name)))


PREDICT = signature("predict", (USER, ITEM), RATING)


@pytest.mark.parametrize("reverse", [False, True], ids=["rating-first", "ranking-first"])
def test_recommend_prefers_ranking_scores_over_rating_scores(reverse):
    candidates = [signature("recommend_stars", (USER,), RATING_SCORES), signature("recommend", (USER,), RANKING)]
    chosen = routes(PREDICT, *(reversed(candidates) if reverse else candidates))
    assert chosen.recommend_users.name == "recommend"
    assert chosen.recommend_users.output_kind == RANKING
    assert chosen.predict_users.name == "predict"
    assert chosen.recommend_histories is None, "no signature takes a sent history"


def test_ranking_scores_come_before_user_index_inputs():
    chosen = routes(
        PREDICT, signature("recommend_stars", (USER,), RATING_SCORES), signature("recommend", HISTORY, RANKING)
    )
    assert chosen.recommend_users.name == "recommend", "a ranking head over stored histories beats rating scores"
    assert chosen.recommend_histories.name == "recommend"


@pytest.mark.parametrize("reverse", [False, True], ids=["history-first", "user-first"])
def test_user_index_inputs_are_preferred_over_histories_for_calls_naming_users(reverse):
    listed = [
        signature("predict", (*HISTORY, ITEM), RATING),
        signature("recommend", HISTORY, RANKING),
        signature("predict_user", (USER, ITEM), RATING, stored=True),
        signature("recommend_user", (USER,), RANKING, stored=True),
    ]
    chosen = routes(*(reversed(listed) if reverse else listed))
    assert chosen.predict_users.name == "predict_user" and chosen.predict_users.needs_stored_history
    assert chosen.recommend_users.name == "recommend_user" and chosen.recommend_users.needs_stored_history
    assert chosen.recommend_histories.name == "recommend", "sent histories go to the signature that reads them"
    assert chosen.recommend_histories.takes_history


def test_history_only_versions_serve_users_through_their_stored_histories():
    chosen = routes(signature("predict", (*HISTORY, ITEM), RATING), signature("recommend", HISTORY, RANKING))
    assert chosen.predict_users.name == "predict" and chosen.predict_users.takes_history
    assert chosen.recommend_users.name == "recommend" and chosen.recommend_users.needs_stored_history


def test_signatures_keep_their_input_order_and_kinds():
    (served,) = served_signatures(config(signature("predict", (ITEM, USER), RATING)))
    assert served.inputs == ("item", "user") and served.input_kinds == (ITEM, USER)
    assert served.output == "rating" and served.output_kind == RATING and not served.scores_catalogue


def test_legacy_configs_are_read_by_names():
    legacy = config(
        signature("predict", (*HISTORY, ITEM), RATING, kinds=False),
        signature("recommend", HISTORY, RANKING, kinds=False),
        signature("predict_user", (USER, ITEM), RATING, kinds=False),
        signature("recommend_user", (USER,), RANKING, kinds=False),
        architecture_name="",
    )
    served = {s.name: s for s in served_signatures(legacy)}
    assert served["predict"].input_kinds == (*HISTORY, ITEM) and served["predict"].output_kind == RATING
    assert served["recommend"].output_kind == RATING_SCORES, "before ranking heads, scores were stars"
    assert served["predict_user"].reads_stored_history and served["recommend_user"].reads_stored_history
    assert not served["predict"].reads_stored_history
    chosen = route(list(served.values()))
    assert (chosen.predict_users.name, chosen.recommend_users.name) == ("predict_user", "recommend_user")
    assert chosen.recommend_histories.name == "recommend"


def test_the_name_rule_for_stored_histories_is_for_legacy_configs_only():
    current = config(
        signature("predict", (USER, ITEM), RATING),
        signature("recommend", (USER,), RANKING),
        signature("rescore_user", (USER,), RANKING),
    )
    assert not any(s.reads_stored_history for s in served_signatures(current)), "new configs say so themselves"


@pytest.mark.parametrize(
    ("name", "kind"),
    [("user_age", mc.TENSOR_KIND_UNSPECIFIED), ("user", 42), ("user", mc.TENSOR_KIND_RATING)],
    ids=["unknown-legacy-name", "kind-from-the-future", "an-output-kind"],
)
def test_an_input_of_unknown_kind_fails_to_load_naming_it(name, kind):
    odd = signature("recommend", (USER,), RANKING)
    odd.inputs[0].name, odd.inputs[0].kind = name, kind
    with pytest.raises(ModelLoadError, match=rf"signature 'recommend' has inputs \['{name}'\].*unknown: \['{name}'\]"):
        served_signatures(config(PREDICT, odd))


def test_an_output_of_unknown_kind_or_several_outputs_fail_to_load():
    odd = signature("recommend", (USER,), RANKING)
    odd.outputs[0].name, odd.outputs[0].kind = "embedding", mc.TENSOR_KIND_UNSPECIFIED
    with pytest.raises(ModelLoadError, match=r"signature 'recommend' .*-> outputs \['embedding'\]"):
        served_signatures(config(PREDICT, odd))
    twice = signature("recommend", (USER,), RANKING)
    twice.outputs.add(name="rating", kind=RATING)
    with pytest.raises(ModelLoadError, match=r"outputs \['scores', 'rating'\]"):
        served_signatures(config(PREDICT, twice))


@pytest.mark.parametrize(
    "predict",
    [
        None,
        signature("predict", (USER, ITEM), RATING_SCORES),
        signature("predict", (USER,), RATING),
        signature("predict", (USER, *HISTORY, ITEM), RATING),
    ],
    ids=["absent", "scores-not-ratings", "no-item", "user-and-history-rows"],
)
def test_a_version_without_a_predict_signature_fails(predict):
    listed = [signature("recommend", (USER,), RANKING)] + ([predict] if predict is not None else [])
    with pytest.raises(ModelLoadError, match=r"offers no signature for Predict \(signatures: \["):
        routes(*listed)


def test_a_version_without_a_recommend_signature_fails():
    with pytest.raises(ModelLoadError, match="offers no signature for Recommend"):
        routes(PREDICT, signature("recommend", (USER, ITEM), RANKING))
    with pytest.raises(ModelLoadError, match="offers no signature for Recommend"):
        routes(PREDICT)
