import numpy as np
import pytest

from cnngraph.train.loader import Augment, Normalizer, Prefetch, augment_batch, batches

RNG = np.random.default_rng(0)


def test_normalizer_fits_per_channel_statistics():
    x = RNG.integers(0, 256, (50, 3, 4, 4), dtype=np.uint8)
    norm = Normalizer.fit(x)
    scaled = x / 255.0
    np.testing.assert_allclose(norm.mean, scaled.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(norm.std, scaled.std(axis=(0, 2, 3)))
    z = norm(x)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 2, 3)), 1, atol=1e-4)


def test_batches_cover_everything_once_and_shuffle_by_seed():
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    y = np.arange(10)
    norm = Normalizer((0.0,), (1.0,), 1.0)
    seen = [b for _, b in batches(x, y, 4, norm, np.random.default_rng(1))]
    assert [len(b) for b in seen] == [4, 4, 2]
    assert sorted(np.concatenate(seen)) == list(range(10))
    again = [b for _, b in batches(x, y, 4, norm, np.random.default_rng(1))]
    assert all(np.array_equal(a, b) for a, b in zip(seen, again, strict=True))
    ordered = np.concatenate([b for _, b in batches(x, y, 4, norm)])
    assert list(ordered) == list(range(10))
    assert [len(b) for _, b in batches(x, y, 4, norm, drop_last=True)] == [4, 4]
    images, labels = next(batches(x, y, 3, norm))
    assert np.array_equal(images[:, 0, 0, 0], labels.astype(np.float32))


def test_crop_with_padding_shifts_within_the_padding():
    x = np.zeros((64, 1, 6, 6), np.float32)
    x[:, :, 2:4, 2:4] = 1
    out = augment_batch(x, Augment(crop_padding=2), RNG)
    assert out.shape == x.shape
    assert np.allclose(out.sum(axis=(1, 2, 3)), 4)           # the square never leaves the crop
    positions = {tuple(np.argwhere(o[0])[0]) for o in out}
    assert len(positions) > 5                                   # and it moves around


def test_flip_mirrors_about_half_of_the_batch():
    x = np.tile(np.arange(5, dtype=np.float32), (200, 1, 2, 1))
    out = augment_batch(x, Augment(hflip=True), RNG)
    flipped = (out[:, 0, 0, 0] == 4).mean()
    assert 0.35 < flipped < 0.65
    assert np.array_equal(out[out[:, 0, 0, 0] == 4][0, 0, 0], x[0, 0, 0, ::-1])


def test_random_resized_crop_and_color_jitter_stay_in_range():
    x = RNG.random((20, 3, 8, 8)).astype(np.float32)
    out = augment_batch(x, Augment(random_resized_crop=True, color_jitter=0.4), RNG)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not np.allclose(out, x)
    flat = np.full((2, 3, 8, 8), 0.5, np.float32)
    crop = augment_batch(flat, Augment(random_resized_crop=True), RNG)
    np.testing.assert_allclose(crop, 0.5, atol=1e-6)           # resampling keeps a flat image


def test_prefetch_yields_in_order_and_reraises():
    assert list(Prefetch(iter(range(5)))) == [0, 1, 2, 3, 4]

    def broken():
        yield 1
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        list(Prefetch(broken()))


@pytest.mark.parametrize("workers", [2, 4])
def test_each_worker_prepares_its_own_shards_as_one_process_would(workers):
    """Cut into shards, a batch's augmentation draws per shard: the workers' parts of every
    batch, the uneven last one included, are the batch one process prepares."""
    x = RNG.integers(0, 256, (21, 3, 6, 6), dtype=np.uint8)
    y = np.arange(21)
    norm, augment = Normalizer.fit(x), Augment(crop_padding=2, hflip=True, color_jitter=0.3)

    def prepared(worker):
        return list(batches(x, y, 8, norm, np.random.default_rng(5), augment, shards=8,
                            worker=worker))

    whole = prepared((0, 1))
    parts = [prepared((rank, workers)) for rank in range(workers)]
    assert [len(labels) for _, labels in whole] == [8, 8, 5]
    for b, (images, labels) in enumerate(whole):
        assert np.array_equal(np.concatenate([p[b][1] for p in parts]), labels)
        assert np.array_equal(np.concatenate([p[b][0] for p in parts]), images)
    assert min(len(p[2][1]) for p in parts) >= 1       # 5 samples: every worker has some
    unsharded = [images for images, _ in batches(x, y, 8, norm, np.random.default_rng(5),
                                                 augment)]
    assert not np.array_equal(unsharded[0], whole[0][0])   # (shards draw apart)
