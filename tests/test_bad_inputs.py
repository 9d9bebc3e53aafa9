"""Bad input, table-driven: every subcommand refuses it with exit 2, one line, and no trace on disk.

Each case runs ``hdfm_bench.cli.main(argv)`` in this process (argparse's own exits caught as
SystemExit) and asserts:

* exit code 2;
* stderr is exactly one non-empty line ``hdfm-bench: error: ...`` (style ``one``); cases marked
  ``argparse`` are refused by argparse itself (type=/choices=/required), which prints its usage and
  ``hdfm-bench <cmd>: error: ...`` — for those either form passes, the message line being the last;
* that line names the problem: every item of ``expect`` occurs in it (a tuple: any one of its strings;
  a compiled pattern: a regex search), and no item of ``forbid`` occurs anywhere in stdout or stderr;
* stdout does not claim work (``wrote``, ``submitting``, ``submitted``);
* nothing on disk changed: the listing (relative path, size, mtime_ns) of this module's folders — the
  data root with its run folders, the output folder, the working directory the command runs in — and
  of the task data root (``$HDFM_BENCH_DATA`` / ``~/.cache/hdfm-bench``) is the same before and after.

Warnings a command emits (other than deprecation notices) count as stderr lines, as they would print
in a fresh process. Anything that trains uses the offline ``digits`` task; one tiny run (3 steps)
is trained once for the module and reused by ``sample`` / ``evaluate``.
"""
from __future__ import annotations

import dataclasses
import os
import random
import re
import shutil
import signal
import sys
import traceback
import warnings
from pathlib import Path

import pytest

from hdfm_bench import cli

#: seconds one case may run before it is stopped (a case that is not refused does real work)
CASE_TIMEOUT_S = 30
#: stdout words that claim work was done
CLAIMS = ("wrote", "submitting", "submitted")
ONE = "one"          # must be the one-line `hdfm-bench: error: ...`
ARGPARSE = "argparse"  # refused by argparse: usage + `hdfm-bench <cmd>: error: ...` accepted too

TINY = ["--backbone-params", "patch=2", "--backbone-params", "width=32", "--backbone-params", "depth=1"]
TRAIN = ["train", "--task", "digits", "--path", "noise_fm", "--steps", "3", "--batch-size", "16", *TINY,
         "--out-dir", "{out}/runs", "--no-progress"]
SAMPLE = ["sample", "{run}", "--steps", "2", "-n", "10", "--out", "{out}/samples/s"]
EVAL = ["evaluate", "{run}", "--steps", "2", "-n", "10", "--store", "{out}/store.jsonl"]
SCORE = ["score", "{data}/scores/ok.npz", "--task", "digits", "--store", "{out}/store.jsonl"]

def word(name: str) -> re.Pattern:
    """A one-letter parameter (a, K, T) named as such in a message, not the English article."""
    return re.compile(rf"(?:path_params\.{name}\b|'{name}'|\b{name}\s*=|parameter {name}\b|(?<![\w-]){name}\b"
                      rf"(?= must| is| should| expects| has|:))")


N_OPT = re.compile(r"(?:(?<![\w-])-n\b|'n'|(?<![\w-])n\b(?= must| =| is|:| should))")


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    argv: list
    expect: tuple = ()
    style: str = ONE
    forbid: tuple = ()
    hide_slurm: bool = False


def c(id, argv, *expect, style=ONE, forbid=(), hide_slurm=False) -> Case:
    return Case(id, list(argv), tuple(expect), style, tuple(forbid), hide_slurm)


def UNDERSCORE(name: str) -> tuple:
    """A field named as the field (batch_size) or as its option (batch-size)."""
    return name, name.replace("_", "-")

