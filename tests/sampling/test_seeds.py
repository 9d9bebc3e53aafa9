"""Per-image seeds: the same images come out whatever the batch size, the shard split or the number of
processes — for an ODE sampler, a stochastic one and a data prior (IHDM) — and labels are balanced."""
from __future__ import annotations

import pytest
import torch

from hdfm_bench.sampling.generate import Generator, generate
from hdfm_bench.sampling.seeds import IMAGES_PER_SEED, ImageGenerators, class_labels, image_seed, seed_range
from hdfm_bench.sampling.settings import SamplingSettings
from hdfm_bench.training import train
from tests.training.helpers import cfg_for


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    # trained long enough that the output depends on the input (adaLN-Zero starts as a constant map)
    return {p: train(cfg_for(out, p, steps=15), progress=False).run_dir for p in ("hdfm", "blurring_diffusion", "ihdm")}


def _split(run, settings, ranges, batch):
    gen = Generator(run, settings.replace(batch_size=batch))
    return torch.cat([b.samples for lo, hi in ranges for b in gen.batches(lo, hi)])


@pytest.mark.parametrize("path,sampler", [("hdfm", "heun"), ("blurring_diffusion", "posterior"),
                                          ("ihdm", "ihdm_delta")])
def test_images_do_not_depend_on_batch_size_or_shards(runs, path, sampler):
    """ODE (heun), stochastic (posterior) and a data prior (ihdm): bit-identical on CPU."""
    s = SamplingSettings(sampler=sampler, steps=3 if sampler != "ihdm_delta" else None, n=24, seed=5,
                         cfg_scale=2.0)
    whole = _split(runs[path], s, [(0, 24)], batch=24)
    assert (whole[1:] - whole[:1]).abs().amax(dim=(1, 2, 3)).min() > 0.1  # the images differ
    assert torch.equal(whole, _split(runs[path], s, [(0, 24)], batch=5))  # batches of 5, the last of 4
    assert torch.equal(whole, _split(runs[path], s, [(0, 8), (8, 16), (16, 24)], batch=3))  # 3 shards
    assert torch.equal(whole, _split(runs[path], s, [(16, 24), (0, 16)], batch=7)[torch.tensor(
        list(range(8, 24)) + list(range(8)))])  # shards in any order
    assert not torch.equal(whole, _split(runs[path], s.replace(seed=6), [(0, 24)], batch=24))
    # the first n images of a larger evaluation are the images of a smaller one
    assert torch.equal(whole[:10], _split(runs[path], s.replace(n=10), [(0, 10)], batch=4))


def test_stochastic_noise_is_drawn_per_image(runs):
    """Changing image 3's neighbours does not change image 3 (its sampler noise is its own)."""
    s = SamplingSettings(sampler="posterior", steps=4, n=8, seed=1)
    gen = Generator(runs["blurring_diffusion"], s)
    alone = gen.batch([3]).samples
    among = gen.batch([0, 1, 2, 3, 4]).samples[3:4]
    # equal up to the backbone's batch-size-dependent float rounding (bit-equality across batch sizes is
    # what Generator.batches' aligned blocks give, tested above)
    torch.testing.assert_close(alone, among, rtol=0, atol=1e-5)
    other = Generator(runs["blurring_diffusion"], s.replace(seed=2)).batch([3]).samples
    assert (other - alone).abs().max() > 0.1


def test_labels_are_balanced_by_index(runs):
    out = generate(runs["hdfm"], SamplingSettings(n=25, steps=2, batch_size=4, seed=0))
    assert out["labels"].tolist() == [i % 10 for i in range(25)]
    assert class_labels(range(7, 12), 10).tolist() == [7, 8, 9, 0, 1]
    assert out["protocol"]["image_seeds"] == seed_range(0, 0, 25) == "0-24"


def test_image_seeds_are_disjoint_per_seed_and_range_checked():
    assert image_seed(0, 5) == 5 and image_seed(2, 5) == 2 * IMAGES_PER_SEED + 5 < 2**32  # torch keeps 32 bits
    assert seed_range(1, 0, 50_000) == f"{IMAGES_PER_SEED}-{IMAGES_PER_SEED + 49_999}"
    with pytest.raises(ValueError, match="out of range"):
        image_seed(256, 0)
    with pytest.raises(ValueError, match="out of range"):
        image_seed(-1, 0)
    g = ImageGenerators(3, [0, 1])
    a, b = g.randn((2,)), ImageGenerators(3, [1]).randn((2,))
    assert torch.equal(a[1:], b) and not torch.equal(a[0], a[1])


def test_a_class_conditional_data_prior_draws_training_images_of_the_requested_class(runs):
    """IHDM's prior B_K x + δε: x is a training image of the label asked for (its coarse layout decides the
    digit), drawn from the image's own generator; unconditional draws are any training image, as before."""
    gen = Generator(runs["ihdm"], SamplingSettings(n=12, seed=3))
    train_x, train_y = gen.task.load("train")
    indices = list(range(12))
    labels = class_labels(indices, 10)
    drawn = gen._data_prior(ImageGenerators(3, indices), labels)
    for x, y in zip(drawn, labels):
        matches = (train_x == x).flatten(1).all(dim=1)
        assert matches.any() and set(train_y[matches].tolist()) == {int(y)}
    assert torch.equal(drawn, gen._data_prior(ImageGenerators(3, indices), labels))  # per-image seeds
    assert torch.equal(drawn[4:8], gen._data_prior(ImageGenerators(3, indices[4:8]), labels[4:8]))
    anyclass = gen._data_prior(ImageGenerators(3, indices), None)
    assert torch.equal(anyclass, train_x[ImageGenerators(3, indices).randint(len(train_x))])
