"""Property-based tests (hypothesis) over every file of a run folder (issue 15, point 1).

Each test damages one file of a real run folder at random (random bytes, random JSON, random
rows and columns, random safetensors headers, tensors of random shape and dtype) and reads it
the way brainvae does. Reading either succeeds with something usable (a model that runs, a
checkpoint that resumes and takes a fused Adam step, a history table the loss plot draws) or
raises a DataFileError naming the damaged file; never another exception, never a crash.

Memory guard: a load that would need more than MEMORY_LIMIT is refused before it allocates.
Sizes claimed by headers are chosen to need far more (terabytes, or a real 128 GiB sparse
file); each call must use less than TIME_LIMIT s of CPU (process time, so that other work on
a shared machine does not count; reading or zeroing 100 GB takes minutes of it) and the
process's peak resident memory (ru_maxrss) must grow by less than MEMORY_LIMIT across it.
ru_maxrss is a high-water mark, so allocations below the peak the test process had already
reached are not seen: the bound says "no load allocates 200 MB or more".
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from brainvae.cli import main
from brainvae.errors import DataFileError
from brainvae.models import load_model
from brainvae.training.checkpoint import (
    latest_checkpoint,
)
from brainvae.training.history import BASE_COLUMNS, read_history
from helpers.blob_population import write_blob_dataset
from helpers.json_strategies import JSON_SCALARS
from helpers.run_checks import resume_and_step

# The files of a run folder and of its checkpoints, by the names on disk (the format).
CONFIG_FILE, WEIGHTS_FILE, RUN_FILE, HISTORY_FILE = (
    "config.json",
    "weights.safetensors",
    "run.json",
    "history.csv",
)
MODEL_FILE, OPTIMIZER_FILE, RNG_FILE, STATE_FILE = (
    "model.safetensors",
    "optimizer.safetensors",
    "rng.safetensors",
    "state.json",
)

FAST = ["--arch", "small", "--batch", "4", "--lr", "1e-3", "--device", "cpu", "--quiet"]
RUN_ARGS = ["--latent", "3", "--epochs", "1", *FAST]
TIME_LIMIT = 1.0
"""CPU seconds a refusal of a terabyte-sized claim may take (it reads a header, not data)."""
HANG_LIMIT = 10.0
"""Wall-clock seconds any one load may take, however busy the machine (no hang)."""
MEMORY_LIMIT = 200 * 2**20
"""Bytes the process's peak memory may grow by during one load of a damaged file."""
HUGE = 2**40
"""Elements claimed by a crafted header: 4 TiB as float32, far above any memory budget."""