CASES = [
    # ---- the command line itself -------------------------------------------------------------------------
    c("cli-no-command", [], "COMMAND", style=ARGPARSE),
    c("cli-unknown-command", ["frobnicate"], "frobnicate", style=ARGPARSE),
    c("list-unknown-option", ["list", "--nope"], "--nope", style=ARGPARSE),
    c("list-threads-zero", ["list", "--threads", "0"], "--threads", "'0'", style=ARGPARSE),
    c("train-threads-abc", [*TRAIN, "--threads", "abc"], "--threads", "abc", style=ARGPARSE),

    # ---- gallery ------------------------------------------------------------------------------------------
    c("gallery-out-existing-folder", ["gallery", "--out", "{data}/existing_dir"], "existing_dir"),
    c("gallery-out-not-png", ["gallery", "--out", "{out}/g.txt"], "g.txt"),
    c("gallery-times-out-of-range", ["gallery", "--out", "{out}/g.png", "--times", "0,1.5"], "times", "1.5"),
    c("gallery-times-negative", ["gallery", "--out", "{out}/g.png", "--times=-0.5"], "times", "-0.5"),
    c("gallery-times-nan", ["gallery", "--out", "{out}/g.png", "--times", "0,nan"], "times", "nan"),
    c("gallery-times-abc", ["gallery", "--out", "{out}/g.png", "--times", "abc"], "--times", "abc",
      style=ARGPARSE),
    c("gallery-times-empty", ["gallery", "--out", "{out}/g.png", "--times", ","], "times"),
    c("gallery-seed-negative", ["gallery", "--out", "{out}/g.png", "--seed", "-1"], "seed", "-1"),

    # ---- perf ---------------------------------------------------------------------------------------------
    c("perf-only-unknown", ["perf", "--only", "nope", "--out", "{out}/perf.md"], "nope"),
    c("perf-repeats-zero", ["perf", "--only", "spectral", "--repeats", "0", "--out", "{out}/perf.md"],
      "repeats", "0"),
    c("perf-repeats-negative", ["perf", "--only", "spectral", "--repeats", "-3", "--out", "{out}/perf.md"],
      "repeats", "-3"),
    c("perf-repeats-abc", ["perf", "--only", "spectral", "--repeats", "abc", "--out", "{out}/perf.md"],
      "--repeats", "abc", style=ARGPARSE),
    c("perf-out-existing-folder", ["perf", "--only", "spectral", "--repeats", "1", "--out", "{data}/existing_dir"],
      "existing_dir"),

    # ---- train: unknown names -----------------------------------------------------------------------------
    c("perf-out-under-a-file", ["perf", "--only", "spectral", "--repeats", "1", "--out", "{data}/notes.txt/perf.md"],
      "notes.txt is a file", forbid=("Errno",)),
    c("train-path-unknown", [*TRAIN, "--path", "nope"], "path", "nope"),
    c("train-target-unknown", [*TRAIN, "--target", "nope"], "target", "nope"),
    c("train-loss-unknown", [*TRAIN, "--loss", "nope"], "loss", "nope"),
    c("train-norm-unknown", [*TRAIN, "--norm", "nope"], "norm", "nope"),
    c("train-task-unknown", [*TRAIN, "--task", "nope"], "task", "nope"),
    c("train-backbone-unknown", [*TRAIN, "--backbone", "nope"], "backbone", "nope"),
    c("train-backend-unknown", [*TRAIN, "--backend", "nope"], "backend", "nope"),
    c("train-device-unknown", [*TRAIN, "--device", "nope"], "device", "nope"),
    # ---- train: numbers -------------------------------------------------------------------------------------
    c("train-lr-inf", [*TRAIN, "--lr", "inf"], "lr", "inf"),
    c("train-lr-nan", [*TRAIN, "--lr", "nan"], "lr", "nan"),
    c("train-lr-negative", [*TRAIN, "--lr", "-1"], "lr", "-1"),
    c("train-lr-zero", [*TRAIN, "--lr", "0"], "lr", "0"),
    c("train-lr-abc", [*TRAIN, "--lr", "abc"], "--lr", "abc", style=ARGPARSE),
    c("train-beta1-above-one", [*TRAIN, "--beta1", "1.5"], "beta1", "1.5"),
    c("train-beta2-negative", [*TRAIN, "--beta2", "-0.1"], "beta2", "-0.1"),
    c("train-beta1-nan", [*TRAIN, "--beta1", "nan"], "beta1", "nan"),
    c("train-weight-decay-negative", [*TRAIN, "--weight-decay", "-1"], UNDERSCORE("weight_decay"), "-1"),
    c("train-steps-zero", [*TRAIN, "--steps", "0"], "steps", "0"),
    c("train-steps-float", [*TRAIN, "--steps", "1.5"], "--steps", "1.5", style=ARGPARSE),
    c("train-batch-size-zero", [*TRAIN, "--batch-size", "0"], UNDERSCORE("batch_size"), "0"),
    c("train-warmup-negative", [*TRAIN, "--warmup", "-1"], "warmup", "-1"),
    c("train-grad-clip-negative", [*TRAIN, "--grad-clip", "-1"], UNDERSCORE("grad_clip"), "-1"),
    c("train-grad-clip-nan", [*TRAIN, "--grad-clip", "nan"], UNDERSCORE("grad_clip"), "nan"),
    c("train-ema-decays-above-one", [*TRAIN, "--ema-decays", "1.5"], UNDERSCORE("ema_decays"), "1.5"),
    c("train-ema-decays-zero", [*TRAIN, "--ema-decays", "0"], UNDERSCORE("ema_decays"), "0"),
    c("train-ema-decays-abc", [*TRAIN, "--ema-decays", "abc"], "--ema-decays", "abc", style=ARGPARSE),
    c("train-label-dropout-2", [*TRAIN, "--label-dropout", "2"], UNDERSCORE("label_dropout"), "2"),
    c("train-label-dropout-negative", [*TRAIN, "--label-dropout", "-0.1"], UNDERSCORE("label_dropout"), "-0.1"),
    c("train-checkpoint-every-zero", [*TRAIN, "--checkpoint-every", "0"], UNDERSCORE("checkpoint_every"), "0"),
    c("train-log-every-zero", [*TRAIN, "--log-every", "0"], UNDERSCORE("log_every"), "0"),
    c("train-workers-negative", [*TRAIN, "--workers", "-1"], "workers", "-1"),
    c("train-seed-negative", [*TRAIN, "--seed", "-1"], "seed", "-1"),
    # ---- train: path / backbone / task parameters -------------------------------------------------------------
    c("train-hdfm-a-inf", [*TRAIN, "--path", "hdfm", "--path-params", "a=inf"], word("a"), "inf"),
    c("train-hdfm-a-abc", [*TRAIN, "--path", "hdfm", "--path-params", "a=abc"], word("a"), "abc"),
    c("train-noise-scale-nan", [*TRAIN, "--path-params", "noise_scale=nan"], "noise_scale", "nan"),
    c("train-noise-scale-zero", [*TRAIN, "--path-params", "noise_scale=0"], "noise_scale", "0"),
    c("train-bdm-sigma-blur-max-inf", [*TRAIN, "--path", "blurring_diffusion", "--path-params", "sigma_blur_max=inf"],
      "sigma_blur_max", "inf"),
    c("train-ihdm-noise-std-inf", [*TRAIN, "--path", "ihdm", "--path-params", "noise_std=inf"], "noise_std", "inf"),
    c("train-ihdm-K-zero", [*TRAIN, "--path", "ihdm", "--path-params", "K=0"], word("K"), "0"),
    c("train-cold-blur-T-zero", [*TRAIN, "--path", "cold_blur", "--path-params", "T=0"], word("T"), "0"),
    c("train-cold-blur-schedule-unknown", [*TRAIN, "--path", "cold_blur", "--path-params", "schedule=nope"],
      "schedule", "nope"),
    c("train-path-params-no-equals", [*TRAIN, "--path-params", "foo"], UNDERSCORE("path_params"), "foo"),
    c("train-path-params-unknown", [*TRAIN, "--path-params", "unknown=1"], "unknown"),
    c("train-backbone-params-unknown", [*TRAIN, "--backbone-params", "nope=1"], "nope"),
    c("train-backbone-params-depth-zero", [*TRAIN, "--backbone-params", "depth=0"], "depth", "0"),
    c("train-task-params-unknown", [*TRAIN, "--task-params", "nope=1"], "nope"),
    c("train-imagefolder-empty-class", [*TRAIN, "--task", "imagefolder", "--task-params", "root={data}/emptyclass",
                                        "--task-params", "resolution=8"], "emptyclass/c", "holds no images"),
    c("train-set-no-equals", [*TRAIN, "--set", "foo"], "--set", "foo"),
    c("train-set-unknown-key", [*TRAIN, "--set", "nope=1"], "nope"),
    c("train-set-warmup-string", [*TRAIN, "--set", "warmup=abc"], "warmup", "abc"),
    # ---- train: combinations ----------------------------------------------------------------------------------
    c("train-ihdm-target-v", [*TRAIN, "--path", "ihdm", "--target", "v"], "ihdm", re.compile(r"'v'|\bv\b")),
    c("train-cold-blur-target-eps", [*TRAIN, "--path", "cold_blur", "--target", "eps"], "cold_blur", "eps"),
    c("train-noise-fm-loss-prev-mean", [*TRAIN, "--loss", "prev_mean"], "prev_mean"),
    c("train-out-dir-is-a-file", [*TRAIN[:-3], "--out-dir", "{data}/notes.txt", "--no-progress"], "notes.txt"),
    # ---- train: config files -------------------------------------------------------------------------------------
    c("train-config-missing", ["train", "{data}/missing.toml", *TRAIN[1:]], "missing.toml"),
    c("train-config-syntax-error", ["train", "{data}/syntax.toml", *TRAIN[1:]], "syntax.toml"),
    c("train-config-not-utf8", ["train", "{data}/nonutf8.toml", *TRAIN[1:]], "nonutf8.toml"),
    c("train-config-unknown-key", ["train", "{data}/unknown_key.toml", *TRAIN[1:]], "frobnicate"),
    c("train-config-wrong-type", ["train", "{data}/wrong_type.toml", *TRAIN[1:]], "warmup", "many"),
    c("train-config-is-a-folder", ["train", "{data}/existing_dir", *TRAIN[1:]], "existing_dir"),

    # ---- sample on the module's run --------------------------------------------------------------------------
    c("sample-cfg-scale-nan", [*SAMPLE, "--cfg-scale", "nan"], UNDERSCORE("cfg_scale"), "nan"),
    c("sample-cfg-scale-inf", [*SAMPLE, "--cfg-scale", "inf"], UNDERSCORE("cfg_scale"), "inf"),
    c("sample-cfg-scale-negative", [*SAMPLE, "--cfg-scale", "-1"], UNDERSCORE("cfg_scale"), "-1"),
    c("sample-cfg-interval-reversed", [*SAMPLE, "--cfg-interval", "0.5", "0.2"], UNDERSCORE("cfg_interval")),
    c("sample-cfg-interval-nan", [*SAMPLE, "--cfg-interval", "nan", "1"], UNDERSCORE("cfg_interval"), "nan"),
    c("sample-ema-abc", [*SAMPLE, "--ema", "abc"], "--ema", "abc", style=ARGPARSE),
    c("sample-checkpoint-step-zero", [*SAMPLE, "--checkpoint-step", "0"], "checkpoint_step", "0"),
    c("sample-steps-past-any-budget", [*SAMPLE[:2], "--steps", "99999999999", "-n", "4"], "steps", "100,000",
      "99999999999"),
    c("sample-batch-past-the-memory", [*SAMPLE[:2], "-n", "16000000", "--batch-size", "16000000", "--steps", "2"],
      "--batch-size 16000000", "at most"),
    c("evaluate-steps-past-any-budget", [*EVAL[:2], "--steps", "1000001", "-n", "4"], "steps", "100,000"),
    c("sample-checkpoint-step-not-kept", [*SAMPLE, "--checkpoint-step", "2"], "no checkpoint of step 2"),
    c("sample-ema-not-kept", [*SAMPLE, "--ema", "0.5"], ("ema", "EMA"), "0.5"),
    c("sample-ema-above-one", [*SAMPLE, "--ema", "1.5"], ("ema", "EMA"), "1.5"),
    c("sample-sampler-unknown", [*SAMPLE, "--sampler", "nope"], "nope"),
    c("sample-sampler-wrong-path", [*SAMPLE, "--sampler", "ihdm_delta"], "ihdm_delta", "noise_fm"),
    c("sample-sampler-param-no-equals", [*SAMPLE, "--sampler-param", "foo"], "--sampler-param", "foo"),
    c("sample-sampler-param-unknown", [*SAMPLE, "--sampler-param", "bogus=1"], "bogus"),
    c("sample-n-zero", [*SAMPLE, "-n", "0"], N_OPT, "0"),
    c("sample-n-negative", [*SAMPLE, "-n", "-4"], N_OPT, "-4"),
    c("sample-steps-zero", [*SAMPLE, "--steps", "0"], "steps", "0"),
    c("sample-steps-negative", [*SAMPLE, "--steps", "-1"], "steps", "-1"),
    c("sample-seed-negative", [*SAMPLE, "--seed", "-1"], "seed", "-1"),
    c("sample-seed-too-large", [*SAMPLE, "--seed", "300"], "seed", "300"),
    c("sample-two-seeds", [*SAMPLE, "--seed", "0", "--seed", "1"], "seed"),
    c("sample-batch-size-zero", [*SAMPLE, "--batch-size", "0"], UNDERSCORE("batch_size"), "0"),
    c("sample-batch-size-negative", [*SAMPLE, "--batch-size", "-1"], UNDERSCORE("batch_size"), "-1"),
    c("sample-run-missing", ["sample", "{data}/no_such_run", *SAMPLE[2:]], "no_such_run"),
    c("sample-run-is-a-file", ["sample", "{data}/notes.txt", *SAMPLE[2:]], "notes.txt"),
    c("sample-run-without-checkpoint", ["sample", "{data}/no_ckpt_run", *SAMPLE[2:]], "no_ckpt_run",
      "checkpoint"),
    c("sample-checkpoint-garbage", ["sample", "{data}/garbage_run", *SAMPLE[2:]], "garbage_run", "checkpoint",
      forbid=("weights_only", "Traceback")),
    c("sample-checkpoint-truncated", ["sample", "{data}/truncated_run", *SAMPLE[2:]], "truncated_run",
      "checkpoint", forbid=("weights_only", "Traceback")),
    c("sample-checkpoint-of-another-run", ["sample", "{other}", *SAMPLE[2:]], "{run_id}", "{other_id}"),
    c("sample-checkpoint-without-model", ["sample", "{data}/no_model_run", *SAMPLE[2:]], "no_model_run",
      "no 'model' entry", forbid=("KeyError", "Traceback")),
    c("sample-checkpoint-nan-weights", ["sample", "{data}/nan_run", *SAMPLE[2:]], "nan_run", "non-finite weights"),
    c("sample-out-under-a-file", [*SAMPLE[:-1], "{data}/notes.txt/s"], "notes.txt"),

    # ---- evaluate on the module's run --------------------------------------------------------------------------
    c("evaluate-cfg-scale-nan", [*EVAL, "--cfg-scale", "nan"], UNDERSCORE("cfg_scale"), "nan"),
    c("evaluate-cfg-scale-inf", [*EVAL, "--cfg-scale", "inf"], UNDERSCORE("cfg_scale"), "inf"),
    c("evaluate-cfg-scale-negative", [*EVAL, "--cfg-scale", "-1"], UNDERSCORE("cfg_scale"), "-1"),
    c("evaluate-ema-abc", [*EVAL, "--ema", "abc"], "--ema", "abc", style=ARGPARSE),
    c("evaluate-ema-not-kept", [*EVAL, "--ema", "0.5"], ("ema", "EMA"), "0.5"),
    c("evaluate-sampler-unknown", [*EVAL, "--sampler", "nope"], "nope"),
    c("evaluate-sampler-param-no-equals", [*EVAL, "--sampler-param", "foo"], "--sampler-param", "foo"),
    c("evaluate-sampler-param-unknown", [*EVAL, "--sampler-param", "bogus=1"], "bogus"),
    c("evaluate-n-zero", [*EVAL, "-n", "0"], N_OPT, "0"),
    c("evaluate-n-negative", [*EVAL, "-n", "-4"], N_OPT, "-4"),
    c("evaluate-n-one", [*EVAL, "-n", "1"], N_OPT, "1"),
    c("evaluate-steps-zero", [*EVAL, "--steps", "0"], "steps", "0"),
    c("evaluate-steps-negative", [*EVAL, "--steps", "-1"], "steps", "-1"),
    c("evaluate-seed-negative", [*EVAL, "--seed", "-1"], "seed", "-1"),
    c("evaluate-second-seed-negative", [*EVAL, "--seed", "0", "--seed", "-1"], "seed", "-1"),
    c("evaluate-batch-size-zero", [*EVAL, "--batch-size", "0"], UNDERSCORE("batch_size"), "0"),
    c("evaluate-run-missing", ["evaluate", "{data}/no_such_run", *EVAL[2:]], "no_such_run"),
    c("evaluate-run-without-checkpoint", ["evaluate", "{data}/no_ckpt_run", *EVAL[2:]], "no_ckpt_run",
      "checkpoint"),
    c("evaluate-checkpoint-garbage", ["evaluate", "{data}/garbage_run", *EVAL[2:]], "garbage_run", "checkpoint",
      forbid=("weights_only", "Traceback")),
    c("evaluate-checkpoint-of-another-run", ["evaluate", "{other}", *EVAL[2:]], "{run_id}", "{other_id}"),
    c("evaluate-checkpoint-nan-weights", ["evaluate", "{data}/nan_run", *EVAL[2:]], "nan_run", "non-finite weights"),
    c("diagnose-run-missing", ["diagnose", "{data}/no_such_run"], "no_such_run"),
    c("diagnose-checkpoint-nan-weights", ["diagnose", "{data}/nan_run"], "nan_run", "non-finite weights"),
    c("diagnose-n-zero", ["diagnose", "{run}", "-n", "0"], "-n", "'0'", style=ARGPARSE),
    c("diagnose-points-huge", ["diagnose", "{run}", "--points", "100000"], "--points", "100000"),
    c("diagnose-ema-unknown", ["diagnose", "{run}", "--ema", "0.5"], "0.5", "EMA"),
    c("diagnose-out-is-a-file", ["diagnose", "{run}", "--out", "{data}/notes.txt"], "notes.txt"),
    c("evaluate-extractor-unknown", [*EVAL, "--extractor", "nope"], "nope"),
    c("evaluate-reference-split-unknown", [*EVAL, "--reference-split", "nope"], "nope"),
    c("evaluate-metrics-unknown", [*EVAL, "--metrics", "nope"], "nope", style=ARGPARSE),
    c("evaluate-store-is-a-png", [*EVAL[:-1], "{data}/image.png"], "image.png"),
    c("evaluate-store-is-a-text-file", [*EVAL[:-1], "{data}/notes.txt"], "notes.txt"),
    c("evaluate-store-jsonl-not-a-store", [*EVAL[:-1], "{data}/fake.jsonl"], "fake.jsonl"),
    c("evaluate-store-jsonl-is-a-folder", [*EVAL[:-1], "{data}/folder.jsonl"], "folder.jsonl"),
    c("evaluate-reference-missing", [*EVAL, "--reference", "{data}/missing.npz"], "missing.npz"),
    c("evaluate-reference-not-npz", [*EVAL, "--reference", "{data}/notes.txt"], "notes.txt",
      forbid=("allow_pickle", "pickle.load")),
    c("evaluate-reference-garbage-npz", [*EVAL, "--reference", "{data}/garbage.npz"], "garbage.npz",
      forbid=("allow_pickle", "pickle.load")),
    c("evaluate-reference-npz-without-statistics", [*EVAL, "--reference", "{data}/no_stats.npz"], "no_stats.npz"),
    c("evaluate-shards-zero", [*EVAL, "--shards", "0"], "shards", "0"),
    c("evaluate-shards-not-dividing-n", [*EVAL, "-n", "7", "--shards", "2"], "shards", "7"),
    c("evaluate-shard-out-of-range", [*EVAL, "--shards", "2", "--shard", "5", "--shard-dir", "{out}/shards"],
      "shard", "5"),
    c("evaluate-shard-negative", [*EVAL, "--shards", "2", "--shard", "-1", "--shard-dir", "{out}/shards"],
      "shard", "-1"),

    # ---- reference --------------------------------------------------------------------------------------------
    c("evaluate-shard-dir-is-a-file", [*EVAL, "--shards", "2", "--shard", "0", "--shard-dir", "{data}/notes.txt"],
      "--shard-dir", "is a file, not a folder", forbid=("Errno",)),
    # ---- plugins (issue 27) ----------------------------------------------------------------------------------
    c("plugin-file-missing", ["list", "--plugin", "{data}/no_such_plugin.py"], "no_such_plugin.py", "no such file"),
    c("plugin-import-fails", ["list", "--plugin", "{data}/broken_plugin.py"], "broken_plugin.py", "failed to load"),
    c("plugin-registers-an-existing-name", [*TRAIN, "--plugin", "{data}/dup_plugin.py"], "dup_plugin.py",
      "noise_fm"),
    c("plugin-module-unknown", [*TRAIN, "--plugin", "no_such_plugin_module"], "no_such_plugin_module"),
    c("sweep-spec-plugin-broken", ["sweep", "{data}/specs/bad_plugin.toml", "--executor", "local", "--dry-run"],
      "broken_plugin.py", "failed to load"),
    # ---- score: images from anywhere (issue 27) -------------------------------------------------------------
    c("score-images-missing", ["score", "{data}/scores/missing.npz", *SCORE[2:]], "missing.npz"),
    c("score-images-not-a-format", ["score", "{data}/notes.txt", *SCORE[2:]], "notes.txt", ".npz"),
    c("score-npz-garbage", ["score", "{data}/garbage.npz", *SCORE[2:]], "garbage.npz"),
    c("score-npz-without-arr-0", ["score", "{data}/no_stats.npz", *SCORE[2:]], "no_stats.npz", "arr_0"),
    c("score-npz-float-images", ["score", "{data}/scores/float.npz", *SCORE[2:]], "float.npz", "uint8"),
    c("score-wrong-size", ["score", "{data}/scores/big.npz", *SCORE[2:]], "big.npz", "(1, 16, 16)", "(1, 8, 8)"),
    c("score-wrong-channels", ["score", "{data}/scores/rgb.npz", *SCORE[2:]], "rgb.npz", "channels"),
    c("score-fewer-than-kid-subset", [*SCORE, "--kid-subset-size", "50"], "ok.npz", "KID", "50"),
    c("score-labels-count", ["score", "{data}/scores/short_labels.npz", *SCORE[2:]], "short_labels.npz",
      "19 labels for 20 images"),
    c("score-labels-out-of-range", ["score", "{data}/scores/bad_label.npz", *SCORE[2:]], "bad_label.npz",
      "label 10"),
    c("score-zip-unreadable-member", ["score", "{data}/scores/garbage_member.zip", *SCORE[2:]],
      "garbage_member.zip:1.png"),
    c("score-zip-bomb", ["score", "{data}/scores/bomb.zip", *SCORE[2:]], "bomb.zip", "zip bomb"),
    c("score-zip-dotdot-member", ["score", "{data}/scores/slip.zip", *SCORE[2:]], "slip.zip", "'..'"),
    c("score-png-16-bit", ["score", "{data}/scores/deep", *SCORE[2:]], "deep", "mode"),
    c("score-folder-empty", ["score", "{data}/existing_dir", *SCORE[2:]], "existing_dir", "no images"),
    c("score-task-unknown", [*SCORE[:2], "--task", "nope", *SCORE[4:]], "nope"),
    c("score-store-is-a-text-file", [*SCORE[:-1], "{data}/notes.txt"], "notes.txt"),
    c("score-shard-out-of-range", [*SCORE, "--shards", "4", "--shard", "7", "--shard-dir", "{out}/shards"],
      "shard 7", "0..3"),
    c("score-shards-do-not-divide", [*SCORE, "--shards", "3", "--shard-dir", "{out}/shards"], "20 images", "3 shards"),
    c("score-shard-dir-is-a-file", [*SCORE, "--shards", "2", "--shard", "0", "--shard-dir", "{data}/notes.txt"],
      "notes.txt"),
    c("reference-source-unknown", ["reference", "nope", "--out", "{out}/r.npz", "--extractor", "domain-digits"],
      "nope"),
    c("reference-split-unknown", ["reference", "digits", "--split", "nope", "--out", "{out}/r.npz",
                                  "--extractor", "domain-digits"], "nope"),
    c("reference-extractor-unknown", ["reference", "digits", "--out", "{out}/r.npz", "--extractor", "nope"], "nope"),
    c("reference-batch-size-zero", ["reference", "digits", "--out", "{out}/r.npz", "--extractor", "domain-digits",
                                    "--batch-size", "0"], UNDERSCORE("batch_size"), "0"),
    c("reference-out-existing-folder", ["reference", "digits", "--out", "{data}/existing_dir",
                                        "--extractor", "domain-digits"], "existing_dir"),
    c("reference-out-not-npz", ["reference", "digits", "--out", "{out}/r.txt", "--extractor", "domain-digits"],
      "r.txt"),
    c("reference-out-missing", ["reference", "digits"], "--out", style=ARGPARSE),

    # ---- prepare ---------------------------------------------------------------------------------------------
    c("prepare-source-missing", ["prepare", "{data}/no_such_folder", "{out}/d.zip", "--workers", "1"],
      "no_such_folder"),
    c("prepare-source-is-a-file", ["prepare", "{data}/notes.txt", "{out}/d.zip", "--workers", "1"], "notes.txt"),
    c("prepare-resolution-zero", ["prepare", "{data}/images", "{out}/d.zip", "--resolution", "0", "--workers", "1"],
      "resolution", "0"),
    c("prepare-resolution-negative", ["prepare", "{data}/images", "{out}/d.zip", "--resolution", "-8",
                                      "--workers", "1"], "resolution", "-8"),
    c("prepare-on-error-unknown", ["prepare", "{data}/images", "{out}/d.zip", "--on-error", "nope",
                                   "--workers", "1"], UNDERSCORE("on_error"), "nope"),
    c("prepare-dest-not-zip", ["prepare", "{data}/images", "{out}/d.tar", "--workers", "1"], "d.tar"),
    c("prepare-dest-existing-folder", ["prepare", "{data}/images", "{data}/exists.zip", "--workers", "1"],
      "exists.zip"),
    c("prepare-dest-under-a-file", ["prepare", "{data}/images", "{data}/notes.txt/d.zip", "--workers", "1"],
      "notes.txt is a file", forbid=("Errno",)),
    c("prepare-reference-stats-extractor-misfit", ["prepare", "{data}/images", "{out}/d.zip", "--workers", "1",
                                                   "--resolution", "8", "--reference-stats", "{out}/r.npz",
                                                   "--extractor", "domain-mnist"], "(1, 28, 28)", "(3, 8, 8)"),
    c("prepare-split-unknown", ["prepare", "{data}/images", "{out}/d.zip", "--split", "nope", "--workers", "1"],
      "nope"),
    c("prepare-workers-negative", ["prepare", "{data}/images", "{out}/d.zip", "--workers", "-2"], "workers", "-2"),
    c("prepare-workers-past-the-machine", ["prepare", "{data}/images", "{out}/d.zip", "--workers", "1000"],
      "--workers 1000", "at most"),
    c("prepare-resolution-past-the-memory", ["prepare", "{data}/images", "{out}/d.zip", "--resolution", "100000",
                                             "--workers", "1"], "--resolution 100000", "at most"),
    c("prepare-reference-stats-not-npz", ["prepare", "{data}/images", "{out}/d.zip", "--workers", "1",
                                          "--reference-stats", "{out}/stats.txt"], "stats.txt"),
    c("prepare-reference-stats-extractor-unknown", ["prepare", "{data}/images", "{out}/d.zip", "--workers", "1",
                                                    "--reference-stats", "{out}/stats.npz", "--extractor", "nope"],
      "nope"),

    # ---- train-extractor --------------------------------------------------------------------------------------
    c("train-extractor-task-unknown", ["train-extractor", "nope", "--out", "{out}/x.pt"], "nope"),
    c("train-extractor-task-without-extractor", ["train-extractor", "toy", "--out", "{out}/x.pt"], "toy"),

    # ---- table ----------------------------------------------------------------------------------------------
    c("table-store-missing", ["table", "--store", "{data}/missing.jsonl"], "missing.jsonl"),
    c("table-store-corrupt", ["table", "--store", "{data}/corrupt.jsonl"], "corrupt.jsonl"),
    c("table-store-is-a-png", ["table", "--store", "{data}/image.png"], "image.png"),
    c("table-out-existing-folder", ["table", "--store", "{data}/good.jsonl", "--out", "{data}/existing_dir"],
      "existing_dir"),
    c("table-format-unknown", ["table", "--store", "{data}/good.jsonl", "--format", "nope"], "nope",
      style=ARGPARSE),
    c("table-metric-unknown", ["table", "--store", "{data}/good.jsonl", "--metric", "nope"], "nope"),
    c("table-spec-missing", ["table", "{data}/specs/missing.toml"], "missing.toml"),
    c("table-best-seeds-overlap", ["table", "--store", "{data}/good.jsonl", "--best", "cfg_scale",
                                   "--select-seeds", "0,1", "--report-seeds", "1"], "overlap"),
    c("table-best-axis-unknown", ["table", "--store", "{data}/good.jsonl", "--best", "colour"], "colour"),
    c("table-best-seeds-garbage", ["table", "--store", "{data}/good.jsonl", "--best", "cfg_scale",
                                   "--select-seeds", "a-b"], "--select-seeds", "a-b"),

    # ---- plot -----------------------------------------------------------------------------------------------
    c("plot-store-missing", ["plot", "--store", "{data}/missing.jsonl", "--out-dir", "{out}/plots"],
      "missing.jsonl"),
    c("plot-store-corrupt", ["plot", "--store", "{data}/corrupt.jsonl", "--out-dir", "{out}/plots"],
      "corrupt.jsonl"),
    c("plot-kind-unknown", ["plot", "--store", "{data}/good.jsonl", "--out-dir", "{out}/plots", "--kind", "nope"],
      "nope", style=ARGPARSE),
    c("plot-store-rows-without-protocol-fields", ["plot", "--store", "{data}/minimal.jsonl", "--out-dir",
                                                  "{out}/plots"], ("nfe", "minimal.jsonl")),
    c("plot-out-dir-is-a-file", ["plot", "--store", "{data}/good.jsonl", "--out-dir", "{data}/notes.txt"],
      "notes.txt"),

    # ---- sweep ----------------------------------------------------------------------------------------------
    c("plot-out-dir-under-a-file", ["plot", "--store", "{data}/good.jsonl", "--out-dir", "{data}/notes.txt/p"],
      "notes.txt is a file", forbid=("Errno",)),
    c("sweep-spec-missing", ["sweep", "{data}/specs/missing.toml", "--executor", "debug"], "missing.toml"),
    c("sweep-timeout-negative", ["sweep", "--executor", "local", "--timeout", "-5"], "--timeout", "-5",
      style=ARGPARSE),
    c("sweep-timeout-nan", ["sweep", "--executor", "local", "--timeout", "nan"], "--timeout", "nan", style=ARGPARSE),
    c("sweep-spec-syntax-error", ["sweep", "{data}/specs/syntax.toml", "--executor", "debug"], "syntax.toml"),
    c("sweep-spec-unknown-key", ["sweep", "{data}/specs/unknown_key.toml", "--executor", "debug", "--dry-run"],
      "frobnicate"),
    c("sweep-spec-grid-not-a-list", ["sweep", "{data}/specs/grid_scalar.toml", "--executor", "debug", "--dry-run"],
      "path", "list"),
    c("sweep-eval-extractor-unknown-dry-run", ["sweep", "{data}/specs/bad_extractor.toml", "--executor", "debug",
                                              "--dry-run"], "nope"),
    c("sweep-slurm-without-sbatch", ["sweep", "{data}/specs/tiny.toml", "--executor", "slurm"], "slurm", "sbatch",
      forbid=("submitting",), hide_slurm=True),
    c("sweep-set-lr-inf-dry-run", ["sweep", "{data}/specs/tiny.toml", "--executor", "debug", "--dry-run",
                                   "--set", "lr=inf"], "lr", "inf"),
    c("sweep-set-lr-inf", ["sweep", "{data}/specs/tiny.toml", "--executor", "debug", "--set", "lr=inf"], "lr", "inf"),
    c("sweep-set-no-equals", ["sweep", "{data}/specs/tiny.toml", "--executor", "debug", "--dry-run", "--set", "foo"],
      "--set", "foo"),
    c("sweep-set-backbone-unknown", ["sweep", "{data}/specs/tiny.toml", "--executor", "debug", "--dry-run",
                                     "--set", "backbone=nope"], "nope"),
    c("sweep-eval-unknown-key", ["sweep", "{data}/specs/tiny.toml", "--executor", "debug", "--dry-run",
                                 "--eval", "nope=1"], "nope"),
    c("sweep-eval-n-one", ["sweep", "{data}/specs/tiny.toml", "--executor", "debug", "--dry-run", "--eval", "n=1"],
      N_OPT, "1"),
    c("sweep-eval-ema-not-kept", ["sweep", "{data}/specs/tiny.toml", "--executor", "debug", "--dry-run",
                                  "--eval", "ema=0.5"], "ema", "0.5"),
    c("sweep-slurm-param-unknown", ["sweep", "{data}/specs/tiny.toml", "--executor", "debug", "--dry-run",
                                    "--slurm", "nope=1"], "nope"),
    c("sweep-executor-unknown", ["sweep", "{data}/specs/tiny.toml", "--executor", "nope"], "nope", style=ARGPARSE),
    c("sweep-parallel-zero", ["sweep", "{data}/specs/tiny.toml", "--executor", "local", "--parallel", "0"],
      "--parallel", "0", style=ARGPARSE),

    # ---- status ---------------------------------------------------------------------------------------------
    c("status-spec-missing", ["status", "{data}/specs/missing.toml"], "missing.toml"),
    c("status-spec-syntax-error", ["status", "{data}/specs/syntax.toml"], "syntax.toml"),
    c("status-set-lr-nan", ["status", "{data}/specs/tiny.toml", "--set", "lr=nan"], "lr", "nan"),

    # ---- reproduce -------------------------------------------------------------------------------------------
    c("reproduce-what-unknown", ["reproduce", "nope"], "nope", style=ARGPARSE),
    c("reproduce-ablation-set-lr-nan", ["reproduce", "ablation", "--quick", "--out", "{out}/ablation",
                                        "--set", "lr=nan"], "lr", "nan"),
    c("reproduce-spectral-set-lr-nan", ["reproduce", "spectral", "--quick", "--out", "{out}/spectral",
                                        "--set", "lr=nan"], "lr", "nan"),
    c("reproduce-ablation-spec-missing", ["reproduce", "ablation", "--quick", "--out", "{out}/ablation",
                                          "--spec", "{data}/specs/missing.toml"], "missing.toml"),
    c("reproduce-ablation-executor-unknown", ["reproduce", "ablation", "--executor", "nope"], "nope",
      style=ARGPARSE),
    c("reproduce-ablation-best-overlap", ["reproduce", "ablation", "--quick", "--out", "{out}/ablation", "--best",
                                          "cfg_scale", "--select-seeds", "1", "--report-seeds", "1"], "overlap"),
    c("reproduce-ablation-best-axis-unknown", ["reproduce", "ablation", "--quick", "--out", "{out}/ablation",
                                               "--best", "colour"], "colour"),
    c("reproduce-toy-dist-unknown", ["reproduce", "toy", "--quick", "--out", "{out}/toy", "--dist", "nope"], "nope"),
    # options of another reproduction: refused by the sub-command's parser
    c("reproduce-toy-out-is-a-file", ["reproduce", "toy", "--quick", "--out", "{data}/notes.txt"], "--out",
      "is a file, not a folder", forbid=("Errno",)),
    c("reproduce-headtohead-best", ["reproduce", "headtohead", "--best", "colour"], "--best", "colour",
      style=ARGPARSE),
    c("reproduce-stability-dist", ["reproduce", "stability", "--dist", "nope"], "--dist", "nope", style=ARGPARSE),
    c("reproduce-headtohead-eval", ["reproduce", "headtohead", "--eval", "nope=1"], "--eval", "nope=1",
      style=ARGPARSE),
    c("reproduce-toy-best", ["reproduce", "toy", "--best", "cfg_scale"], "--best", style=ARGPARSE),
    c("reproduce-default-executor", ["reproduce", "--executor", "local"], "--executor", style=ARGPARSE),
    # --best checked up front (the default output folder stays untouched), with table's message
    c("reproduce-ablation-best-seeds-overlap", ["reproduce", "ablation", "--best", "cfg_scale", "--select-seeds", "0",
                                                "--report-seeds", "0"], "selection and report seeds overlap (0)"),
    c("reproduce-ablation-best-seeds-garbage", ["reproduce", "ablation", "--best", "cfg_scale", "--report-seeds",
                                                "a-b"], "--report-seeds", "a-b"),

    # ---- run (the default suite) -----------------------------------------------------------------------------
    c("run-method-unknown", ["run", "--quick", "--method", "nope", "--results", "{out}/suite",
                             "--out-dir", "{out}/runs"], "nope"),
    c("run-backend-unknown", ["run", "--quick", "--backend", "nope"], "nope", style=ARGPARSE),
]


