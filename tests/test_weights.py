"""Trained weights: names, every shipped and reference file (hash, strict load, the stored
accuracy on a fixed test subset), akamaster's files against akamaster's own architecture,
and the export of a finished run (on a tiny synthetic run made here).

Tests that need the offline CIFAR-10 copy or akamaster's files skip, saying so, where
``../shared`` (or ``RESNET_LAB_DATA`` / ``RESNET_LAB_WEIGHTS``) does not hold them. No test
goes to the network.
"""

from __future__ import annotations

import json
import os
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest
import torch

import resnet_lab as rl
from resnet_lab import engine, results
from resnet_lab.cli import main
from resnet_lab.data import load_data
from resnet_lab.weights import SHIPPED, WeightsError, export, reference
from resnet_lab.weights.measure import SUBSET_PER_CLASS, measure, wrong_answers

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli on Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
_ENV_DATA = os.environ.get("RESNET_LAB_DATA", "")
DATA = (
    Path(_ENV_DATA)
    if _ENV_DATA.endswith(".zip")
    else ROOT.parent / "shared" / "data" / "cifar10-jpeg.zip"
)
AKAMASTER = ROOT.parent / "shared" / "models" / "akamaster"
needs_data = pytest.mark.skipif(not DATA.is_file(), reason=f"no offline CIFAR-10 at {DATA}")
SHIPPED_ENTRIES = rl.weights.read_manifest()
REFERENCES = [w for w in rl.weights.list_weights() if w.source == "reference"]
# Wrong answers a different CPU's fp32 kernels may flip on the 500-image subset: a network
# that was not the stored one would miss by far more.
TOLERANCE = 3


def _found(entry) -> bool:
    try:
        reference.locate(entry, download=False)
    except WeightsError:
        return False
    return True


def _needs_file(entry):
    if entry.source == "reference" and not _found(entry):
        pytest.skip(f"{entry.file} not found locally ({AKAMASTER} or $RESNET_LAB_WEIGHTS)")


# --- names ---------------------------------------------------------------------------------


def test_a_tag_a_full_name_and_an_entry_load_the_same_weights() -> None:
    entry = rl.weights.get_weight("resnet20.akamaster")
    _needs_file(entry)
    a = rl.build("resnet20", weights="akamaster").state_dict()
    b = rl.models.build("RESNET20", weights="resnet20.akamaster").state_dict()
    c = rl.build("resnet20", weights=entry).state_dict()
    assert all(torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]) for k in a)
    assert entry.tag == "akamaster" and entry.model == "resnet20"


def test_bad_names_get_one_line_listing_the_valid_ones() -> None:
    with pytest.raises(WeightsError, match="valid for resnet20: .*akamaster") as info:
        rl.build("resnet20", weights="imagenet")
    assert "\n" not in str(info.value)
    with pytest.raises(WeightsError, match="valid names: .*resnet56.akamaster"):
        rl.weights.get_weight("resnet56.imagenet")
    with pytest.raises(WeightsError, match=r"weights of resnet56, not resnet20: build\('resnet56'"):
        rl.build("resnet20", weights="resnet56.akamaster")
    with pytest.raises(WeightsError, match="models with weights: .*resnet56"):
        rl.build("resnet50", weights="akamaster")
    with pytest.raises(WeightsError, match="takes a name"):
        rl.build("resnet20", weights=True)