# Hypothesis keeps caches (constants, unicode tables) in .hypothesis/ of the working folder
# even with database=None: keep them under .pytest_cache, beside pytest's own.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY",
    str(Path(__file__).resolve().parents[2] / ".pytest_cache" / "hypothesis"),
)
PROPERTIES = settings(
    max_examples=60,
    derandomize=True,  # the same examples on every run: a failure is reproducible
    deadline=None,  # time is asserted where it matters (the memory guard)
    database=None,  # no .hypothesis folder in the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)
"""Any JSON value: numbers past int64, NaN and infinities, text, small nested lists/objects."""


# -- the run folder ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return write_blob_dataset(tmp_path_factory.mktemp("properties"), subjects=4, seed=2)


@pytest.fixture(scope="module")
def base_run(dataset_dir, tmp_path_factory) -> Path:
    """A real run folder, one epoch of the small net trained by the CLI; loaded once, so
    torch's first-load imports are not counted in any example's time."""
    run = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", str(dataset_dir), *RUN_ARGS, "--out", str(run)]) == 0
    resume_and_step(run)
    return run


@contextlib.contextmanager
def run_copy(base_run: Path) -> Iterator[Path]:
    """A fresh copy of the run for one example (hypothesis runs many per test)."""
    with tempfile.TemporaryDirectory(prefix="run-") as folder:
        yield Path(shutil.copytree(base_run, Path(folder) / "run"))


def loads_or_names(call: Callable[[], Any], *names: str) -> DataFileError | None:
    """call() succeeds (None) or raises a DataFileError whose message names one of names;
    any other exception propagates and fails the test."""
    try:
        call()
    except DataFileError as error:
        assert any(name in str(error) for name in names), (names, str(error))
        return error
    return None


def guarded(call: Callable[[], Any]) -> tuple[Any, float, int]:
    """(call's result, CPU seconds it used, growth of the peak resident memory in bytes);
    asserts it returned within HANG_LIMIT wall-clock seconds."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, wall = time.process_time(), time.perf_counter()
    result = call()
    seconds = time.process_time() - start
    assert time.perf_counter() - wall < HANG_LIMIT
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024  # KiB
    return result, seconds, grown


# -- safetensors files, written byte by byte ----------------------------------------------------
def safetensors_bytes(header: Any, data: bytes, declared_length: int | None = None) -> bytes:
    """A safetensors file: 8-byte little-endian header length, JSON header, then the data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    length = len(text) if declared_length is None else declared_length
    return struct.pack("<Q", length) + text + data


def read_header(path: Path) -> tuple[dict[str, Any], bytes]:
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


SAFETENSORS_DTYPES = ["F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"]
HEADER_ENTRIES = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from([*SAFETENSORS_DTYPES, "F8_E4M3", "U64", "C64"])
        | st.text(max_size=5),
        "shape": st.lists(st.sampled_from([0, 1, 2, 3, 64, HUGE]) | st.integers(), max_size=4)
        | JSON_VALUES,
        "data_offsets": st.lists(
            st.integers(0, 4096) | st.sampled_from([2**63 - 1, 2**64, -1]) | JSON_SCALARS,
            min_size=2,
            max_size=2,
        )
        | JSON_VALUES,
    },
    optional={"extra": JSON_VALUES},
)
"""One tensor's header entry: dtypes real and not, shapes from empty to 2^40 and past int64,
offsets in and far out of the file."""

SAFETENSORS_FILES = [
    (WEIGHTS_FILE, lambda run: run / WEIGHTS_FILE),
    (MODEL_FILE, lambda run: latest_checkpoint(run) / MODEL_FILE),
    (OPTIMIZER_FILE, lambda run: latest_checkpoint(run) / OPTIMIZER_FILE),
    (RNG_FILE, lambda run: latest_checkpoint(run) / RNG_FILE),
]


@pytest.mark.parametrize(
    ("name", "where"), SAFETENSORS_FILES, ids=[n for n, _ in SAFETENSORS_FILES]
)
def test_random_safetensors_headers_resume_or_are_refused_naming_the_file(base_run, name, where):
    """A header of random entries (some of the real tensor names, some new; random dtypes,
    shapes, offsets), random bytes after it and sometimes a wrong declared length."""
    real_names = sorted(k for k in read_header(where(base_run))[0] if k != "__metadata__")

    @PROPERTIES
    @given(
        header=st.dictionaries(
            st.sampled_from(real_names) | st.text(max_size=8), HEADER_ENTRIES | JSON_VALUES
        ),
        data=st.binary(max_size=2048),
        declared=st.none() | st.integers(0, 2**64 - 1),
    )
    def attempt(header, data, declared):
        with run_copy(base_run) as run:
            where(run).write_bytes(safetensors_bytes(header, data, declared))
            _, seconds, grown = guarded(lambda: loads_or_names(lambda: resume_and_step(run), name))
        assert seconds < TIME_LIMIT and grown < MEMORY_LIMIT, (seconds, grown)

    attempt()