# ---- the module's files ----------------------------------------------------------------------------------------

class CaseTimeout(BaseException):
    """A case ran past CASE_TIMEOUT_S (it was not refused and started real work)."""


def _listing(roots: dict[str, Path]) -> dict[str, tuple]:
    """(relative path → size, mtime_ns) of every file, (relative path → 'dir') of every folder."""
    out: dict[str, tuple] = {}
    for name, root in roots.items():
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            rel = Path(dirpath).relative_to(root)
            for d in dirnames:
                out[f"{name}/{rel / d}"] = ("dir",)
            for f in filenames:
                p = Path(dirpath) / f
                try:
                    st = p.lstat()
                except FileNotFoundError:
                    continue
                out[f"{name}/{rel / f}"] = (st.st_size, st.st_mtime_ns)
    return out


def _diff(before: dict, after: dict) -> list[str]:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return [f"+ {k}" for k in added] + [f"- {k}" for k in removed] + [f"~ {k}" for k in changed]


def _spec_text(out: Path, extra_eval: str = "", extra_top: str = "") -> str:
    return f"""{extra_top}name = "tiny"
folder = "{out}/sweeps/tiny"
store = "{out}/sweeps/tiny/results.jsonl"
out_dir = "{out}/sweeps/runs"

[base]
task = "digits"
backbone = "vit"
backbone_params = {{ patch = 2, width = 32, depth = 1 }}
steps = 3
batch_size = 16
checkpoint_every = 3
ema_decays = [0.99]

[grid]
path = ["noise_fm"]

[eval]
steps = [2]
ema = [0.99]
n = 10
{extra_eval}
[slurm]
time = 5
cpus_per_task = 1
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The module's folders, its tiny trained run and the bad files the cases point at."""
    root = tmp_path_factory.mktemp("bad-inputs")
    data, out, work = root / "data", root / "out", root / "work"
    for d in (data, out, work):
        d.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        runs = data / "runs"
        base = ["train", "--task", "digits", "--path", "noise_fm", "--steps", "3", "--batch-size", "16", *TINY,
                "--out-dir", str(runs), "--no-progress"]
        assert cli.main(base) == 0
        (run,) = list(runs.iterdir())
        assert cli.main([*base, "--seed", "1"]) == 0
        (other,) = [p for p in runs.iterdir() if p != run]
    # a second run's folder holding the first run's checkpoint
    shutil.copy2(run / "checkpoint.pt", other / "checkpoint.pt")
    # run folders with no / a garbage / a truncated checkpoint
    for name in ("no_ckpt_run", "garbage_run", "truncated_run"):
        (data / name).mkdir()
        shutil.copy2(run / "run.json", data / name / "run.json")
    (data / "garbage_run" / "checkpoint.pt").write_bytes(random.Random(0).randbytes(4096))
    blob = (run / "checkpoint.pt").read_bytes()
    (data / "truncated_run" / "checkpoint.pt").write_bytes(blob[: len(blob) // 2])
    # a checkpoint without its model entry, and one whose weights are NaN (the run's own folder and id)
    import torch

    state = torch.load(run / "checkpoint.pt", weights_only=True)
    for name, change in (("no_model_run", lambda st: st.pop("model")),
                         ("nan_run", lambda st: [v.fill_(float("nan")) for v in st["model"].values()
                                                 if v.is_floating_point()])):
        shutil.copytree(run, data / name)
        damaged = {**state, "model": {k: v.clone() for k, v in state["model"].items()}}
        change(damaged)
        torch.save(damaged, data / name / "checkpoint.pt")
    # plain files and folders
    (data / "existing_dir").mkdir()
    (data / "existing_dir" / "keep.txt").write_text("keep\n")
    (data / "exists.zip").mkdir()
    (data / "folder.jsonl").mkdir()
    (data / "notes.txt").write_text("just some notes\nsecond line\n")
    (data / "fake.jsonl").write_text("this is not a results store\n")
    (data / "corrupt.jsonl").write_text('{"v": 1, "rows": [{"run_id": "r1", "metr\nnot json at all\n')
    (data / "garbage.npz").write_bytes(random.Random(2).randbytes(512))
    import numpy as np

    np.savez(data / "no_stats.npz", other=np.zeros(3))
    (data / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(200))
    # plugins that cannot load
    (data / "broken_plugin.py").write_text("import no_such_module_anywhere\n")
    (data / "dup_plugin.py").write_text("import dataclasses\nfrom hdfm_bench import register_path\n"
                                        "from hdfm_bench.methods.paths.noise_fm import NoiseFM\n\n\n"
                                        "@register_path\n@dataclasses.dataclass(frozen=True)\n"
                                        "class Dup(NoiseFM):\n    name = 'noise_fm'\n")
    # image sets for score: one good, the rest each wrong in one way
    import io
    import zipfile

    from PIL import Image

    scores = data / "scores"
    scores.mkdir()
    grey = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 1), dtype=np.uint8)
    np.savez(scores / "ok.npz", grey, np.arange(20) % 10)
    np.savez(scores / "float.npz", grey.astype(np.float32))
    np.savez(scores / "big.npz", np.zeros((20, 16, 16, 1), np.uint8))
    np.savez(scores / "rgb.npz", np.zeros((20, 8, 8, 3), np.uint8))
    np.savez(scores / "short_labels.npz", grey, np.zeros(19, np.int64))
    np.savez(scores / "bad_label.npz", grey, np.full(20, 10))

    def png(arr) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        return buf.getvalue()

    for name, members, how in (("garbage_member.zip", {"0.png": png(grey[0, ..., 0]), "1.png": b"\x89PNG junk"},
                                zipfile.ZIP_STORED),
                               ("bomb.zip", {"0.png": bytes(20 << 20)}, zipfile.ZIP_LZMA),
                               ("slip.zip", {"0.png": png(grey[0, ..., 0]), "../1.png": png(grey[1, ..., 0])},
                                zipfile.ZIP_STORED)):
        with zipfile.ZipFile(scores / name, "w", compression=how) as zf:
            for member, blob in members.items():
                zf.writestr(member, blob)
    (scores / "deep").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(scores / "deep" / "0.png")
    # the digits reference of domain-digits computed now, so a case refused mid-pass finds it cached
    from hdfm_bench.evaluation.metrics.features import Extractor
    from hdfm_bench.evaluation.metrics.reference import Reference
    from hdfm_bench.tasks import get_task

    Reference.from_task(get_task("digits"), "train", Extractor("domain-digits"))
    # run config files
    (data / "syntax.toml").write_text("lr = = 1\n[base\n")
    (data / "nonutf8.toml").write_bytes(b"\xff\xfe\x00lr = 1")
    (data / "unknown_key.toml").write_text("frobnicate = 1\n")
    (data / "wrong_type.toml").write_text('warmup = "many"\n')
    # a results store as `evaluate` writes it, and one whose rows carry only the required keys
    from hdfm_bench.evaluation.store import ResultStore

    protocol = {"block": 16, "budget": {"batch_size": 16, "images_seen": 48, "parameters": 32388, "steps": 3},
                "cfg_interval": [0.1, 1.0], "cfg_scale": 1.0, "checkpoint_step": 3, "ema": None,
                "extractor": "domain-digits", "extractor_hash": "4ed80c37b9559a3e", "image_seeds": "0-9",
                "kid_subset_size": 10, "n_gen": 10, "n_ref": 1437, "nfe": 3, "reference_hash": "14f5b549e517bb32",
                "reference_split": "train", "resolution": [8, 8], "sampler": "heun", "sampler_params": {"steps": 2},
                "seed": 0, "shards": 1, "steps": 2, "task": "digits"}
    ResultStore(data / "good.jsonl").append([
        {"run_id": run.name, "checkpoint_step": 3, "method": "noise_fm", "path": "noise_fm", "target": "x",
         "task": "digits", "metric": metric, "value": value, "protocol": protocol}
        for metric, value in (("fid", 107.7), ("kid", 3.7), ("precision", 0.0), ("recall", 0.0),
                              ("class_accuracy", 0.1), ("r_hf", 2.3e-05), ("lsd", 10.1))])
    ResultStore(data / "minimal.jsonl").append([
        {"run_id": "r1", "checkpoint_step": 3, "metric": "fid", "value": 12.5, "method": "noise_fm",
         "protocol": {"task": "digits", "seed": 0}}])
    # an image folder (two classes) for prepare
    from PIL import Image

    for cls in ("a", "b"):
        (data / "images" / cls).mkdir(parents=True)
        for k in range(2):
            Image.new("RGB", (12, 12), (40 * k, 100, 200)).save(data / "images" / cls / f"{k}.png")
    # the same with an empty class folder beside
    shutil.copytree(data / "images", data / "emptyclass")
    (data / "emptyclass" / "c").mkdir()
    # sweep specs
    specs = data / "specs"
    specs.mkdir()
    (specs / "tiny.toml").write_text(_spec_text(out))
    (specs / "bad_extractor.toml").write_text(_spec_text(out, extra_eval='extractor = "nope"\n'))
    (specs / "unknown_key.toml").write_text(_spec_text(out, extra_top="frobnicate = 1\n"))
    (specs / "grid_scalar.toml").write_text(_spec_text(out).replace('path = ["noise_fm"]', 'path = "noise_fm"'))
    (specs / "syntax.toml").write_text("name = \n[base\n")
    (specs / "bad_plugin.toml").write_text(_spec_text(out, extra_top='plugins = ["../broken_plugin.py"]\n'))
    from hdfm_bench.tasks import default_data_root

    return {
        "root": root, "work": work,
        "roots": {"module": root, "task-data": default_data_root()},
        "fmt": {"data": str(data), "out": str(out), "run": str(run), "run_id": run.name, "other": str(other),
                "other_id": other.name},
    }


