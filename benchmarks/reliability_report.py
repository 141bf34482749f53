"""Attack brainvae from outside and count what happens: one table for the README (issue 15).

Every attempt runs in a child process (the `brainvae` command, or a small reader script) with a
time limit, and its end is sorted into one outcome:

- valid:    it read or ran (exit 0)
- clean:    refused with one `brainvae CMD: error: ...` line naming the file, exit code 2
- vague:    refused with exit 2 and no traceback, but the line does not name the file
- crash:    the child died by a signal (segmentation fault, bus error, out of memory...)
- uncaught: a Python traceback (or any other exit code)
- hang:     still running at the time limit (killed)

and checked for: code executed (a marker file a pickle payload would create), hidden leftovers
(``.tmp``, ``.partial-``, ``.old-`` entries, any hidden name) where the user looks, a
half-written output, and for killed training runs, final weights bit-identical to an
uninterrupted run (safetensors, ``torch.equal``).

Families: nifti (benchmarks/fuzz_nifti.py's mutants through the library, the napari reader and
prepare), pickles, crafted (seeded mutations of every file of a trained run folder), kills
(train, prepare, receptive, projective), disk (RLIMIT_FSIZE as a full disk), tables (damaged
metadata CSVs and prepared datasets).

    python benchmarks/reliability_report.py --quick            # a few minutes
    python benchmarks/reliability_report.py                    # the full run (~25 min, 2 cores)
    python benchmarks/reliability_report.py --families pickles,disk --json out.json --keep DIR

Exit code 1 when any attempt is a bug (crash, uncaught, hang, vague, code executed, leftover,
half-written, a kill not resumed identically); reproducers (the command and the files) are
copied under --keep (default: a temporary folder, kept and printed when there are bugs).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import pickle
import random
import resource
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))
from helpers.processes import group_members  # noqa: E402 - after the path to tests/

FAMILIES = ("nifti", "pickles", "crafted", "kills", "disk", "tables")
BUGS = ("crash", "uncaught", "hang", "vague")
FAST = ["--arch", "small", "--batch", "4", "--lr", "1e-3", "--device", "cpu", "--quiet"]
MEMORY_LIMIT = 8 * 2**30  # address space of every child: a runaway allocation fails, not the host
# A full disk: writes past the limit fail with EFBIG (as with ENOSPC); SIGXFSZ is ignored.
LIMITED = (
    "import resource, runpy, signal, sys\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    "limit = int(sys.argv.pop(1))\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
    "sys.argv[0] = 'brainvae'\n"
    "runpy.run_module('brainvae', run_name='__main__')\n"
)
# One NIfTI read through fuzz_nifti's reader, printed as JSON (library, napari or prepare).
READ_ONE = (
    "import json, sys, warnings; from pathlib import Path\n"
    "warnings.simplefilter('ignore')\n"
    f"sys.path.insert(0, {str(HERE)!r})\n"
    "from fuzz_nifti import read_outcome\n"
    "outcome, detail = read_outcome(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))\n"
    "print(json.dumps({'outcome': outcome, 'detail': detail[:300]}))\n"
)


@dataclass
class Attempt:
    """One attack and what came of it."""

    family: str
    row: str
    what: str
    command: str = ""
    outcome: str = "valid"
    detail: str = ""
    code_executed: bool = False
    leftovers: list[str] = field(default_factory=list)
    half_written: bool = False
    identical: bool | None = None
    seconds: float = 0.0
    reproducer: str = ""

    @property
    def bug(self) -> bool:
        return (
            self.outcome in BUGS
            or self.code_executed
            or bool(self.leftovers)
            or self.half_written
            or self.identical is False
        )


@dataclass
class Child:
    """What a child process left: exit code (negative: the signal), output, time."""

    code: int
    out: str
    err: str
    timed_out: bool
    seconds: float


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_child(argv: list[str], timeout: float, cwd: Path | None = None) -> Child:
    """Run argv in a new session under the memory limit; kill its whole group at the timeout."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONWARNINGS": "ignore"}
    tick = time.perf_counter()
    child = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
        preexec_fn=_limits,
    )
    out, err, timed_out = _finish(child, timeout)
    return Child(child.returncode, out, err, timed_out, time.perf_counter() - tick)


def _finish(child: subprocess.Popen, timeout: float) -> tuple[str, str, bool]:
    """(stdout, stderr, timed out) of a child given `timeout` seconds; past it, its whole
    process group is killed."""
    try:
        out, err = child.communicate(timeout=timeout)
        return out, err, False
    except subprocess.TimeoutExpired:
        _kill_group(child.pid)
        out, err = child.communicate()
        return out, err, True


def _kill_group(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass


def brainvae(*args: str) -> list[str]:
    return [sys.executable, "-m", "brainvae", *map(str, args)]


def classify(child: Child, names: list[str]) -> tuple[str, str]:
    """(outcome, detail): see the module docstring; `names` may each identify the file."""
    err = child.err
    if child.timed_out:
        return "hang", f"still running after {child.seconds:.0f} s"
    if child.code < 0:
        name = signal.Signals(-child.code).name if -child.code in signal.valid_signals() else ""
        return "crash", f"killed by signal {-child.code} {name}; stderr: {err.strip()[-300:]}"
    if "Traceback (most recent call last)" in err:
        return "uncaught", _where(err) + _last_lines(err, 3)
    if child.code == 0:
        return "valid", ""
    errors = [line for line in err.splitlines() if ": error: " in line]
    if child.code == 2 and errors:
        line = errors[-1]
        if any(name and name in line for name in names):
            return "clean", line[:400]
        return "vague", line[:400]
    return "uncaught", f"exit {child.code}: {_last_lines(err, 4)}"


def _where(err: str) -> str:
    """'at src/brainvae/...py:N (function); ' for the last brainvae frame of a traceback."""
    import re

    frames = re.findall(r'File "([^"]*src/brainvae/[^"]*)", line (\d+), in (\S+)', err)
    if not frames:
        return ""
    path, line, function = frames[-1]
    return f"at {path[path.index('src/brainvae/') :]}:{line} ({function}); "


def _last_lines(text: str, count: int) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-count:])[-800:]


def hidden_leftovers(folder: Path) -> list[str]:
    """Temporary or partial entries anywhere under `folder`."""
    found = []
    if not folder.exists():
        return found
    for parent, folders, files in os.walk(folder):
        for name in folders + files:
            if name.startswith(".") or ".tmp" in name or ".partial" in name or ".old-" in name:
                found.append(os.path.join(parent, name))
    return found


class Skip(Exception):
    """A family (or part) could not run: its unattacked command failed (not an attack result)."""