@pytest.mark.parametrize(
    ("name", "where"), SAFETENSORS_FILES, ids=[n for n, _ in SAFETENSORS_FILES]
)
def test_terabyte_tensor_claims_are_refused_before_allocating(base_run, name, where):
    """The real header with one tensor claiming 2^40 or more elements, offsets consistent with
    that claim (so only the file's length betrays it): refused fast, with no allocation."""
    header, data = read_header(where(base_run))
    real_names = sorted(k for k in header if k != "__metadata__")

    @PROPERTIES
    @given(
        target=st.sampled_from(real_names),
        shape=st.lists(st.integers(1, 2**24), min_size=1, max_size=3).filter(
            lambda s: math.prod(s) >= HUGE // 4
        )
        | st.sampled_from([[HUGE], [2**20, 2**20], [2**31, 2**31], [2**62]]),
        dtype=st.sampled_from(SAFETENSORS_DTYPES),
    )
    def attempt(target, shape, dtype):
        crafted = json.loads(json.dumps(header))
        begin = crafted[target]["data_offsets"][0]
        size = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2}
        crafted[target] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [begin, begin + math.prod(shape) * size.get(dtype, 1)],
        }
        with run_copy(base_run) as run:
            where(run).write_bytes(safetensors_bytes(crafted, data))
            error, seconds, grown = guarded(
                lambda: loads_or_names(lambda: resume_and_step(run), name)
            )
        assert error is not None, "a terabyte tensor was accepted"
        assert seconds < TIME_LIMIT and grown < MEMORY_LIMIT, (seconds, grown)

    attempt()


def sparse_claim(path: Path, name: str, elements: int) -> None:
    """Rewrite a safetensors file so that tensor `name` is a float32 run of `elements` values
    stored last, the file really that long (sparse: a hole costs no disk) and the header
    consistent with it; only the shape betrays it."""
    header, data = read_header(path)
    packed = b""
    others = sorted(
        (k for k in header if k not in ("__metadata__", name)),
        key=lambda k: header[k]["data_offsets"][0],
    )
    for other in others:
        begin, end = header[other]["data_offsets"]
        header[other]["data_offsets"] = [len(packed), len(packed) + end - begin]
        packed += data[begin:end]
    header[name] = {"dtype": "F32", "shape": [elements], "data_offsets": [len(packed), 0]}
    header[name]["data_offsets"][1] = len(packed) + 4 * elements
    text = json.dumps(header).encode()
    with open(path, "wb") as handle:
        handle.write(safetensors_bytes(text, packed))
        handle.truncate(8 + len(text) + len(packed) + 4 * elements)


SPARSE_CHECK = """
import json, resource, sys, time
from pathlib import Path
from brainvae.errors import DataFileError
sys.path.insert(0, sys.argv[1])  # tests/: the helpers package
from helpers.run_checks import resume_and_step
outcomes = []
for run in sys.argv[2:]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.process_time()
    try:
        resume_and_step(Path(run))
        message = None
    except DataFileError as error:
        message = str(error)
    seconds = time.process_time() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    outcomes.append({"message": message, "seconds": seconds, "grown": grown})
print(json.dumps(outcomes))
"""