# ---- running one case --------------------------------------------------------------------------------------------

def _invoke(argv: list[str]) -> tuple[int, list[str], str | None]:
    """(exit code, warning lines, the last line of an uncaught exception's traceback or None)."""
    def on_alarm(signum, frame):
        raise CaseTimeout(f"still running after {CASE_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(CASE_TIMEOUT_S)
    crash = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:  # sys.exit("message"): Python prints it and exits 1
                print(exc.code, file=sys.stderr)
                code = 1
        except CaseTimeout as exc:
            code, crash = 124, f"CaseTimeout: {exc}"
        except Exception as exc:  # uncaught: a traceback and exit 1 in a real process
            lines = traceback.format_exception_only(type(exc), exc)
            code, crash = 1, lines[-1].strip()
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    ignored = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)
    shown = [f"{Path(w.filename).name}:{w.lineno}: {w.category.__name__}: {w.message}" for w in caught
             if not issubclass(w.category, ignored)]
    return code, shown, crash


def _style(lines: list[str]) -> str | None:
    if len(lines) == 1 and lines[0].startswith("hdfm-bench: error:"):
        return ONE
    if lines and lines[0].startswith("usage: hdfm-bench") and re.match(r"^hdfm-bench(?: [\w-]+)*: error: ",
                                                                        lines[-1]):
        return ARGPARSE
    return None


