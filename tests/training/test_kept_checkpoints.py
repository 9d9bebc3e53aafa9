"""``keep_every``: copies of the checkpoint along training, sampled with ``checkpoint_step`` (FID against
training steps, issue 17.2)."""
from __future__ import annotations

import pytest
import torch

from hdfm_bench.core.config import RunConfigError
from hdfm_bench.core.rundir import kept_checkpoint_path, kept_steps
from hdfm_bench.evaluation.protocol import EvalSettings
from hdfm_bench.sampling.generate import generate
from hdfm_bench.sampling.settings import SamplingSettings
from hdfm_bench.sweeps.spec import Sweep, SweepError
from hdfm_bench.training import load_run, train
from hdfm_bench.training.checkpoint import CheckpointError
from tests.training.helpers import cfg_for


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("kept")
    long = train(cfg_for(out, "hdfm", steps=16, checkpoint_every=4, keep_every=8), progress=False).run_dir
    short = train(cfg_for(out, "hdfm", steps=8, checkpoint_every=4), progress=False).run_dir
    return long, short


def test_copies_are_kept_every_keep_every_steps_and_equal_a_shorter_run(runs):
    long, short = runs
    assert kept_steps(long) == [8, 16] and kept_steps(short) == []
    # the step-8 copy of the 16-step run is the 8-step run: the data order and the learning rate at a
    # step do not depend on the total budget, so training is a prefix
    _, m_kept, s_kept = load_run(long, 0.9, step=8)
    _, m_short, s_short = load_run(short, 0.9)
    assert s_kept["step"] == s_short["step"] == 8
    for (k, a), (_, b) in zip(m_kept.state_dict().items(), m_short.state_dict().items()):
        assert torch.equal(a, b), k
    _, m_last, s_last = load_run(long, 0.9)
    assert s_last["step"] == 16 and not torch.equal(next(iter(m_last.state_dict().values())),
                                                    next(iter(m_kept.state_dict().values())))


def test_sampling_from_a_kept_step_gives_that_checkpoints_images(runs):
    long, short = runs
    s = SamplingSettings(n=6, steps=3, ema=0.9, cfg_scale=2.0)
    kept = generate(long, s.replace(checkpoint_step=8))
    assert kept["protocol"]["checkpoint_step"] == 8
    assert torch.equal(kept["samples"], generate(short, s)["samples"])
    assert generate(long, s.replace(checkpoint_step=16))["protocol"]["checkpoint_step"] == 16  # the latest
    with pytest.raises(CheckpointError, match=r"no checkpoint of step 12 .*kept: 8, 16"):
        generate(long, s.replace(checkpoint_step=12))


def test_evaluation_keys_name_the_checkpoint_step():
    e = EvalSettings(n=10)
    assert e.key("run", 16) == e.replace(checkpoint_step=16).key("run", 16)  # the latest, named or not
    assert e.replace(checkpoint_step=8).key("run", 16) != e.key("run", 16)
    assert e.replace(checkpoint_step=8).key("run", 16) == e.key("run", 8)


def test_bad_keep_every_and_unkept_steps_are_refused(tmp_path):
    with pytest.raises(RunConfigError, match="keep_every must be >= 0"):
        cfg_for(tmp_path, keep_every=-1)
    with pytest.raises(RunConfigError, match=r"keep_every \(30\) must be a multiple of checkpoint_every \(20\)"):
        cfg_for(tmp_path, keep_every=30)
    assert cfg_for(tmp_path, keep_every=40).run_id() == cfg_for(tmp_path).run_id()  # not part of the identity
    with pytest.raises(Exception, match="checkpoint_step must be an integer >= 1"):
        SamplingSettings(checkpoint_step=0)
    spec = tmp_path / "s.toml"
    spec.write_text('name = "k"\n[base]\ntask = "digits"\nbackbone = "vit"\nsteps = 40\ncheckpoint_every = 10\n'
                    'keep_every = 20\n[eval]\ncheckpoint_step = [20, 40, "latest"]\nn = 10\n')
    assert sorted(e.checkpoint_step or 0 for e in Sweep.load(spec).runs[0].evals) == [0, 20, 40]
    spec.write_text(spec.read_text().replace("[20, 40", "[30, 40"))
    with pytest.raises(SweepError, match="checkpoint_step 30 is not kept"):
        Sweep.load(spec)
    assert not kept_checkpoint_path(tmp_path, 20).exists()