def test_sparse_files_of_128_gib_tensors_are_refused_before_allocating(base_run, tmp_path):
    """Each safetensors file of the run with one tensor 128 GiB long, the file really 128 GiB
    (a sparse hole) and its header consistent: the resume is refused naming the file within
    TIME_LIMIT CPU seconds, the peak memory growing by less than MEMORY_LIMIT. Run in a subprocess: were
    a reader to copy the tensor, it would fail there, not in the test process."""
    elements = 32 * 2**30  # float32: 128 GiB
    runs = []
    for name, where in SAFETENSORS_FILES:
        run = Path(shutil.copytree(base_run, tmp_path / name))
        path = where(run)
        sparse_claim(
            path, sorted(k for k in read_header(path)[0] if k != "__metadata__")[0], elements
        )
        assert path.stat().st_size > 128 * 2**30 > 2**20 > path.stat().st_blocks * 512
        runs.append(run)
    warm = Path(shutil.copytree(base_run, tmp_path / "untouched"))  # imports, first load
    done = subprocess.run(
        [sys.executable, "-c", SPARSE_CHECK, str(Path(__file__).parents[1]), str(warm)]
        + [str(run) for run in runs],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    untouched, *outcomes = json.loads(done.stdout.splitlines()[-1])
    assert untouched["message"] is None, untouched
    for (name, _), outcome in zip(SAFETENSORS_FILES, outcomes, strict=True):
        assert outcome["message"] is not None and name in outcome["message"], outcome
        assert outcome["seconds"] < TIME_LIMIT and outcome["grown"] < MEMORY_LIMIT, outcome


@PROPERTIES
@given(
    patches=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=8))
    ),
    length_change=st.sampled_from([0, 0, 0, -1, -4, 1, 4096]),
)
def test_random_bytes_after_the_weights_header_load_finite_or_are_refused(
    base_run, patches, length_change
):
    """The real header, random bytes written over the tensor data, sometimes a file cut short
    or grown: loads with finite weights (random floats may be huge, never NaN or Inf) or is
    refused naming weights.safetensors."""
    header, data = read_header(base_run / WEIGHTS_FILE)
    data = bytearray(data)
    for where, patch in patches:
        start = int(where * len(data))
        data[start : start + len(patch)] = patch[: len(data) - start]
    data = bytes(data[: len(data) + length_change]) if length_change < 0 else bytes(data)
    data += bytes(max(length_change, 0))
    with run_copy(base_run) as run:
        (run / WEIGHTS_FILE).write_bytes(safetensors_bytes(header, data))
        model = None

        def load() -> None:
            nonlocal model
            model = load_model(run)

        loads_or_names(load, WEIGHTS_FILE)
    if model is not None:
        assert all(torch.isfinite(value).all() for value in model.state_dict().values())


# -- optimizer.safetensors and rng.safetensors: tensors of random shape and dtype --------------
TORCH_DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.uint8,
    torch.int8,
    torch.bool,
]
FILL_VALUES = [0.0, 0.5, 1.0, 3.0, 255.0, -1.0, math.nan, math.inf]


@st.composite
def odd_tensors(draw: st.DrawFn, like: torch.Tensor) -> torch.Tensor:
    """A tensor of like's shape or another (reshaped, cut, grown, empty, scalar), of like's
    dtype or another, filled with like's values or one value (NaN and Inf among them)."""
    shape = draw(
        st.sampled_from(
            [
                tuple(like.shape),
                (like.numel(),),
                (1, like.numel()),
                (),
                (0,),
                (3,),
                (like.numel() + 1,),
            ]
        )
        | st.lists(st.integers(0, 6), max_size=3).map(tuple)
    )
    dtype = draw(st.sampled_from([like.dtype, *TORCH_DTYPES]))
    fill = draw(st.none() | st.sampled_from(FILL_VALUES))
    if fill is None and math.prod(shape) == like.numel():
        tensor = like.reshape(shape).clone()
    else:
        tensor = torch.full(shape, 0.0 if fill is None else fill)
    if not dtype.is_floating_point:
        tensor = torch.nan_to_num(tensor, nan=0.0, posinf=255.0, neginf=-1.0)
    return tensor.to(dtype)


TENSOR_PROPERTIES = settings(PROPERTIES, max_examples=30)
"""Each example writes a safetensors file and resumes (~0.3 s): fewer of them."""