class Report:
    """Collects attempts; copies a bug's folder as its reproducer."""

    def __init__(self, keep: Path) -> None:
        self.attempts: list[Attempt] = []
        self.skipped: list[str] = []
        self.keep = keep

    def add(self, attempt: Attempt, folder: Path | None = None) -> Attempt:
        self.attempts.append(attempt)
        if attempt.bug:
            target = self.keep / "bugs" / f"{len(self.attempts):04d}_{attempt.family}"
            target.mkdir(parents=True, exist_ok=True)
            if folder is not None and folder.exists():
                try:
                    shutil.copytree(folder, target / "files", symlinks=True, dirs_exist_ok=True)
                except (OSError, shutil.Error):
                    pass
            (target / "README.txt").write_text(
                f"{attempt.family} / {attempt.row}: {attempt.what}\n"
                f"command: {attempt.command}\noutcome: {attempt.outcome}\n"
                f"detail: {attempt.detail}\nleftovers: {attempt.leftovers}\n"
                f"half-written: {attempt.half_written}\nidentical: {attempt.identical}\n"
                f"code executed: {attempt.code_executed}\n"
                f"files as they were: {target / 'files'} (paths in the command were under "
                f"{folder})\n"
            )
            attempt.reproducer = str(target)
        mark = "BUG " if attempt.bug else ""
        print(
            f"  {mark}{attempt.family}/{attempt.row}: {attempt.what}: {attempt.outcome}"
            + (f" ({attempt.detail[:160]})" if attempt.bug and attempt.detail else ""),
            file=sys.stderr,
            flush=True,
        )
        return attempt


# ------------------------------------------------------------------------------ fixtures


