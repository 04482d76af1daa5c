"""The bundled ImageNet class table, class resolution (indices, names, synonyms; suggestions
for unknown names, candidates for ambiguous ones) and search."""

import numpy as np
import pytest
import torch

from bigganctl.classes import all_classes, normalize, resolve_class, resolve_classes, search, suggest
from bigganctl.errors import UsageError


def test_table_is_the_ilsvrc2012_order():
    t = all_classes()
    assert len(t) == 1000 and [c.index for c in t] == list(range(1000))
    assert (t[0].wnid, t[0].name) == ("n01440764", "tench")
    assert (t[207].wnid, t[207].name) == ("n02099601", "golden retriever")
    assert (t[999].wnid, t[999].name) == ("n15075141", "toilet tissue")
    assert [c.wnid for c in t] == sorted(c.wnid for c in t)          # ILSVRC order = sorted wnids
    assert len({c.wnid for c in t}) == 1000
    assert all(c.synonyms[0] == c.name and c.gloss for c in t)
    assert t[999].synonyms == ("toilet tissue", "toilet paper", "bathroom tissue")


@pytest.mark.parametrize("spec, index", [
    (207, 207), ("207", 207), (" 207 ", 207), ("n02099601", 207), ("N02099601", 207),
    ("golden retriever", 207), ("Golden  RETRIEVER", 207), ("golden_retriever", 207),
    ("goldfish", 1), ("Carassius auratus", 1), ("n01443537", 1), (0, 0), (999, 999),
    ("toilet paper", 999), ("Egyptian cat", 285), ("tabby cat", 281), (np.int64(5), 5),
    (torch.tensor(7), 7), ("crane", None),
])
def test_resolve_one(spec, index):
    if index is None:
        with pytest.raises(UsageError):
            resolve_class(spec)
    else:
        assert resolve_class(spec).index == index


def test_resolve_many_keeps_order_and_repeats():
    got = resolve_classes(["207", "golden retriever", "n01443537", "1,tench , 999"])
    assert [c.index for c in got] == [207, 207, 1, 1, 0, 999]
    assert [c.index for c in resolve_classes("207")] == [207]
    assert [c.index for c in resolve_classes(3)] == [3]


@pytest.mark.parametrize("spec, needle", [
    ("1000", "out of range"), ("-1", "out of range"), (1000, "out of range"), (-1, "out of range"),
    ("", "empty"), (",", "empty"), ([], "no class"), ("n99999999", "WordNet id"),
    (3.5, "not a class"), (True, "not a class"), ("qwxzv", "unknown class"),
])
def test_resolve_rejects_with_option(spec, needle):
    with pytest.raises(UsageError) as e:
        resolve_classes(spec)
    assert e.value.param == "classes" and needle in str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(UsageError) as e:
        resolve_class("golden retreiver")
    msg = str(e.value)
    assert msg.startswith("classes: unknown class 'golden retreiver'")
    assert "did you mean: golden retriever (207)" in msg       # the best suggestion first


def test_ambiguous_name_lists_candidates_with_indices():
    with pytest.raises(UsageError) as e:
        resolve_class("crane")
    msg = str(e.value)
    assert "ambiguous" in msg and "134 crane (" in msg and "517 crane (" in msg
    assert "bird" in msg and "heavy objects" in msg             # glosses tell them apart
    for name, indices in [("maillot", (638, 639)), ("panda", (387, 388)), ("partridge", (82, 86)),
                          ("cardigan", (264, 474))]:
        with pytest.raises(UsageError) as e:
            resolve_class(name)
        assert all(f"{i} " in str(e.value) for i in indices), name


def test_cat_is_not_guessed():
    """No class is called just 'cat': fail and suggest domestic cats, never a big cat."""
    with pytest.raises(UsageError) as e:
        resolve_class("cat")
    msg = str(e.value)
    assert "unknown class 'cat'" in msg
    assert "tiger cat (282)" in msg and "Persian cat (283)" in msg
    assert "cougar" not in msg and "lion" not in msg
    assert [c.index for c in suggest("cat")][:4] == [282, 283, 284, 285]


def test_normalize():
    assert normalize("  Golden_Retriever\t") == "golden retriever"


def test_search_ranks_exact_then_words_then_fuzzy():
    assert [c.index for c in search("retriever")] == [205, 206, 207, 208, 209]
    assert [c.index for c in search("crane")][:2] == [134, 517]
    assert search("207")[0].index == 207 and search("n01443537")[0].index == 1
    assert search("1000") == [] and search("n99999999") == []
    assert search("golden retreiver")[0].index == 207                       # fuzzy
    assert search("tabby")[0].index == 281
    assert 281 in [c.index for c in search("cat")]
    assert len(search("")) == 1000 and len(search("", limit=3)) == 3
    assert search("zzqqxx") == []


