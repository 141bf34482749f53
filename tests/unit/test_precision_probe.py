"""precision "auto" on a CPU: a measured, cached fp32/bf16 probe instead of a CPU flag
(issue 12.6.5). The cache lives in a temporary folder via BRAINVAE_CACHE_DIR."""

from __future__ import annotations

import json

import pytest
import torch

from brainvae.training.device import (
    PRECISION_CACHE_FILE,
    PRECISION_CACHE_FORMAT,
    autocast_dtype,
    cpu_precision,
    is_steady,
    machine_key,
    prefers_bf16,
    read_precision_cache,
)
from brainvae.user_cache import CACHE_DIR_ENV, cache_dir

ANY_SPREAD = float("inf")  # tests on a busy shared machine must not depend on its load

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    """Every test's cache folder is its own temporary folder, never the user's home."""
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def write_cache(folder, decisions) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    content = {"format": PRECISION_CACHE_FORMAT, "decisions": decisions}
    (folder / PRECISION_CACHE_FILE).write_text(json.dumps(content))


def test_bf16_only_when_clearly_faster():
    assert prefers_bf16(1.0, 0.5)
    assert prefers_bf16(1.0, 1 / 1.10)  # exactly 10 % faster
    assert not prefers_bf16(1.0, 0.95)  # 5 %: within a short probe's noise
    assert not prefers_bf16(1.0, 1.4)  # the AVX512-BF16-without-AMX case: 1.4x slower
    assert not prefers_bf16(0.0, 0.5) and not prefers_bf16(1.0, float("nan"))


def test_only_steady_timings_are_trusted():
    assert is_steady([0.010, 0.011, 0.012])
    assert not is_steady([0.010, 0.011, 0.5])  # other work hit one step: 50x
    assert not is_steady([]) and not is_steady([0.0, 0.1, 0.1])
    assert not is_steady([0.5, 0.5])  # too few steps to show a spread


def test_a_disturbed_probe_decides_this_run_but_is_not_cached(cache_in_tmp):
    choice = cpu_precision(2, budget_s=0.1, max_spread=1.0)  # no real probe is that steady
    assert not choice.steady and not choice.cached
    assert choice.precision == "fp32"  # an unclear measurement never picks bf16
    assert machine_key(2) not in read_precision_cache(cache_in_tmp / PRECISION_CACHE_FILE)


def test_cache_folder_follows_the_environment(tmp_path, monkeypatch, cache_in_tmp):
    assert cache_dir() == cache_in_tmp
    monkeypatch.delenv(CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "brainvae"


@pytest.mark.parametrize("dims", [2, 3])
def test_probe_decides_writes_the_cache_and_is_read_back(dims, cache_in_tmp):
    rng_before = torch.get_rng_state()
    first = cpu_precision(dims, budget_s=0.3, max_spread=ANY_SPREAD)
    assert torch.equal(torch.get_rng_state(), rng_before)  # a probe never moves training's RNG
    assert not first.cached and first.precision in ("bf16", "fp32")
    assert first.fp32_s > 0 and first.bf16_s > 0
    assert first.precision == ("bf16" if prefers_bf16(first.fp32_s, first.bf16_s) else "fp32")
    stored = read_precision_cache(cache_in_tmp / PRECISION_CACHE_FILE)
    assert stored[machine_key(dims)]["precision"] == first.precision
    second = cpu_precision(dims)
    assert second.cached and second.precision == first.precision
    assert (second.fp32_s, second.bf16_s) == (first.fp32_s, first.bf16_s)
    assert [p.name for p in cache_in_tmp.iterdir()] == [PRECISION_CACHE_FILE]  # no temporaries


def test_a_cached_decision_is_honoured_without_probing(cache_in_tmp):
    # timings the probe could never turn into these picks: only the cache can explain them
    write_cache(
        cache_in_tmp,
        {
            machine_key(2): {"precision": "bf16", "fp32_s": 1.0, "bf16_s": 50.0},
            machine_key(3): {"precision": "fp32", "fp32_s": 50.0, "bf16_s": 1.0},
        },
    )
    assert autocast_dtype("auto", CPU, dims=2) is torch.bfloat16
    assert autocast_dtype("auto", CPU, dims=3) is None
    assert cpu_precision(2).cached and cpu_precision(2).bf16_s == 50.0
    assert autocast_dtype("fp32", CPU, dims=2) is None  # an explicit precision wins
    assert autocast_dtype("bf16", CPU, dims=3) is torch.bfloat16


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"format": "something else", "decisions": {}}),
        "CORRUPT-ENTRY",
    ],
)
def test_a_corrupt_cache_is_ignored_and_rewritten(content, cache_in_tmp):
    cache_in_tmp.mkdir(parents=True)
    path = cache_in_tmp / PRECISION_CACHE_FILE
    if content == "CORRUPT-ENTRY":
        write_cache(cache_in_tmp, {machine_key(2): {"precision": "fp16", "fp32_s": -1}})
    else:
        path.write_text(content)
    choice = cpu_precision(2, budget_s=0.2, max_spread=ANY_SPREAD)
    assert not choice.cached
    data = json.loads(path.read_text())
    assert data["format"] == PRECISION_CACHE_FORMAT
    assert data["decisions"][machine_key(2)]["precision"] == choice.precision
    assert cpu_precision(2).cached


def test_other_machines_entries_are_kept(cache_in_tmp):
    other = {"precision": "bf16", "fp32_s": 2.0, "bf16_s": 1.0}
    write_cache(cache_in_tmp, {"Some Other CPU | torch 0 | 2D": other})
    cpu_precision(2, budget_s=0.2, max_spread=ANY_SPREAD)
    stored = read_precision_cache(cache_in_tmp / PRECISION_CACHE_FILE)
    assert stored["Some Other CPU | torch 0 | 2D"] == other and machine_key(2) in stored


def test_key_names_cpu_torch_and_dims():
    key = machine_key(3)
    assert torch.__version__ in key and key.endswith("3D") and machine_key(2) != key