class Fixtures:
    """Small real inputs built once: blob dataset + trained run, phantom dataset + PCA run."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self._blob: tuple[Path, Path] | None = None
        self._phantom: tuple[Path, Path, Path] | None = None

    def blob(self) -> tuple[Path, Path]:
        """(dataset, run): 8 blob images of 24 x 20, the small net trained 1 epoch, L = 3."""
        if self._blob is None:
            from helpers.blob_population import write_blob_dataset

            root = self.work / "fixtures" / "blob"
            dataset = write_blob_dataset(root, subjects=4, seed=2)
            run = root / "run"
            child = run_child(
                brainvae("train", dataset, "--latent", "3", "--epochs", "1", *FAST, "--out", run),
                300,
            )
            if child.code != 0:
                raise Skip(f"could not train the fixture run: {_last_lines(child.err, 3)}")
            self._blob = (dataset, run)
        return self._blob

    def phantom(self) -> tuple[Path, Path, Path]:
        """(dataset, PCA run, ROI labels): 40 phantom scans of 32 x 40, L = 4."""
        if self._phantom is None:
            from brainvae.data.dataset import PreparedDataset
            from brainvae.data.io.nifti_writing import write_nifti
            from helpers.phantom_datasets import prepared_phantom

            root = self.work / "fixtures" / "phantom"
            dataset, run, labels = prepared_phantom(root, (32, 40), 40, latent_dim=4)
            opened = PreparedDataset.open(dataset)
            rois = write_nifti(
                root / "rois.nii.gz", labels, opened.affine, squeezed_axes=opened.squeezed_axes
            )
            self._phantom = (dataset, run, Path(rois))
        return self._phantom


def _fresh(source: Path, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    return target


def _latest_checkpoint(run: Path) -> Path:
    return sorted((run / "checkpoints").iterdir())[-1]


# ------------------------------------------------------------------------------ 1. NIfTI fuzz


def family_nifti(report: Report, work: Path, quick: bool, seed: int, timeout: float) -> None:
    """fuzz_nifti's mutants read by its worker (three readers), restarted after a crash and
    killed at `timeout` seconds per read (a hang)."""
    import fuzz_nifti

    folder = work / "nifti_mutants"
    made = fuzz_nifti.write_mutants(
        folder, seed=seed, flips=2 if quick else 8, bomb_mb=100 if quick else 700
    )
    if quick:  # a handful: the originals, then every 6th mutant
        made = made[:6] + made[6::6]
        manifest = json.loads((folder / "mutants.json").read_text())
        keep = {m.name for m in made}
        (folder / "mutants.json").write_text(json.dumps([m for m in manifest if m["name"] in keep]))
    by_name = {m.name: m for m in made}
    pairs = [(m.name, reader) for m in made for reader in fuzz_nifti.READERS]
    start = 0
    while start < len(pairs):
        child = subprocess.Popen(
            [sys.executable, fuzz_nifti.__file__, "--worker", str(folder), "--start", str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            preexec_fn=_limits,
        )
        assert child.stdout is not None
        last = time.monotonic()
        hung = False
        buffer = ""
        while True:
            ready, _, _ = select.select([child.stdout], [], [], 1.0)
            if ready:
                line = child.stdout.readline()
                if not line:
                    break
                buffer = line
                if line.startswith("{"):
                    record = json.loads(line)
                    start = record["index"] + 1
                    last = time.monotonic()
                    _nifti_attempt(report, by_name[record["name"]], record, folder)
            elif time.monotonic() - last > timeout:
                hung = True
                _kill_group(child.pid)
                break
        code = child.wait()
        del buffer
        if start < len(pairs) and (hung or code != 0):
            name, reader = pairs[start]
            outcome = "hang" if hung else "crash"
            detail = f"no answer within {timeout:.0f} s" if hung else f"exit code {code}"
            _nifti_attempt(
                report,
                by_name[name],
                {"reader": reader, "outcome": outcome, "detail": detail, "seconds": 0.0},
                folder,
            )
            start += 1
        elif start < len(pairs):
            raise RuntimeError(f"fuzz worker stopped early at pair {start}")


def _nifti_attempt(report: Report, mutant, record: dict, folder: Path) -> None:
    path = folder / mutant.name
    wrongly = record["outcome"] == "valid" and mutant.must_refuse is True
    attempt = Attempt(
        "nifti",
        record["reader"],
        f"{mutant.name} ({mutant.note})"
        + (" [accepted though it must be refused]" if wrongly else ""),
        command=f"{sys.executable} -c <READ_ONE> {record['reader']} {path} /tmp/fuzz_work",
        outcome=record["outcome"],
        detail=record.get("detail", ""),
        seconds=record.get("seconds", 0.0),
    )
    if attempt.outcome == "uncaught" or attempt.bug:
        reproducer = Path(tempfile.mkdtemp(prefix="nifti_", dir=folder.parent))
        shutil.copyfile(path, reproducer / mutant.name)
        (reproducer / "read_one.py").write_text(READ_ONE)
        attempt.command = f"{sys.executable} read_one.py {record['reader']} {mutant.name} work"
        report.add(attempt, reproducer)
    else:
        report.add(attempt)


# ------------------------------------------------------------------------------ 2. Pickles


class _Payload:
    """Unpickling this runs `touch marker` (os.system) or Path(marker).touch()."""

    def __init__(self, marker: Path, via_shell: bool) -> None:
        self.marker, self.via_shell = marker, via_shell

    def __reduce__(self):
        if self.via_shell:
            return (os.system, (f"touch {shlex.quote(str(self.marker))}",))
        return (Path.touch, (Path(self.marker),))


def _pickle_bytes(marker: Path, kind: str) -> bytes:
    """A payload as a raw pickle, a torch.save zip, or a gzip of a pickle."""
    raw = pickle.dumps({"weights": _Payload(marker, kind != "path-touch")}, protocol=4)
    if kind == "torch":
        import io

        import torch

        buffer = io.BytesIO()
        torch.save({"state_dict": _Payload(marker, True)}, buffer)
        return buffer.getvalue()
    if kind == "gzip":
        return gzip.compress(raw, mtime=0)
    return raw


def _object_npy(path: Path, marker: Path) -> None:
    import numpy as np

    stack = np.empty(8, dtype=object)
    stack[:] = [_Payload(marker, True) for _ in range(8)]
    np.save(path, stack, allow_pickle=True)


def family_pickles(report: Report, work: Path, fixtures: Fixtures, quick: bool, timeout: float):
    """Pickle payloads in place of every file brainvae reads; a marker file betrays execution."""
    dataset, run = fixtures.blob()
    ph_dataset, ph_run, rois = fixtures.phantom()
    checkpoint = _latest_checkpoint(run).name
    resume = [
        "train",
        "{ds}",
        "--latent",
        "3",
        "--epochs",
        "2",
        *FAST,
        "--out",
        "{run}",
        "--resume",
    ]
    encode = ["encode", "{run}", "{ds}", "--out", "{tmp}/codes.csv"]
    cases: list[tuple[str, str, str, list[str]]] = [
        # (row, file relative to the attempt folder, payload kind, command)
        ("weights", "run/weights.safetensors", "raw", encode),
        ("weights", "run/weights.safetensors", "torch", encode),
        (
            "weights",
            "run/weights.safetensors",
            "path-touch",
            ["decode", "{run}", "--z", "0,0,0", "--out", "{tmp}/d.nii.gz"],
        ),
        ("config", "run/config.json", "raw", encode),
        ("config", "run/config.json", "torch", resume),
        ("run.json", "run/run.json", "raw", resume),
        ("history", "run/history.csv", "raw", resume),
        ("history", "run/history.csv", "raw", encode),
    ]
    for name in ("model.safetensors", "optimizer.safetensors", "optimizer.json",
                 "rng.safetensors", "state.json"):  # fmt: skip
        cases.append(("checkpoint", f"run/checkpoints/{checkpoint}/{name}", "raw", resume))
        if not quick:
            cases.append(("checkpoint", f"run/checkpoints/{checkpoint}/{name}", "torch", resume))
    cases += [
        ("images.npy", "ds/images.npy", "npy", resume[:-1] + ["--overwrite"]),
        ("images.npy", "ds/images.npy", "npy", encode),
        ("images.npy", "ds/images.npy", "npy", ["decode", "{run}", "--z", "0,0,0", "--dataset",
                                                "{ds}", "--out", "{tmp}/d.nii.gz"]),
        ("source .npy", "src/sub-01.npy", "npy", ["prepare", "{tmp}/src", "--out", "{tmp}/p",
                                                  "--workers", "1", "--quiet"]),
        ("run path", "model.pkl", "raw", ["encode", "{tmp}/model.pkl", "{ds}", "--out",
                                          "{tmp}/c.csv"]),
        ("run path", "model.pt", "torch", ["decode", "{tmp}/model.pt", "--z", "0,0,0", "--out",
                                           "{tmp}/d.nii.gz"]),
        ("run path", "model.pkl", "raw", ["receptive", "{tmp}/model.pkl", "{phds}", "--rois",
                                          "{rois}", "--quiet", "--out", "{tmp}/r"]),
        ("run path", "model.pkl", "path-touch", ["projective", "{tmp}/model.pkl", "--dataset",
                                                 "{phds}", "--quiet", "--out", "{tmp}/pr"]),
        ("rois", "rois.nii.gz", "gzip", ["receptive", "{phrun}", "{phds}", "--rois",
                                         "{tmp}/rois.nii.gz", "--quiet", "--out", "{tmp}/r"]),
    ]  # fmt: skip
    readers = [("napari reader", "scan.nii", "raw"), ("napari reader", "scan.nii.gz", "gzip")]
    if not quick:
        readers += [("library reader", "scan.nii.gz", "gzip"), ("prepare", "scan.nii", "raw")]
    for index, (row, relative, kind, command) in enumerate(cases):
        folder = work / "pickles" / f"{index:02d}"
        _fresh(run, folder / "run")
        _fresh(dataset, folder / "ds")
        marker = folder / "EXECUTED"
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == "npy":
            if relative.startswith("src/"):
                import numpy as np

                for other in range(1, 4):
                    np.save(target.parent / f"sub-0{other + 1}.npy", np.ones((8, 8), np.float32))
            _object_npy(target, marker)
        else:
            target.write_bytes(_pickle_bytes(marker, kind))
        names = {"{ds}": folder / "ds", "{run}": folder / "run", "{tmp}": folder,
                 "{phds}": ph_dataset, "{phrun}": ph_run, "{rois}": rois}  # fmt: skip
        argv = [_fill(part, names) for part in command]
        child = run_child(brainvae(*argv), timeout)
        outcome, detail = classify(child, [target.name, str(target)])
        report.add(
            Attempt(
                "pickles",
                row,
                f"{kind} pickle as {relative} -> brainvae {command[0]}",
                command=shlex.join(brainvae(*argv)),
                outcome=outcome,
                detail=detail,
                code_executed=marker.exists(),
                seconds=child.seconds,
            ),  # fmt: skip
            folder,
        )
    for index, (row, name, kind) in enumerate(readers):
        folder = work / "pickles" / f"reader{index}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        marker = folder / "EXECUTED"
        (folder / name).write_bytes(_pickle_bytes(marker, kind))
        reader = "napari" if row.startswith("napari") else row.split()[0]
        argv = [sys.executable, "-c", READ_ONE, reader, str(folder / name), str(folder / "w")]
        child = run_child(argv, timeout)
        outcome, detail = classify(child, [name])
        if outcome == "valid":
            result = json.loads(child.out.strip().splitlines()[-1])
            outcome, detail = result["outcome"], result["detail"]
        report.add(
            Attempt(
                "pickles",
                row,
                f"{kind} pickle as {name} -> {reader} read",
                command=shlex.join(argv[:2] + ["<READ_ONE>"] + argv[3:]),
                outcome=outcome,
                detail=detail,
                code_executed=marker.exists(),
                seconds=child.seconds,
            ),  # fmt: skip
            folder,
        )


def _fill(part: str, names: dict[str, Path]) -> str:
    for key, value in names.items():
        part = part.replace(key, str(value))
    return part


# ------------------------------------------------------------------------------ 3. Crafted runs

ODD_VALUES = [
    -1, 0, 1, 2, 3, 7, 64, 2**31, 2**64, 10**6, 0.5, -0.0, 1e-300, 1e300,
    math.inf, -math.inf, math.nan, True, False, None, "", "small", "gaussian", [], [1],
    [24, 20], [2, 2, 2], {}, {"a": 1}, [[[[1]]]],
]  # fmt: skip
SAFETENSORS_DTYPES = ["F16", "F64", "I64", "BOOL", "U8", "BF16", "XX", ""]


def _json_paths(value, path=()) -> list[tuple]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _json_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:6]):
            found += _json_paths(item, (*path, index))
    return found


def _mutate_json(path: Path, rng: random.Random) -> str:
    text = path.read_text()
    choice = rng.random()
    if choice < 0.08:
        depth = rng.choice([1000, 100_000])
        path.write_text(text[: text.rfind("}")] + ', "x": ' + "[" * depth + "]" * depth + "}")
        return f"nested {depth} deep"
    if choice < 0.16:
        cut = rng.randrange(len(text))
        path.write_text(text[:cut])
        return f"cut at byte {cut} of {len(text)}"
    if choice < 0.2:
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.choice([0, 64, 4096]))))
        return "replaced by random bytes"
    data = json.loads(text)
    notes = []
    paths = _json_paths(data)
    for target in rng.sample(paths, min(len(paths), rng.randint(1, 3))):
        holder = data
        try:
            for key in target[:-1]:
                holder = holder[key]
            if rng.random() < 0.15 and isinstance(holder, dict):
                del holder[target[-1]]
                notes.append(f"{'.'.join(map(str, target))} removed")
            else:
                value = rng.choice(ODD_VALUES)
                holder[target[-1]] = value
                notes.append(f"{'.'.join(map(str, target))} = {value!r}")
        except (KeyError, IndexError, TypeError):
            continue
    path.write_text(json.dumps(data))
    return "; ".join(notes) or "unchanged"


def _read_safetensors_header(raw: bytes) -> tuple[int, dict]:
    length = struct.unpack("<Q", raw[:8])[0]
    return length, json.loads(raw[8 : 8 + length])


def _mutate_safetensors(path: Path, rng: random.Random) -> str:
    raw = path.read_bytes()
    length, header = _read_safetensors_header(raw)
    names = [k for k in header if k != "__metadata__"]
    name = rng.choice(names)
    choice = rng.randrange(9)
    if choice == 0:
        dtype = rng.choice(SAFETENSORS_DTYPES)
        header[name]["dtype"] = dtype
        note = f"{name} dtype -> {dtype!r}"
    elif choice == 1:
        shape = rng.choice([[3], [], [2**40], [-1], [0], [1] + header[name]["shape"]])
        header[name]["shape"] = shape
        note = f"{name} shape -> {shape}"
    elif choice == 2:
        start, stop = header[name]["data_offsets"]
        offsets = rng.choice([[0, 2**40], [stop, start], [-8, stop], [start, stop + 4]])
        header[name]["data_offsets"] = offsets
        note = f"{name} data_offsets -> {offsets}"
    elif choice == 3:
        cut = rng.randrange(8, len(raw))
        path.write_bytes(raw[:cut])
        return f"cut at byte {cut} of {len(raw)}"
    elif choice == 4:
        path.write_bytes(struct.pack("<Q", rng.choice([2**62, len(raw), 3])) + raw[8:])
        return "header length word damaged"
    elif choice in (5, 6):
        return _retensor(path, rng)
    elif choice == 7:
        out = bytearray(raw)
        for _ in range(rng.randint(1, 16)):
            out[rng.randrange(8 + length, len(out))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(out))
        return "bit flips in the tensor data"
    else:
        out = bytearray(raw)
        position = rng.randrange(8, 8 + length)
        out[position] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(out))
        return f"bit flip in the header at byte {position}"
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + raw[8 + length :])
    return note


def _retensor(path: Path, rng: random.Random) -> str:
    """Replace one tensor by a valid one of another shape, dtype or value (a real file)."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    name = rng.choice(sorted(tensors))
    value = tensors[name]
    choice = rng.randrange(6)
    if choice == 0:
        tensors[name], note = torch.zeros(3, dtype=value.dtype), "3 values"
    elif choice == 1:
        tensors[name], note = value.double(), "float64"
    elif choice == 2:
        tensors[name], note = torch.full_like(value.float(), math.nan).to(value.dtype), "NaN"
    elif choice == 3:
        tensors[name], note = value.reshape(1, -1), "reshaped 1 x n"
    elif choice == 4:
        tensors[name], note = -value.float() - 1, "negated - 1"
    else:
        del tensors[name]
        note = "removed"
    metadata = None
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata()
    except Exception:  # noqa: BLE001 - metadata is optional
        metadata = None
    save_file(tensors, str(path), metadata=metadata)
    return f"tensor {name} {note}"