@pytest.mark.parametrize("file", [OPTIMIZER_FILE, RNG_FILE])
def test_tensors_of_random_shape_and_dtype_resume_and_step_or_are_refused(base_run, file):
    """1-3 entries replaced by tensors of another shape, dtype or value, removed, or joined by
    a new entry: the resume then takes a fused Adam step with finite parameters, or a
    DataFileError names the file (or state.json, whose counts the data order must fit)."""
    originals = load_file(str(latest_checkpoint(base_run) / file))
    names = sorted(originals)
    extra = ["epoch_order", "cuda_0", "cuda_x", "t99:optimizer.state.0.exp_avg", "step", ""]

    @TENSOR_PROPERTIES
    @given(choice=st.data())
    def attempt(choice):
        tensors = dict(originals)
        for name in choice.draw(st.lists(st.sampled_from(names + extra), min_size=1, max_size=3)):
            like = tensors.get(name, originals[names[0]])
            if name in tensors and choice.draw(st.booleans(), label=f"remove {name}"):
                del tensors[name]
            else:
                tensors[name] = choice.draw(odd_tensors(like), label=name)
        with run_copy(base_run) as run:
            save_file(tensors, str(latest_checkpoint(run) / file))
            loads_or_names(lambda: resume_and_step(run), file, STATE_FILE)

    attempt()


# -- state.json and config.json: any bytes, any JSON --------------------------------------------
JSON_FILES = [
    (STATE_FILE, lambda run: latest_checkpoint(run) / STATE_FILE, (STATE_FILE,)),
    (CONFIG_FILE, lambda run: run / CONFIG_FILE, (CONFIG_FILE, WEIGHTS_FILE)),
]
"""(file, where it is, the files a refusal may name): a config that no longer fits the
weights beside it is refused by the weights check, naming weights.safetensors."""


@pytest.mark.parametrize(("name", "where", "named"), JSON_FILES, ids=[n for n, *_ in JSON_FILES])
def test_json_files_of_random_content_resume_or_are_refused(base_run, name, where, named):
    """The file replaced by random bytes, by any JSON document, or its object with keys
    removed, added or set to any JSON value (nested included)."""
    original = json.loads(where(base_run).read_text())
    keys = sorted(original)
    documents = st.one_of(
        st.binary(max_size=512),
        JSON_VALUES.map(lambda value: json.dumps(value).encode()),
        st.tuples(
            st.lists(st.sampled_from(keys), max_size=3, unique=True),
            st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), JSON_VALUES, max_size=3),
        ).map(
            lambda change: json.dumps(
                {k: v for k, v in original.items() if k not in change[0]} | change[1]
            ).encode()
        ),
    )

    @PROPERTIES
    @given(content=documents)
    def attempt(content):
        with run_copy(base_run) as run:
            where(run).write_bytes(content)
            _, seconds, grown = guarded(
                lambda: loads_or_names(lambda: resume_and_step(run), *named)
            )
        assert seconds < 2.0 and grown < MEMORY_LIMIT, (seconds, grown)

    attempt()


# -- run.json: read when a run is resumed ---------------------------------------------------------
def _dotted(data: Any, prefix: str = "") -> list[str]:
    """Dotted names of every field of run.json, nested objects' included."""
    names = []
    for key, value in data.items():
        names.append(prefix + key)
        if isinstance(value, dict):
            names += _dotted(value, f"{prefix}{key}.")
    return names


