import pytest

from wsolbench.core.errors import UserError
from wsolbench.data.kshot import kshot_indices

LABELS = [0] * 5 + [1] * 7 + [2] * 3  # 15 images, smallest class has 3


def test_k_per_class_same_for_same_seed_different_across_seeds():
    a = kshot_indices(LABELS, 2, seed=0)
    assert a == kshot_indices(LABELS, 2, seed=0)
    assert sorted(LABELS[i] for i in a) == [0, 0, 1, 1, 2, 2]
    assert len(set(a)) == 6
    draws = {tuple(kshot_indices(LABELS, 2, seed=s)) for s in range(10)}
    assert len(draws) > 5


def test_k_equal_to_smallest_class_takes_all_of_it():
    chosen = kshot_indices(LABELS, 3, seed=4)
    assert [i for i in chosen if LABELS[i] == 2] == [12, 13, 14]


def test_k_larger_than_a_class_is_an_error():
    with pytest.raises(
        UserError, match="kshot: 4 is more than class 2 has \\(3 training images\\)"
    ):
        kshot_indices(LABELS, 4, seed=0)