def _mutate_bytes(path: Path, rng: random.Random) -> str:
    raw = path.read_bytes()
    choice = rng.randrange(4)
    if choice == 0:
        path.write_bytes(b"")
        return "emptied"
    if choice == 1:
        cut = rng.randrange(len(raw))
        path.write_bytes(raw[:cut])
        return f"cut at byte {cut}"
    if choice == 2:
        path.write_bytes(bytes(rng.randrange(256) for _ in range(2048)))
        return "random bytes"
    lines = raw.decode().splitlines()
    row = rng.randrange(1, len(lines)) if len(lines) > 1 else 0
    cells = lines[row].split(",")
    cell = rng.randrange(len(cells))
    cells[cell] = rng.choice(["oops", "", "nan", "1e999", "-1", '"', "x" * 10_000, "1,2"])
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    return f"line {row + 1} cell {cell} -> {cells[cell][:20]!r}"


def family_crafted(
    report: Report, work: Path, fixtures: Fixtures, count: int, seed: int, timeout: float
) -> None:
    """`count` seeded mutants over every file of a trained run, each tried by a command."""
    dataset, run = fixtures.blob()
    checkpoint = _latest_checkpoint(run)
    files = sorted(p.relative_to(run) for p in run.rglob("*") if p.is_file())
    files = [f for f in files if not str(f).startswith("checkpoints/") or f.parent.name ==
             checkpoint.name]  # fmt: skip
    rng = random.Random(seed)
    for index in range(count):
        relative = files[index % len(files)]
        folder = work / "crafted" / f"{index:03d}"
        target_run = _fresh(run, folder / "run")
        target = target_run / relative
        if target.suffix == ".json":
            note = _mutate_json(target, rng)
        elif target.suffix == ".safetensors":
            note = _mutate_safetensors(target, rng)
        else:
            note = _mutate_bytes(target, rng)
        in_checkpoint = str(relative).startswith("checkpoints/")
        if in_checkpoint or (index // len(files)) % 2 == 1:
            argv = brainvae("train", dataset, "--latent", "3", "--epochs", "2", *FAST, "--out",
                            target_run, "--resume")  # fmt: skip
            verb = "train --resume"
        else:
            argv = brainvae("encode", target_run, dataset, "--out", folder / "codes.csv")
            verb = "encode"
        child = run_child(argv, timeout)
        outcome, detail = classify(child, [target.name, checkpoint.name])
        report.add(
            Attempt(
                "crafted",
                "checkpoint" if in_checkpoint else str(relative),
                f"{relative}: {note} -> {verb}",
                command=shlex.join(argv),
                outcome=outcome,
                detail=detail,
                seconds=child.seconds,
            ),  # fmt: skip
            folder,
        )


# ------------------------------------------------------------------------------ 4. Kills


def _start(argv: list[str], cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
        preexec_fn=_limits,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def _kill_at(argv: list[str], delay: float, which: signal.Signals, wait: float) -> Child:
    """Start argv, send `which` after `delay` s, wait for its end (a hang past `wait`).
    The Child's `out` says whether the signal found the process running ("hit") or not."""
    tick = time.perf_counter()
    child = _start(argv)
    hit = ""
    try:
        child.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        child.send_signal(which)
        hit = "hit"
    _, err, timed_out = _finish(child, wait)
    return Child(child.returncode, hit, err, timed_out, time.perf_counter() - tick)


def _interrupt_traceback(err: str, which: signal.Signals) -> str:
    """'' when stderr has no traceback, 'start-up' for Python's own KeyboardInterrupt traceback
    after a Ctrl-C that came before brainvae took over SIGINT, else 'uncaught'."""
    if "Traceback (most recent call last)" not in err:
        return ""
    last = err.strip().splitlines()[-1]
    if which == signal.SIGINT and last.startswith("KeyboardInterrupt"):
        return "start-up"
    return "uncaught"


def _orphans(group: int) -> list[int]:
    deadline = time.monotonic() + 5
    while group_members(group) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = group_members(group)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return alive


def _weights_equal(a: Path, b: Path) -> tuple[bool, str]:
    import torch
    from safetensors.torch import load_file

    try:
        left, right = load_file(str(a)), load_file(str(b))
    except Exception as error:  # noqa: BLE001 - reported as not identical
        return False, f"cannot load: {error}"
    if left.keys() != right.keys():
        return False, "different tensor names"
    differing = [k for k in left if not torch.equal(left[k], right[k])]
    return not differing, f"{len(differing)} of {len(left)} tensors differ" if differing else ""


def family_kills(
    report: Report, work: Path, fixtures: Fixtures, runs: int, others: int, seed: int,
    timeout: float,
) -> None:  # fmt: skip
    """Training killed at random moments and resumed, compared with an uninterrupted run; then
    prepare, receptive and projective killed: their output absent/old or complete, and a
    rerun succeeds."""
    rng = random.Random(seed)
    dataset, _ = fixtures.blob()
    root = work / "kills"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    epochs = "12"

    def train_argv(out: Path, *extra: str) -> list[str]:
        return brainvae("train", dataset, "--latent", "3", "--epochs", epochs, "--seed", "1",
                        *FAST, "--out", out, *extra)  # fmt: skip

    reference = root / "reference"
    child = run_child(train_argv(reference), timeout)
    if child.code != 0:
        raise Skip(f"uninterrupted training failed: {_last_lines(child.err, 3)}")
    duration = child.seconds
    for index in range(runs):
        out = root / f"train{index:02d}"
        which = signal.SIGINT if index % 3 == 2 else signal.SIGKILL
        kills = [(rng.uniform(0.1, 0.75) * duration, which)]
        if rng.random() < 0.4:  # the first resume is killed too
            kills.append((rng.uniform(0.1, 0.75) * duration, signal.SIGKILL))
        history, outcome, detail, attempts = [], "valid", "", 0
        argv = train_argv(out)
        for delay, sig in kills:
            killed = _kill_at(argv, delay, sig, timeout)
            missed = "" if killed.out == "hit" else " (already finished)"
            history.append(f"{sig.name} at {delay:.1f} s{missed} -> exit {killed.code}")
            kind = _interrupt_traceback(killed.err, sig)
            if killed.timed_out:
                outcome, detail = "hang", f"no exit {timeout:.0f} s after {sig.name}"
                break
            if kind == "uncaught":
                outcome, detail = "uncaught", _last_lines(killed.err, 6)
                break
            if kind == "start-up":
                history[-1] += " (KeyboardInterrupt traceback: Ctrl-C during start-up)"
            argv = train_argv(out, "--resume")
        while outcome == "valid" and attempts < 3:
            attempts += 1
            child = run_child(argv, timeout)
            result, why = classify(child, ["run.json", out.name])
            history.append(f"{'resume' if '--resume' in argv else 'rerun'} -> {result}")
            if (
                result == "clean"
                and "--resume" in argv
                and ("overwrite" in why or "nothing to resume" in why)
            ):  # killed before there was anything to resume: start again, as the message says
                history[-1] += f" ({why.split(': error: ', 1)[-1][:120]})"
                argv = train_argv(out, *(["--overwrite"] if out.exists() else []))
                continue
            outcome, detail = result, why
            break
        identical = None
        if outcome == "valid":
            identical, why = _weights_equal(reference / "weights.safetensors",
                                            out / "weights.safetensors")  # fmt: skip
            detail = why
        report.add(
            Attempt(
                "kills",
                "train",
                "; ".join(history),
                command=shlex.join(train_argv(out)),
                outcome=outcome,
                detail=detail,
                identical=identical,
                leftovers=hidden_leftovers(out) if outcome == "valid" else [],
            ),  # fmt: skip
            out,
        )
    ph_dataset, ph_run, rois = fixtures.phantom()
    source = root / "prepare_src"
    _prepare_source(source, ph_dataset)
    commands = {
        "prepare": lambda out: brainvae("prepare", source, "--workers", "2", "--quiet", "--out",
                                        out),
        "receptive": lambda out: brainvae("receptive", ph_run, ph_dataset, "--rois", rois,
                                          "--weights=-1,-0.75,-0.5,-0.25,0,0.25,0.5,0.75,1",
                                          "--quiet", "--out", out),
        "projective": lambda out: brainvae("projective", ph_run, "--dataset", ph_dataset,
                                           "--step", "0.004", "--quiet", "--out", out),
    }  # fmt: skip
    for name, make in commands.items():
        complete = root / f"{name}_complete"
        child = run_child(make(complete), timeout)
        if child.code != 0:
            report.skipped.append(
                f"kills/{name}: failed uninterrupted: {_last_lines(child.err, 3)}"
            )
            continue
        expected = sorted(p.name for p in complete.iterdir())
        for index in range(others):
            folder = root / f"{name}{index:02d}"
            folder.mkdir()
            out = folder / "out"
            old = index % 2 == 1
            extra = []
            if old:  # an earlier result is there: --overwrite, it must stay whole or be replaced
                shutil.copytree(complete, out)
                (out / "OLD").write_text("old result")
                extra = ["--overwrite"]
            which = signal.SIGINT if index % 3 == 2 else signal.SIGKILL
            delay = rng.uniform(0.15, 0.95) * child.seconds
            argv = make(out) + extra
            tick = time.perf_counter()
            process = _start(argv)
            hit = ""
            try:
                process.wait(timeout=delay)
                hit = " (already finished)"
            except subprocess.TimeoutExpired:
                process.send_signal(which)
            try:
                _, err = process.communicate(timeout=timeout)
                hung = False
            except subprocess.TimeoutExpired:
                _kill_group(process.pid)
                _, err = process.communicate()
                hung = True
            orphans = _orphans(process.pid)
            kind = _interrupt_traceback(err, which)
            state = _output_state(out, expected)
            half = state == "partial"
            rerun_argv = argv if not out.exists() or old else argv + ["--overwrite"]
            rerun = run_child(rerun_argv, timeout)
            outcome, detail = classify(rerun, [out.name])
            if hung:
                outcome, detail = "hang", f"no exit {timeout:.0f} s after {which.name}"
            elif kind == "uncaught":
                outcome, detail = "uncaught", _last_lines(err, 6)
            elif outcome == "valid" and _output_state(out, expected) != "complete":
                half, detail = True, "the rerun's output is not complete"
            leftovers = hidden_leftovers(folder) + [f"orphan pid {pid}" for pid in orphans]
            report.add(
                Attempt(
                    "kills",
                    name,
                    f"{which.name} at {delay:.1f} s{hit} ({'over an old result' if old else 'new'}), "
                    f"exit {process.returncode}"
                    + (" (KeyboardInterrupt traceback at start-up)" if kind == "start-up" else "")
                    + f": output {state}; rerun {outcome}",
                    command=shlex.join(argv),
                    outcome=outcome,
                    detail=detail,
                    half_written=half,
                    leftovers=leftovers,
                    seconds=time.perf_counter() - tick,
                ),  # fmt: skip
                folder,
            )


def _prepare_source(source: Path, dataset: Path) -> None:
    """120 .npy scans (the phantom dataset's, repeated) for a prepare that takes seconds."""
    import numpy as np

    images = np.load(dataset / "images.npy")
    source.mkdir(parents=True)
    for i in range(120):
        np.save(source / f"sub-{i:03d}_ses-1.npy", images[i % len(images)].squeeze())


def _output_state(out: Path, expected: list[str]) -> str:
    """absent, old (the planted earlier result), complete or partial."""
    if not out.exists():
        return "absent"
    names = sorted(p.name for p in out.iterdir())
    if names == sorted([*expected, "OLD"]):
        return "old"
    if names == expected:
        return "complete"
    return "partial"


# ------------------------------------------------------------------------------ 5. Full disk


def family_disk(
    report: Report, work: Path, fixtures: Fixtures, limits_per: int, timeout: float,
    only_phantom_limits: int,
) -> None:  # fmt: skip
    """Each writing command under RLIMIT_FSIZE at limits from 1 KB to just under its largest
    output file: exit 0 with a complete output or a clean exit 2; no temporary file left."""
    dataset, run = fixtures.blob()
    ph_dataset, ph_run, rois = fixtures.phantom()
    root = work / "disk"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    source = root / "src"
    _prepare_source(source, ph_dataset)
    commands = {
        "prepare": lambda out: ["prepare", source, "--workers", "1", "--quiet", "--out", out],
        "train": lambda out: ["train", dataset, "--latent", "3", "--epochs", "2", *FAST,
                              "--out", out],
        "encode": lambda out: ["encode", run, dataset, "--out", out / "codes.csv"],
        "receptive": lambda out: ["receptive", ph_run, ph_dataset, "--rois", rois, "--quiet",
                                  "--out", out],
        "projective": lambda out: ["projective", ph_run, "--dataset", ph_dataset, "--quiet",
                                   "--out", out],
        "phantom": lambda out: ["phantom", "--n", "4", "--workers", "1", "--out", out],
    }  # fmt: skip
    for name, make in commands.items():
        complete = root / f"{name}_complete" / "out"
        child = run_child(brainvae(*make(complete)), timeout)
        if child.code != 0:
            report.skipped.append(
                f"disk/{name}: failed without a limit: {_last_lines(child.err, 3)}"
            )
            continue
        files = sorted(p for p in complete.rglob("*") if p.is_file())
        expected = sorted(str(p.relative_to(complete)) for p in files)
        largest = max(p.stat().st_size for p in files)
        count = only_phantom_limits if name == "phantom" else limits_per
        limits = _limits_between(1024, largest - 1, count)
        for limit in limits:
            folder = root / f"{name}_{limit}"
            folder.mkdir()
            out = folder / "out"
            argv = [sys.executable, "-c", LIMITED, str(limit), *map(str, make(out))]
            child = run_child(argv, timeout)
            outcome, detail = classify(child, [str(out), out.name])
            if outcome == "clean" and "could not be written" not in detail:
                detail = "(no 'could not be written') " + detail
            half = False
            if outcome in ("valid", "clean") and out.exists() and name != "train":
                got = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
                if name == "encode":
                    got = [g for g in got if not g.startswith(".")]
                    half = outcome == "clean" and bool(got)
                else:
                    half = got != expected
            report.add(
                Attempt(
                    "disk",
                    name,
                    f"files limited to {limit:,} bytes (largest output {largest:,})",
                    command=shlex.join(argv[:2] + ["<LIMITED>"] + argv[3:]),
                    outcome=outcome,
                    detail=detail,
                    half_written=half,
                    leftovers=hidden_leftovers(folder),
                    seconds=child.seconds,
                ),  # fmt: skip
                folder,
            )


def _limits_between(low: int, high: int, count: int) -> list[int]:
    if count <= 1:
        return [low]
    ratio = (high / low) ** (1 / (count - 1))
    return sorted({int(low * ratio**i) for i in range(count)})


# ------------------------------------------------------------------------------ 6. Tables


def family_tables(
    report: Report, work: Path, quick: bool, random_count: int, seed: int, timeout: float
) -> None:
    """Damaged metadata tables through prepare; damaged prepared datasets through train and
    encode."""
    import numpy as np
    import pandas as pd

    from helpers.tiny_scans import SHAPE, write_scan

    rng = random.Random(seed)
    root = work / "tables"
    shutil.rmtree(root, ignore_errors=True)
    base = root / "base"
    names = ["a", "b", "c", "d", "e", "f"]
    for i, name in enumerate(names):
        write_scan(base / "images" / f"{name}.nii.gz", i)
    good = "subject_id,filename,age\n" + "".join(
        f"s{i},images/{n}.nii.gz,{30 + i}\n" for i, n in enumerate(names)
    )
    formula = '=HYPERLINK("http://evil.example","click")'
    tables: list[tuple[str, bytes]] = [
        ("unchanged", good.encode()),
        ("one scan, two spellings", (good + "s9,./images/a.nii.gz,50\n").encode()),
        ("one scan via ..", (good + "s9,images/../images/a.nii.gz,50\n").encode()),
        ("a 50 KB id", (good + "x" * 50_000 + ",images/zz.nii.gz,1\n").encode()),
        ("formula cells", good.replace("30", formula.replace(",", ";")).encode()),
        ("formula command", good.replace("s0,", "=cmd|' /C calc'!A0,").encode()),
        ("semicolons", good.replace(",", ";").encode()),
        ("tabs", good.replace(",", "\t").encode()),
        ("latin-1", good.replace("age", "diagnosis").replace("30", "Sjögren").encode("latin-1")),
        ("utf-8 BOM", good.encode("utf-8-sig")),
        ("utf-16", good.encode("utf-16")),
        ("subject NA", good.replace("s0,", "NA,").replace("s1,", "None,").encode()),
        ("empty id", good.replace("s0,", ",").encode()),
        ("empty file", b""),
        ("header only", b"subject_id,filename,age\n"),
        ("binary junk", bytes(rng.randrange(256) for _ in range(4096))),
        ("NUL bytes", good.replace("s1", "s\x001").encode()),
        ("no id column", good.replace("subject_id", "who").encode()),
        ("ragged rows", (good + "s7,images/a.nii.gz,1,2,3,4\n").encode()),
        ("same subject twice, two ages", (good + "s0,images/b.nii.gz,99\n").encode()),
        ("missing file", (good + "s8,images/nothere.nii.gz,40\n").encode()),
        ("absolute path outside", (good + "s8,/etc/passwd,40\n").encode()),
        ("1 MB line", (good + "s8,images/a.nii.gz," + "9" * 1_000_000 + "\n").encode()),
        ("quote never closed", (good + 's8,"images/a.nii.gz,40\n').encode()),
    ]
    for index in range(random_count):
        data = bytearray(good.encode())
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        tables.append((f"random byte changes #{index}", bytes(data)))
    if quick:
        tables = tables[:8] + tables[-2:]
    for index, (what, content) in enumerate(tables):
        folder = root / f"csv{index:02d}"
        shutil.copytree(base, folder / "src")
        csv = folder / "src" / "meta.csv"
        csv.write_bytes(content)
        out = folder / "ds"
        argv = brainvae("prepare", folder / "src", "--csv", csv, "--workers", "1", "--quiet",
                        "--out", out)  # fmt: skip
        child = run_child(argv, timeout)
        outcome, detail = classify(child, ["meta.csv"])
        half = outcome != "valid" and out.exists()
        note = ""
        if outcome == "valid" and "formula" in what:
            written = (out / "metadata.csv").read_text(encoding="utf-8")
            cells = [c.strip('"') for line in written.splitlines() for c in line.split(",")]
            if [c for c in cells if c.startswith(("=", "+", "@"))]:
                outcome, detail = "vague", "a formula cell was written verbatim to metadata.csv"
        report.add(
            Attempt(
                "tables",
                "metadata CSV",
                f"{what} -> prepare{note}",
                command=shlex.join(argv),
                outcome=outcome,
                detail=detail,
                half_written=half,
                leftovers=hidden_leftovers(folder / "ds")
                + [p.name for p in folder.iterdir() if p.name.startswith(".")],
                seconds=child.seconds,
            ),  # fmt: skip
            folder,
        )
    # a prepared dataset and a PCA run on it, then damage
    prepared = root / "prepared"
    child = run_child(brainvae("prepare", base, "--workers", "1", "--quiet", "--out", prepared),
                      timeout)  # fmt: skip
    run = root / "pca_run"
    child = run_child(brainvae("train", prepared, "--model", "pca", "--latent", "2", "--quiet",
                               "--out", run), timeout)  # fmt: skip
    if child.code != 0:
        raise Skip(f"prepared-dataset part: PCA fixture failed: {_last_lines(child.err, 3)}")

    def table_edit(change):
        def edit(folder: Path) -> None:
            frame = pd.read_csv(folder / "metadata.csv", keep_default_na=False)
            change(frame).to_csv(folder / "metadata.csv", index=False)

        return edit

    def npy(make):
        def edit(folder: Path) -> None:
            np.save(folder / "images.npy", make(np.load(folder / "images.npy")), allow_pickle=True)

        return edit

    def objects(images):
        stack = np.empty(len(images), dtype=object)
        stack[:] = [np.zeros(SHAPE)] * len(images)
        return stack

    def truncate(name: str, cut: int):
        def edit(folder: Path) -> None:
            raw = (folder / name).read_bytes()
            (folder / name).write_bytes(raw[: max(0, len(raw) - cut)])

        return edit

    def keep_head(name: str, size: int):
        def edit(folder: Path) -> None:
            (folder / name).write_bytes((folder / name).read_bytes()[:size])

        return edit

    def write(name: str, content: bytes):
        def edit(folder: Path) -> None:
            (folder / name).write_bytes(content)

        return edit

    def remove(name: str):
        return lambda folder: (folder / name).unlink()

    damages: list[tuple[str, str, object]] = [
        ("images.npy", "truncated by 100 bytes", truncate("images.npy", 100)),
        ("images.npy", "only its header", keep_head("images.npy", 128)),
        ("images.npy", "object dtype", npy(objects)),
        ("images.npy", "float64", npy(lambda a: a.astype(np.float64))),
        ("images.npy", "int16", npy(lambda a: (a * 100).astype(np.int16))),
        ("images.npy", "NaN voxels", npy(lambda a: np.where(a > 0.5, np.nan, a))),
        ("images.npy", "one image fewer", npy(lambda a: a[:-1])),
        ("images.npy", "other shape", npy(lambda a: a.reshape(len(a), -1))),
        ("images.npy", "a zip, not an array", write("images.npy", b"PK\x03\x04 not an array")),
        ("images.npy", "missing", remove("images.npy")),
        ("metadata.csv", "no split column", table_edit(lambda f: f.drop(columns="split"))),
        ("metadata.csv", "no subject_id column",
         table_edit(lambda f: f.drop(columns="subject_id"))),
        ("metadata.csv", "a row fewer", table_edit(lambda f: f.iloc[:-1])),
        ("metadata.csv", "split 'tset'", table_edit(lambda f: f.assign(split="tset"))),
        ("metadata.csv", "empty", write("metadata.csv", b"")),
        ("metadata.csv", "binary", write("metadata.csv", bytes(range(256)) * 8)),
        ("metadata.csv", "missing", remove("metadata.csv")),
        ("dataset.json", "empty", write("dataset.json", b"")),
        ("dataset.json", "junk", write("dataset.json", b"{not json")),
        ("dataset.json", "missing", remove("dataset.json")),
        ("dataset.json", "nested 100000 deep", write("dataset.json", b"[" * 100000 + b"]" * 100000)),
    ]  # fmt: skip
    for index in range(random_count):
        damages.append(("dataset.json", f"random leaf values #{index}", None))
        damages.append(("metadata.csv", f"random cell #{index}", None))
    if quick:
        damages = damages[:4] + damages[10:12] + damages[-2:]
    for index, (name, what, edit) in enumerate(damages):
        turn = (index + index // 2) % 2  # full run: one command each, the two in turn
        for verb in ("train", "encode") if quick else (("train", "encode")[turn],):
            folder = root / f"ds{index:02d}_{verb}"
            ds = _fresh(prepared, folder / "ds")
            if edit is not None:
                edit(ds)
                note = what
            elif name == "dataset.json":
                note = f"{what}: {_mutate_json(ds / name, rng)}"
            else:
                note = f"{what}: {_mutate_bytes(ds / name, rng)}"
            if verb == "train":
                argv = brainvae("train", ds, "--latent", "2", "--epochs", "1", *FAST, "--out",
                                folder / "run")  # fmt: skip
            else:
                argv = brainvae("encode", run, ds, "--out", folder / "codes.csv")
            child = run_child(argv, timeout)
            outcome, detail = classify(child, [name])
            report.add(
                Attempt(
                    "tables",
                    f"prepared {name}",
                    f"{note} -> {verb}",
                    command=shlex.join(argv),
                    outcome=outcome,
                    detail=detail,
                    seconds=child.seconds,
                    leftovers=[p for p in hidden_leftovers(folder) if "/ds/" not in p],
                ),  # fmt: skip
                folder,
            )


# ------------------------------------------------------------------------------ the table

COLUMNS = ("tried", "clean", "valid", "vague", "crash", "uncaught", "hang", "code exec",
           "leftover", "half", "identical")  # fmt: skip


def summarise(attempts: list[Attempt]) -> list[dict]:
    rows: dict[tuple[str, str], list[Attempt]] = {}
    for attempt in attempts:
        rows.setdefault((attempt.family, attempt.row), []).append(attempt)
    out = []
    for (family, row), group in rows.items():
        kills = [a for a in group if a.identical is not None]
        out.append(
            {
                "family": family,
                "row": row,
                "tried": len(group),
                "clean": sum(a.outcome == "clean" for a in group),
                "valid": sum(a.outcome == "valid" for a in group),
                "vague": sum(a.outcome == "vague" for a in group),
                "crash": sum(a.outcome == "crash" for a in group),
                "uncaught": sum(a.outcome == "uncaught" for a in group),
                "hang": sum(a.outcome == "hang" for a in group),
                "code exec": sum(a.code_executed for a in group) if family == "pickles" else None,
                "leftover": sum(bool(a.leftovers) for a in group),
                "half": sum(a.half_written for a in group),
                "identical": f"{sum(bool(a.identical) for a in kills)}/{len(kills)}"
                if kills
                else None,
            }
        )
    return out


def table(rows: list[dict]) -> str:
    widths = {c: max(len(c), 5) for c in COLUMNS}
    head = f"{'family / row':34} " + " ".join(f"{c:>{widths[c]}}" for c in COLUMNS)
    lines = [head, "-" * len(head)]
    totals = {c: 0 for c in COLUMNS if c != "identical"}
    for row in rows:
        cells = []
        for c in COLUMNS:
            value = row[c]
            cells.append(f"{'-' if value is None else value:>{widths[c]}}")
            if c in totals and isinstance(value, int):
                totals[c] += value
        lines.append(f"{row['family'] + ' / ' + row['row']:34.34} " + " ".join(cells))
    kills = [r["identical"] for r in rows if r["identical"]]
    same = sum(int(k.split("/")[0]) for k in kills)
    total_kills = sum(int(k.split("/")[1]) for k in kills)
    lines.append("-" * len(head))
    cells = [
        f"{totals[c] if c in totals else (f'{same}/{total_kills}' if kills else '-'):>{widths[c]}}"
        for c in COLUMNS
    ]
    lines.append(f"{'all':34} " + " ".join(cells))
    return "\n".join(lines)


def cli_starts(wait_s: float = 300.0) -> str:
    """'' once `brainvae train --help` runs (retrying while src/ is being edited), else why."""
    deadline = time.monotonic() + wait_s
    while True:
        child = run_child(brainvae("train", "--help"), 120)
        if child.code == 0:
            return ""
        if time.monotonic() > deadline:
            return _last_lines(child.err, 2)
        time.sleep(20)


def run_family(
    family: str, report: Report, work: Path, fixtures: Fixtures, quick: bool, seed: int,
    timeout: float,
) -> None:  # fmt: skip
    """One family at its quick or full size."""
    if family == "nifti":
        family_nifti(report, work, quick, seed, min(timeout, 60.0))
    elif family == "pickles":
        family_pickles(report, work, fixtures, quick, timeout)
    elif family == "crafted":
        family_crafted(report, work, fixtures, 12 if quick else 48, seed, timeout)
    elif family == "kills":
        family_kills(report, work, fixtures, 3 if quick else 12, 2 if quick else 4, seed, timeout)
    elif family == "disk":
        family_disk(report, work, fixtures, 2 if quick else 4, timeout, 1 if quick else 2)
    elif family == "tables":
        family_tables(report, work, quick, 2 if quick else 3, seed, timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a handful per family (minutes)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--families",
        default=",".join(FAMILIES),
        help=f"comma-separated, of {', '.join(FAMILIES)} (default all)",
    )
    parser.add_argument("--json", metavar="OUT.json", help="every attempt and the table")
    parser.add_argument("--keep", metavar="DIR", help="keep the work folder and reproducers here")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds per attempt before it counts as a hang")  # fmt: skip
    args = parser.parse_args(argv)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = set(families) - set(FAMILIES)
    if unknown:
        parser.error(f"unknown families: {', '.join(sorted(unknown))}")
    tick = time.perf_counter()
    keep = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="reliability_"))
    work = keep / "work"
    work.mkdir(parents=True, exist_ok=True)
    report = Report(keep)
    fixtures = Fixtures(work)
    quick = args.quick
    timings = {}
    for family in families:
        started = time.perf_counter()
        print(f"[{family}]", file=sys.stderr, flush=True)
        broken = cli_starts()
        if broken:
            report.skipped.append(f"{family}: the brainvae command does not start: {broken}")
            continue
        try:
            run_family(family, report, work, fixtures, quick, args.seed, args.timeout)
        except Exception as error:  # noqa: BLE001 - one family's failure must not lose the rest
            import traceback

            report.skipped.append(
                f"{family}: stopped: {type(error).__name__}: {error}"
                + ("" if isinstance(error, Skip) else "\n" + traceback.format_exc()[-1500:])
            )
        timings[family] = time.perf_counter() - started
    rows = summarise(report.attempts)
    bugs = [a for a in report.attempts if a.bug]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"brainvae reliability report, {stamp}, seed {args.seed}"
          f"{' (--quick)' if quick else ''}, {len(report.attempts)} attempts in "
          f"{time.perf_counter() - tick:.0f} s "
          f"({', '.join(f'{k} {v:.0f} s' for k, v in timings.items())})\n")  # fmt: skip
    print(table(rows))
    print(
        "\nclean: refused in one line naming the file, exit 2; vague: refused (exit 2) without "
        "naming it; crash: killed by a signal; uncaught: a traceback; hang: past the time limit; "
        "code exec: pickle payloads that ran; leftover: hidden/temporary files or orphan "
        "processes left; half: a half-written output where the user looks; identical: killed "
        "training runs resumed to weights bit-identical to an uninterrupted run."
    )
    for line in report.skipped:
        print(f"\nNot run: {line}")
    if bugs:
        print(f"\n{len(bugs)} problem(s) (reproducers under {keep / 'bugs'}):")
        for attempt in bugs:
            flags = [attempt.outcome] if attempt.outcome in BUGS else []
            flags += ["code executed"] * attempt.code_executed
            flags += [f"leftovers {attempt.leftovers}"] if attempt.leftovers else []
            flags += ["half-written"] * attempt.half_written
            flags += ["not identical"] * (attempt.identical is False)
            print(f"- {attempt.family}/{attempt.row}: {attempt.what}: {', '.join(flags)}")
            print(f"    {attempt.detail[:600]}")
            print(f"    reproducer: {attempt.reproducer}")
    else:
        print("\nNo problems.")
        if not args.keep and not report.skipped:
            shutil.rmtree(keep, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "date": stamp,
                    "seed": args.seed,
                    "quick": quick,
                    "table": rows,
                    "attempts": [asdict(a) for a in report.attempts],
                },
                indent=1,
                default=str,
            )  # fmt: skip
        )
    return 1 if bugs else 0


if __name__ == "__main__":
    raise SystemExit(main())