def _matches(item, line: str) -> bool:
    if isinstance(item, re.Pattern):
        return item.search(line) is not None
    if isinstance(item, tuple):
        return any(alt in line for alt in item)
    return item in line


def test_there_are_enough_cases():
    assert len(CASES) >= 70
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, world, capfd, monkeypatch, record_property, tmp_path):
    fmt = world["fmt"]
    argv = [a.format(**fmt) for a in case.argv]
    expect = [e.format(**fmt) if isinstance(e, str) else e for e in case.expect]
    monkeypatch.chdir(world["work"])
    if case.hide_slurm:  # no Slurm client on PATH (whatever this machine has)
        bare = tmp_path / "bin"
        bare.mkdir()
        monkeypatch.setenv("PATH", str(bare))
    before = _listing(world["roots"])
    capfd.readouterr()
    code, shown, crash = _invoke(argv)
    captured = capfd.readouterr()
    after = _listing(world["roots"])

    lines = [ln for ln in (captured.err.splitlines() + shown) if ln.strip()]
    style = _style(lines)
    record_property("style", style)
    first = crash or (lines[0] if lines else "<no stderr>")
    changed = _diff(before, after)
    report = (f"argv: {argv}\nexit {code}; style {style}; stderr first line: {first!r}\n"
              f"stderr ({len(lines)} lines): {lines[:6]!r}\nstdout: {captured.out[:400]!r}\n"
              f"disk changed: {changed[:10]}")

    problems = []
    if code != 2:
        problems.append(f"exit code {code}, expected 2")
    if style is None:
        problems.append("stderr is not one line `hdfm-bench: error: ...`")
    elif style == ARGPARSE and case.style == ONE:
        problems.append("argparse usage + error, expected the one-line error")
    message = lines[-1] if lines else ""
    record_property("error_line", crash or message)
    missing = [e.pattern if isinstance(e, re.Pattern) else e for e in expect if not _matches(e, message)]
    if missing:
        problems.append(f"the error line does not name {missing}")
    present = [f for f in case.forbid if f in captured.err or f in captured.out]
    if present:
        problems.append(f"output mentions {present}")
    claims = [w for w in CLAIMS if w in captured.out.lower()]
    if claims:
        problems.append(f"stdout claims work ({claims})")
    if changed:
        problems.append(f"disk changed ({len(changed)} entries)")
    assert not problems, "; ".join(problems) + "\n" + report
