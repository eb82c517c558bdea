"""resnet_lab.summary: per-stage shapes, parameters and measured multiply-adds."""

from __future__ import annotations

import torch
from torch import nn

from resnet_lab.models import build
from resnet_lab.summary import ModelSummary, count_macs, count_parameters, summary


def test_macs_convention_is_one_multiply_add_per_weight_use() -> None:
    conv = nn.Conv2d(3, 16, kernel_size=3, padding=1, bias=False)
    assert count_macs(conv, (1, 3, 32, 32)) == 3 * 16 * 3 * 3 * 32 * 32
    assert count_macs(nn.Linear(64, 10), (4, 64)) == 4 * 64 * 10
    assert count_macs(nn.Sequential(nn.BatchNorm2d(3), nn.ReLU()), (1, 3, 8, 8)) == 0


def test_resnet20_summary_rows() -> None:
    model = build("resnet20")
    s = summary(model)
    assert isinstance(s, ModelSummary) and s.model == "resnet20"
    assert [row.name for row in s.rows] == ["stem", "layer1", "layer2", "layer3", "head"]
    shapes = [row.output_shape for row in s.rows]
    assert shapes == [(1, 16, 32, 32), (1, 16, 32, 32), (1, 32, 16, 16), (1, 64, 8, 8), (1, 10)]
    assert s.params == count_parameters(model) == 269_722 == sum(row.params for row in s.rows)
    assert s.macs == count_macs(model) == sum(row.macs for row in s.rows)
    assert round(s.macs / 1e6, 1) == 40.6
    stem, head = s.rows[0], s.rows[-1]
    assert stem.params == 16 * 27 + 2 * 16 and stem.macs == 16 * 27 * 32 * 32
    assert head.params == 64 * 10 + 10 and head.macs == 64 * 10


def test_imagenet_summary_defaults_to_224_on_meta_device() -> None:
    with torch.device("meta"):
        model = build("resnet50")
    s = summary(model)
    assert s.input_size == (1, 3, 224, 224)
    assert [row.name for row in s.rows] == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]
    assert [row.output_shape[1:] for row in s.rows[:-1]] == [
        (64, 56, 56),
        (256, 56, 56),
        (512, 28, 28),
        (1024, 14, 14),
        (2048, 7, 7),
    ]
    assert round(s.macs / 1e9, 3) == 4.089 and s.params == 25_557_032
    assert summary(model, (1, 3, 64, 64)).macs < s.macs


def test_renderings() -> None:
    s = summary(build("resnet20"))
    text = str(s)
    assert "269,722" in text and "40.551M" in text and text.splitlines()[0].startswith("resnet20")
    markdown = s.to_markdown().splitlines()
    assert markdown[0] == "| stage | output shape | params | MACs |" and len(markdown) == 8
    html = s._repr_html_()
    assert html.startswith("<table>") and '<td style="text-align:left">layer3</td>' in html
    rows = s.as_rows()
    assert rows[1] == {
        "name": "layer1",
        "output_shape": (1, 16, 32, 32),
        "params": 14_016,
        "macs": s.rows[1].macs,
    }


def test_summary_leaves_the_model_as_it_was() -> None:
    model = build("preact_resnet110").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summary(model)
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics untouched


def test_summary_of_models_without_stages() -> None:
    # One image through BatchNorm1d only works because the summary runs in eval mode.
    model = build("mlp", depth=5, width=16, norm="batchnorm")
    s = summary(model)
    assert s.input_size == (1, 3072)
    assert s.params == count_parameters(model) == sum(row.params for row in s.rows)
    assert s.macs == 3072 * 16 + 3 * 16 * 16 + 16 * 10
    assert {row.name for row in s.rows} >= {"layers", "norms"}