def test_the_command_line_lists_the_weights_and_refuses_unknown_ones(capsys) -> None:
    assert main(["weights"]) == 0
    table = capsys.readouterr().out
    assert all(w.name in table for w in rl.weights.list_weights())
    assert "cifar10-jpeg" in table and "JPEG compression" in table
    assert main(["eval", "resnet20", "--weights", "imagenet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "valid for resnet20" in err
    assert main(["weights", "export"]) == 2
    assert "--record" in capsys.readouterr().err
    assert main(["weights", "--model", "resnet50"]) == 2
    assert "no weights for resnet50" in capsys.readouterr().err


# --- what ships ----------------------------------------------------------------------------


def test_the_manifest_names_every_shipped_file_and_fits_the_budget() -> None:
    files = {p.name for p in SHIPPED.iterdir() if p.name != "manifest.json"}
    named = {w.file for w in SHIPPED_ENTRIES if w.file}
    assert files == named, "files without an entry, or entries without their file"
    total = sum((SHIPPED / f).stat().st_size for f in files)
    assert total <= export.BUDGET, f"shipped weights take {total / 1e6:.1f} MB"
    for w in SHIPPED_ENTRIES:
        assert w.source in ("shipped", "seed") and w.run and w.data and w.recipe and w.schedule
        assert set(w.metrics) >= {"test_error", "train_error", "subset"}
        if w.file:
            stem = w.name.replace(".", "-").replace(":", "-")
            assert w.file == f"{stem}-{w.sha256[:8]}.safetensors"
            assert (ROOT / "results" / "zoo" / f"{w.run}.json").is_file(), w.run


def test_the_wheel_ships_the_weights_and_safetensors_is_a_dependency() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["resnet_lab.weights"]
    for path in SHIPPED.iterdir():
        assert any(fnmatch(f"shipped/{path.name}", g) for g in globs), path.name
    assert any(d.startswith("safetensors") for d in pyproject["project"]["dependencies"])
    assert "safetensors" in (ROOT / "requirements.txt").read_text()
    assert "safetensors==" in (ROOT / "constraints.txt").read_text()


@pytest.mark.parametrize("entry", SHIPPED_ENTRIES, ids=[w.name for w in SHIPPED_ENTRIES])
def test_a_shipped_entry_has_its_hash_and_loads_strictly(entry) -> None:
    rng = torch.get_rng_state()
    model = rl.build(entry.model, weights=entry)  # checks the hash and loads strictly
    assert torch.equal(torch.get_rng_state(), rng), "building must not move the caller's seed"
    assert sum(p.numel() for p in model.parameters()) == entry.num_params
    if entry.source == "seed":  # rebuilt from the seed, checked against the stored digest
        assert rl.weights.state_digest(model.state_dict()) == entry.sha256
        return
    assert rl.weights.file_sha256(SHIPPED / entry.file) == entry.sha256
    from safetensors.torch import load_file

    stored = load_file(SHIPPED / entry.file)
    params = dict(model.named_parameters())
    assert all(stored[k].dtype == torch.float16 for k in params)
    assert all(v.dtype != torch.float16 for k, v in stored.items() if k not in params)


# --- reference weights ---------------------------------------------------------------------


@pytest.mark.parametrize("entry", REFERENCES, ids=[w.name for w in REFERENCES])
def test_akamasters_weights_give_akamasters_outputs(entry) -> None:
    """Their file, loaded strictly into our network, computes what their own code computes."""
    _needs_file(entry)
    import akamaster_resnet

    path = reference.locate(entry, download=False)
    saved = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    theirs = getattr(akamaster_resnet, entry.model)()
    theirs.load_state_dict({k.removeprefix("module."): v for k, v in saved.items()})
    ours = rl.build(entry.model, weights="akamaster")  # strict: raises on any mismatch
    theirs.eval(), ours.eval()
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-4)
    assert entry.mean == (0.485, 0.456, 0.406) and entry.reported["data"] == "cifar10"


def test_a_missing_or_damaged_reference_file_is_one_line(tmp_path, monkeypatch) -> None:
    entry = rl.weights.get_weight("resnet20.akamaster")
    monkeypatch.setattr(reference, "search_path", lambda: [tmp_path])
    with pytest.raises(WeightsError, match="RESNET_LAB_WEIGHTS") as info:
        entry.state_dict(download=False)
    assert "\n" not in str(info.value) and entry.url in str(info.value)

    def offline(url, dst, hash_prefix=None):  # what a machine without network answers
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError, match="downloading it failed .*name resolution") as info:
        rl.build("resnet20", weights="akamaster")
    assert "\n" not in str(info.value)
    (tmp_path / entry.file).write_bytes(b"not the file")
    with pytest.raises(WeightsError, match="damaged"):
        rl.build("resnet20", weights="akamaster")


# --- the stored numbers --------------------------------------------------------------------

MEASURED = SHIPPED_ENTRIES + REFERENCES


@pytest.fixture(scope="module")
def subset_data():
    """The fixed 500-image test subset every entry stores its wrong answers on."""
    return load_data(DATA, train_per_class=1, test_per_class=SUBSET_PER_CLASS, progress=False)