def _set(data: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for name in parents:
        data = data.get(name) if isinstance(data, dict) else None
    if isinstance(data, dict):
        data[last] = value


RUN_JSON_PROPERTIES = settings(PROPERTIES, report_multiple_bugs=False)


def test_random_run_json_resumes_or_is_refused_naming_it(base_run, dataset_dir):
    """`brainvae train --resume` on a run whose run.json has 1-3 fields (top-level ones more
    often) set to any JSON value, or is random bytes or another JSON document: it resumes
    (exit 0) or refuses with one line (exit 2) naming run.json or the run folder; no
    traceback escapes the command line."""
    original = json.loads((base_run / RUN_FILE).read_text())
    names = _dotted(original)

    @RUN_JSON_PROPERTIES
    @given(
        changes=st.lists(
            st.tuples(st.sampled_from(sorted(original)) | st.sampled_from(names), JSON_VALUES),
            min_size=1,
            max_size=3,
        ),
        replacement=st.none()
        | st.binary(max_size=512)
        | JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    )
    @example(changes=[("model_config", None)], replacement=None)  # the minimal failure found
    def attempt(changes, replacement):
        data = json.loads(json.dumps(original))
        for name, value in changes:
            _set(data, name, value)
        content = json.dumps(data).encode() if replacement is None else replacement
        with run_copy(base_run) as run:
            (run / RUN_FILE).write_bytes(content)
            said = io.StringIO()
            with contextlib.redirect_stderr(said), contextlib.redirect_stdout(io.StringIO()):
                code = main(["train", str(dataset_dir), *RUN_ARGS, "--out", str(run), "--resume"])
        assert code in (0, 2), code
        assert code == 0 or str(run) in said.getvalue(), said.getvalue()

    attempt()


@pytest.mark.parametrize(
    ("field", "odd"),
    [("model_config", None), ("model_config", []), ("dataset", None), ("processes", None)],
)
def test_run_json_field_of_the_wrong_type_is_refused(base_run, dataset_dir, field, odd):
    """The minimal examples hypothesis found above, kept as plain regression tests."""
    with run_copy(base_run) as run:
        record = json.loads((run / RUN_FILE).read_text())
        record[field] = odd
        (run / RUN_FILE).write_text(json.dumps(record))
        said = io.StringIO()
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(io.StringIO()):
            code = main(["train", str(dataset_dir), *RUN_ARGS, "--out", str(run), "--resume"])
    assert code == 2 and RUN_FILE in said.getvalue(), said.getvalue()


# -- history.csv: read by Load run in the Training dock, by encode and by resume -------------------
@pytest.fixture(scope="module")
def loss_plot(qapp):
    """The Training dock's loss plot, which Load run fills from read_history's table."""
    from brainvae.napari.widgets.loss_plot import LossPlot

    return LossPlot()


def load_run(path: Path, plot: Any) -> None:
    """What the Training dock's Load run does with a history.csv (training_widget.load_run):
    read_history, then the loss plot's load_history; the table must be usable by both."""
    table = read_history(path)
    assert "epoch" in table.columns
    for column in table.columns:
        if column in BASE_COLUMNS or str(column).startswith("kl_"):
            assert table[column].dtype.kind in "iuf", (column, table[column].dtype)
    plot.load_history(table)


CELLS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "nan", "inf", "-inf", "NA", "1e400", "1e-320", "0x10", " 3 ", "1,5"]),
    st.text(max_size=8),
)
COLUMNS = st.sampled_from([*BASE_COLUMNS, "kl_1", "kl_2", "kl_0", "kl_x"]) | st.text(max_size=8)


@PROPERTIES
@given(content=st.binary(max_size=1024) | st.text(max_size=400).map(str.encode))
def test_history_of_random_bytes_loads_or_is_refused(loss_plot, content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / HISTORY_FILE
        path.write_bytes(content)
        loads_or_names(lambda: load_run(path, loss_plot), HISTORY_FILE)


@settings(PROPERTIES, report_multiple_bugs=False)
@given(
    columns=st.lists(COLUMNS, min_size=1, max_size=8),
    rows=st.lists(st.lists(CELLS, max_size=9), max_size=6),
)
@example(columns=["epoch", "step"], rows=[["1e-320", "1"]])  # once an OverflowError in the plot
def test_history_of_random_rows_and_columns_loads_or_is_refused(loss_plot, columns, rows):
    """Any header (the real column names and others, epoch often among them) over rows of any
    length holding integers past int64, any float, numbers as text and any text."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / HISTORY_FILE
        with open(path, "w", newline="", encoding="utf-8", errors="surrogatepass") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(rows)
        loads_or_names(lambda: load_run(path, loss_plot), HISTORY_FILE)
