"""The chapter's data sets: shapes, scaling, the fixed splits, fresh arrays."""

import numpy as np
import pytest

from bnbackprop.data import load_digits_as_blog, load_mnist_subset


def test_digits_as_blog():
    data = load_digits_as_blog()
    assert data.X_train.shape == (1500, 64) and data.X_test.shape == (297, 64)
    assert data.X_train.min() == 0.0 and max(data.X_train.max(), data.X_test.max()) == 1.0
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.testing.assert_array_equal(data.X_train[13], digits.images[13].ravel() / 16)
    np.testing.assert_array_equal(data.y_test, digits.target[1500:])
    data.X_train[0, 0] = 99.0  # callers own their arrays
    assert load_digits_as_blog().X_train[0, 0] != 99.0


def test_mnist_subset_split_is_stratified_and_scaled():
    data = load_mnist_subset()
    assert data.X_train.shape == (4000, 784) and data.X_test.shape == (1000, 784)
    assert np.bincount(data.y_train).tolist() == [400] * 10
    assert np.bincount(data.y_test).tolist() == [100] * 10
    assert data.X_train.min() == 0.0 and data.X_train.max() == 1.0
    # No image is in both sets.
    train = {row.tobytes() for row in data.X_train}
    assert not any(row.tobytes() in train for row in data.X_test)
    data.X_test[0, 0] = 5.0
    assert load_mnist_subset().X_test[0, 0] != 5.0
    assert load_mnist_subset(train_per_class=450).X_test.shape == (500, 784)


@pytest.mark.parametrize("value", [0, 500, -3])
def test_bad_split_sizes(value):
    with pytest.raises(ValueError, match="train_per_class"):
        load_mnist_subset(train_per_class=value)
    with pytest.raises(TypeError, match="train_size"):
        load_digits_as_blog(train_size=1.5)
    with pytest.raises(ValueError, match="train_size"):
        load_digits_as_blog(train_size=1797)