@needs_data
@pytest.mark.parametrize("entry", MEASURED, ids=[w.name for w in MEASURED])
def test_an_entry_scores_its_stored_number_on_the_fixed_subset(entry, subset_data) -> None:
    _needs_file(entry)
    sub = entry.metrics["subset"]
    assert (sub["test_per_class"], sub["seed"], sub["images"]) == (SUBSET_PER_CLASS, 0, 500)
    model = rl.build(entry.model, weights=entry)
    wrong = int(
        wrong_answers(model, subset_data.test_x, subset_data.test_y, entry.mean, entry.std).sum()
    )
    assert abs(wrong - sub["wrong"]) <= TOLERANCE, f"{wrong} wrong, stored {sub['wrong']}"


@needs_data
def test_eval_reproduces_the_stored_subset_number(capsys) -> None:
    entry = rl.weights.get_weight("resnet20.akamaster")
    _needs_file(entry)
    args = ["--data", str(DATA), "--subset", "1", "--test-subset", str(SUBSET_PER_CLASS)]
    status = main(["eval", "resnet20", "--weights", "akamaster", *args])
    out = capsys.readouterr().out
    assert "test error" in out and "training error" in out
    line = next(x for x in out.splitlines() if x.startswith("test error"))
    assert "stored" in line and (status == 0) == ("reproduced" in line)
    assert "8.27 %" in out and "cifar10" in out  # their own number, named as other data


# --- export --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny finished run with snapshots at steps 0, 2 and 4 (one epoch: 4 steps)."""
    root = tmp_path_factory.mktemp("zoo")
    data = load_data("synthetic", train_per_class=10, test_per_class=5, progress=False)
    config = engine.recipe(
        "fast", epochs=2, batch_size=25, snapshot_steps=(0, 2, 4), amp="off", seed=3
    )
    torch.manual_seed(3)  # as the command line builds the model
    run = engine.train(
        rl.build("resnet20"), data, config, progress=False,
        checkpoint=root / "run" / "checkpoint.pt", name="resnet20",
    )  # fmt: skip
    record = results.save_run(run, root / "store")
    return root, record, data


@pytest.mark.slow
def test_export_ships_each_point_measured_as_it_ships(finished_run) -> None:
    root, record, data = finished_run
    out, said = root / "out1", []
    entries = export.export_run(root / "run", record, data, out=out, say=said.append)
    names = [w.name for w in entries]
    assert names == [
        "resnet20.zoo:init",
        "resnet20.zoo:step2",
        "resnet20.zoo:epoch1",
        "resnet20.zoo",
    ]
    assert [w.step for w in entries] == [0, 2, 4, 8] and len(said) == 4
    init, *stored = entries
    assert init.file is None and init.source == "seed" and init.seed == 3
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", *(w.file for w in stored)]
    )
    assert rl.weights.read_manifest(out)[0].to_dict() == entries[-1].to_dict()  # sorted by name
    for w in rl.weights.read_manifest(out):
        assert w.run == record.stem and w.data == "synthetic" and w.mean == data.mean
        model = rl.build("resnet20", weights=w)
        again = measure(model, data, w.mean, w.std, subset_per_class=5)
        assert again == w.metrics  # the stored numbers, to the image
    # the end, fp16 against the fp32 checkpoint: the same network up to rounding
    ckpt = torch.load(root / "run" / "checkpoint.pt", weights_only=True)["model"]
    final = rl.build("resnet20", weights=entries[-1]).state_dict()
    assert all(
        torch.allclose(final[k].float(), ckpt[k].float(), rtol=1e-3, atol=1e-3) for k in ckpt
    )


@pytest.mark.slow
def test_export_refuses_to_replace_an_entry_silently(finished_run) -> None:
    root, record, data = finished_run
    out = root / "out2"
    export.export_run(root / "run", record, data, out=out, say=lambda s: None)
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(WeightsError, match="already has resnet20.zoo:init, .*--replace"):
        export.export_run(root / "run", record, data, out=out, say=lambda s: None)
    assert (out / "manifest.json").read_bytes() == before
    export.export_run(root / "run", record, data, out=out, replace=True, say=lambda s: None)
    assert json.loads((out / "manifest.json").read_text()) == json.loads(before)
    with pytest.raises(WeightsError, match="over the 0 MB budget"):
        export.export_run(root / "run", record, data, out=root / "out3", budget=1, say=print)
    assert not (root / "out3").exists()
    other = load_data("synthetic", train_per_class=10, test_per_class=4, progress=False)
    with pytest.raises(WeightsError, match="differs from what run .* trained on in test_size"):
        export.export_run(root / "run", record, other, out=root / "out4", say=print)
