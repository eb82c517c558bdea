"""The training engine: recipes, schedules, history, callbacks, failures, interrupts, resume."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from torch import nn

from resnet_lab import engine as E
from resnet_lab.data import synthetic

HISTORY_KEYS = {
    "epoch",
    "step",
    "train_loss",
    "train_error",
    "test_loss",
    "test_error",
    "lr",
    "images_per_sec",
    "wall_time",
}


def tiny_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(4),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


@pytest.fixture(scope="module")
def data():
    return synthetic(160, 40, seed=0)


def small(**kw) -> E.TrainConfig:
    kw = {"epochs": 2, "batch_size": 32, "log_every_steps": 2, "eval_batch_size": 64, **kw}
    return E.recipe("fast", **kw)


# ----------------------------------------------------------------------------- recipes


def test_paper_recipe_is_he_et_al_section_4_2():
    c = E.recipe("paper")
    assert (c.iterations, c.epochs, c.batch_size) == (64_000, None, 128)
    assert (c.lr, c.momentum, c.weight_decay, c.schedule) == (0.1, 0.9, 1e-4, "multistep")
    assert [round(m * c.iterations) for m in c.milestones] == [32_000, 48_000]
    assert (c.warmup_steps, c.warmup_lr, c.warmup_min_depth) == (400, 0.01, 110)
    assert c.label_smoothing == 0 and not c.nesterov


def test_paper_schedule_and_deep_net_warmup():
    c = E.recipe("paper")
    total = c.iterations
    assert E.lr_at(c, 0, total, depth=20) == 0.1
    assert E.lr_at(c, 0, total, depth=110) == 0.01  # warm-up for 110 layers and deeper
    assert E.lr_at(c, 399, total, depth=1202) == 0.01
    assert E.lr_at(c, 400, total, depth=110) == 0.1
    assert E.lr_at(c, 31_999, total) == 0.1
    assert E.lr_at(c, 32_000, total) == pytest.approx(0.01)
    assert E.lr_at(c, 48_000, total) == pytest.approx(0.001)


def test_epochs_override_scales_milestones_and_clears_iterations():
    c = E.recipe("paper", epochs=20)
    assert c.iterations is None and c.total_steps(391) == 20 * 391
    total = c.total_steps(100)
    assert E.lr_at(c, 999, total) == 0.1 and E.lr_at(c, 1000, total) == pytest.approx(0.01)
    assert E.lr_at(c, 1500, total) == pytest.approx(0.001)


def test_fast_recipe_one_cycle_and_overrides():
    c = E.recipe("fast", lr=0.4, batch_size=256)
    assert (c.schedule, c.label_smoothing, c.nesterov, c.lr, c.batch_size) == (
        "onecycle",
        0.1,
        True,
        0.4,
        256,
    )
    total = 100
    lrs = [E.lr_at(c, s, total) for s in range(total)]
    peak = max(range(total), key=lrs.__getitem__)
    assert peak == 24 and lrs[peak] == pytest.approx(0.4)
    assert lrs[0] < 0.05 and 0 < lrs[-1] < 0.01
    assert E.recipe("fast", iterations=50).epochs is None


def test_bad_recipes_and_fields_raise_value_errors():
    with pytest.raises(ValueError, match="unknown recipe"):
        E.recipe("sgdr")
    with pytest.raises(ValueError, match="unknown TrainConfig field.*learning_rate"):
        E.recipe("fast", learning_rate=0.1)
    with pytest.raises(ValueError, match="schedule"):
        E.recipe("fast", schedule="linear")
    with pytest.raises(ValueError, match="exactly one of epochs or iterations"):
        E.TrainConfig(epochs=None, iterations=None).validate()


def test_model_depth_counts_main_path_layers():
    import resnet_lab as rl

    assert E.model_depth(rl.build("resnet20")) == 20
    assert E.model_depth(rl.build("resnet110")) == 110
    assert E.model_depth(tiny_net()) == 3


# ----------------------------------------------------------------------------- training


def test_train_records_history_steps_and_calls_callbacks(data):
    events = []
    run = E.train(
        tiny_net(),
        data,
        small(grad_norms=True),
        progress=False,
        name="tiny",
        callbacks=[lambda ev, run, rec: events.append((ev, rec.get("step")))],
    )
    assert run.status == "completed" and run.epochs == 2 and run.model_name == "tiny"
    assert run.total_steps == 10 and run.steps_per_epoch == 5
    for h in run.history:
        assert HISTORY_KEYS <= set(h)
        assert 0 <= h["train_error"] <= 1 and 0 <= h["test_error"] <= 1
        assert len(h["grad_norms"]) == 3 and all(g > 0 for g in h["grad_norms"])
    assert [h["step"] for h in run.history] == [5, 10]
    assert [s["step"] for s in run.steps] == [2, 4, 6, 8, 10]
    assert [e for e, _ in events].count("epoch") == 2 and events[-1][0] == "end"
    assert events.index(("step", 4)) < events.index(("epoch", 5))
    assert run.history[1]["wall_time"] >= run.history[0]["wall_time"] > 0
    assert run.data["variant"] == "synthetic"


def test_stop_training_from_a_callback(data):
    def stop(event, run, record):
        if event == "step" and record["step"] == 4:
            raise E.StopTraining

    run = E.train(tiny_net(), data, small(), progress=False, callbacks=[stop])
    assert run.status == "stopped" and run.epochs == 0 and run.steps[-1]["step"] == 4


class _NanAfter(nn.Module):
    def __init__(self, net: nn.Module, calls: int):
        super().__init__()
        self.net, self.calls, self.seen = net, calls, 0

    def forward(self, x):
        out = self.net(x)
        if self.training:
            self.seen += 1
            if self.seen > self.calls:
                out = out * float("nan")
        return out


def test_nan_loss_stops_naming_the_step_and_keeps_history(data):
    with pytest.raises(E.TrainingDiverged, match=r"step 7 .*lower the learning rate") as info:
        E.train(_NanAfter(tiny_net(), 7), data, small(epochs=3), progress=False)
    run = info.value.run
    assert run.status == "diverged" and run.epochs == 1 and len(run.history) == 1


def test_first_ctrl_c_checkpoints_and_returns_interrupted(data, tmp_path):
    ck = tmp_path / "ck.pt"

    def press_ctrl_c(event, run, record):
        if event == "step" and record["step"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started in the background
    run = E.train(
        tiny_net(), data, small(), progress=False, checkpoint=ck, callbacks=[press_ctrl_c]
    )
    assert run.status == "interrupted" and "step 2" in run.message
    state = torch.load(ck, weights_only=True)
    assert state["progress"]["step"] == 2 and state["progress"]["batch_in_epoch"] == 2
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is restored


def _strip(records):
    return [
        {k: v for k, v in r.items() if k not in ("wall_time", "images_per_sec")} for r in records
    ]


@pytest.mark.slow
@pytest.mark.parametrize("stop_at", [("epoch", 1), ("step", 6)])
def test_resume_reproduces_the_uninterrupted_history(data, tmp_path, stop_at):
    config = small(epochs=3, deterministic=True)
    whole = E.train(tiny_net(), data, config, progress=False)
    ck = tmp_path / "ck.pt"

    def stop(event, run, record):
        if (event, record.get(event)) == stop_at:
            raise E.StopTraining

    first = E.train(tiny_net(), data, config, progress=False, checkpoint=ck, callbacks=[stop])
    assert first.status == "stopped" and first.epochs < 3
    resumed = E.train(tiny_net(seed=99), data, config, progress=False, checkpoint=ck, resume=True)
    assert resumed.status == "completed" and resumed.id == first.id
    assert _strip(resumed.history) == _strip(whole.history)
    assert _strip(resumed.steps) == _strip(whole.steps)
    for a, b in zip(
        whole.model.state_dict().values(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


# ----------------------------------------------------------------------------- state and step

CPU = torch.device("cpu")


def _batch(data, i: int, n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    x = data.train_x[i * n : (i + 1) * n].float() / 255 - 0.5  # (n, 3, 32, 32)
    return x, data.train_y[i * n : (i + 1) * n]


def _state(seed: int, fp16: bool) -> E.TrainState:
    torch.manual_seed(seed)
    model = nn.Sequential(tiny_net(seed), nn.Dropout(0.3))  # dropout: the RNG state matters
    config = small()
    opt = E.make_optimizer(model, config, lr=0.05)
    # enabled on the CPU too: its state (scale, growth tracker) must round-trip
    scaler = torch.amp.GradScaler("cpu", enabled=fp16, growth_interval=2)
    run = E.Run(model_name="tiny", config=config, data={"variant": "synthetic"})
    layers = ["0.0", "0.4", "0.8"]
    return E.TrainState(
        model, opt, scaler, run, E.Mean(["train_loss", "train_error"], CPU), E.Mean(layers, CPU)
    )


def _advance(state: E.TrainState, data, batches: range) -> None:
    """What train() does with a state, by hand: steps, meters, counters, an epoch record."""
    weights = [state.model[0][i].weight for i in (0, 4, 8)]
    for i in batches:
        x, y = _batch(data, i)
        out = E.train_step(state.model, state.optimizer, state.scaler, x, y, norms_of=weights)
        state.train_meter.add(len(y), out.loss.double() * len(y), (out.logits.argmax(1) != y).sum())
        state.grad_meter.add(1, out.grad_norms)
        state.step, state.batch_in_epoch = state.step + 1, state.batch_in_epoch + 1
    means, _ = state.train_meter.compute()
    state.run.history.append({"step": state.step, **means})


@pytest.mark.parametrize("fp16", [False, True])
def test_a_train_state_restored_from_its_state_dict_continues_exactly(data, tmp_path, fp16):
    from resnet_lab import checkpoint as C

    whole = _state(0, fp16)
    _advance(whole, data, range(0, 2))
    C.save_checkpoint(whole.state_dict(), tmp_path / "s.pt")
    _advance(whole, data, range(2, 5))

    resumed = _state(99, fp16)  # other weights and RNG: everything must come from the file
    resumed.load_state_dict(C.load_checkpoint(tmp_path / "s.pt"))  # weights_only=True
    assert (resumed.step, resumed.batch_in_epoch, len(resumed.run.history)) == (2, 2, 1)
    assert resumed.run.id == whole.run.id
    _advance(resumed, data, range(2, 5))

    a, b = whole.state_dict(), resumed.state_dict()
    for state in (a, b):
        del state["progress"]["epoch_train_time"], state["wall_time"]  # clock readings
    assert set(a) == set(b) and bool(a["scaler"]) == fp16
    for key in a:
        assert _identical(a[key], b[key]), key


def _identical(a, b) -> bool:
    """Equal, tensors bit for bit, however nested."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(_identical(a[k], b[k]) for k in a)
        )
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_train_step_with_a_disabled_scaler_is_one_plain_sgd_step(data):
    x, y = _batch(data, 0)
    model, by_hand = tiny_net(), tiny_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt_by_hand = torch.optim.SGD(by_hand.parameters(), lr=0.1, momentum=0.9)
    scaler = E.make_scaler(CPU, None)
    assert not scaler.is_enabled() and not E.make_scaler(CPU, torch.bfloat16).is_enabled()
    out = E.train_step(model, opt, scaler, x, y)
    loss = nn.functional.cross_entropy(by_hand(x), y)
    opt_by_hand.zero_grad()
    loss.backward()
    opt_by_hand.step()
    assert torch.equal(out.loss, loss.detach()) and out.logits.shape == (32, 10)
    assert out.grad_norms is None and not out.loss.requires_grad
    for p, q in zip(model.parameters(), by_hand.parameters(), strict=True):
        assert torch.equal(p, q)
    # weight scales the gradient (DDP's share of an uneven batch); the norms are of it
    norms = []
    for weight in (1.0, 0.5):
        net = tiny_net()
        sgd = torch.optim.SGD(net.parameters(), lr=0.1)
        out = E.train_step(net, sgd, scaler, x, y, weight=weight, norms_of=[net[0].weight])
        norms.append(out.grad_norms)
    assert torch.equal(norms[1], norms[0] / 2)


def test_train_step_with_an_enabled_scaler_unscales_and_skips_an_overflow(data):
    x, y = _batch(data, 0)
    nets = [tiny_net(), tiny_net()]
    opts = [E.make_optimizer(n, small(), lr=0.1) for n in nets]  # fused SGD where torch has it
    scaled = torch.amp.GradScaler("cpu", init_scale=2.0**10, enabled=True)
    scalers = [scaled, E.make_scaler(CPU, None)]
    outs = [
        E.train_step(n, o, s, x, y, norms_of=[n[0].weight])
        for n, o, s in zip(nets, opts, scalers, strict=True)
    ]
    # A power-of-two loss scale is exact: the same step, and the norms of the true gradients.
    assert torch.equal(outs[0].grad_norms, outs[1].grad_norms)
    for p, q in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.equal(p, q)
    # An inf in the batch makes the gradients non-finite: the step is skipped, the scale halved.
    before = [p.detach().clone() for p in nets[0].parameters()]
    bad = x.clone()
    bad[0] = float("inf")
    out = E.train_step(nets[0], opts[0], scaled, bad, y, norms_of=[nets[0][0].weight])
    assert not torch.isfinite(out.grad_norms).all() and scaled.get_scale() == 2.0**9
    assert all(torch.equal(p, q) for p, q in zip(nets[0].parameters(), before, strict=True))


def test_mean_sums_in_place_and_measures_since_a_mark():
    m = E.Mean(["loss", "error"], CPU)
    assert m.total.dtype == torch.float64 and m.compute() == ({"loss": 0.0, "error": 0.0}, 0.0)
    m.add(2, torch.tensor(3.0), torch.tensor(1))
    mark = m.mark()
    m.add(4, torch.tensor(2.0), torch.tensor(2))
    assert m.compute() == ({"loss": 5 / 6, "error": 3 / 6}, 6.0)
    assert m.compute(since=mark) == ({"loss": 0.5, "error": 0.5}, 4.0)
    per_layer = E.Mean(["a", "b"], CPU)  # one vector of sums, a tensor weight
    per_layer.add(torch.tensor(True), torch.tensor([2.0, 4.0]))
    per_layer.add(torch.tensor(False), torch.tensor([0.0, 0.0]))
    assert per_layer.compute() == ({"a": 2.0, "b": 4.0}, 1.0)
    m.reset()
    assert m.compute()[1] == 0.0


def test_the_suite_times_the_engines_train_step(monkeypatch):
    from resnet_lab import suite

    calls = []
    real = E.train_step
    monkeypatch.setattr(E, "train_step", lambda *a, **k: calls.append(a[5:]) or real(*a, **k))
    sizes = suite.Sizes(rounds=1, warmup=0, images_per_round=8)
    r = suite.time_training_steps("resnet20", 2, synthetic(8, 2, seed=0), CPU, sizes)
    assert len(calls) == 4 and r["images_per_sec"] > 0  # at least 4 timed steps
    assert all(dtype is torch.bfloat16 for _, dtype in calls)


def test_evaluate_reports_loss_error_and_needs_stats_for_uint8(data):
    net = tiny_net()
    out = E.evaluate(net, data.test_x, data.test_y, data.mean, data.std, batch_size=16)
    assert out["error"] == pytest.approx(1 - out["accuracy"]) and out["loss"] > 0
    with pytest.raises(ValueError, match="mean= and std="):
        E.evaluate(net, data.test_x, data.test_y)
    mean = torch.tensor(data.mean).view(1, 3, 1, 1)
    std = torch.tensor(data.std).view(1, 3, 1, 1)
    pre = E.evaluate(net, (data.test_x / 255 - mean) / std, data.test_y)
    assert pre["loss"] == pytest.approx(out["loss"], rel=1e-5)


@pytest.mark.parametrize("native_bf16, auto", [(False, None), (True, torch.bfloat16)])
def test_amp_choice_by_hardware(monkeypatch, native_bf16, auto):
    from resnet_lab import runtime

    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: native_bf16)
    cpu = torch.device("cpu")
    assert E.amp_dtype("auto", cpu) is auto  # bf16 only where the CPU computes it natively
    assert E.amp_dtype("bf16", cpu) is torch.bfloat16
    assert E.amp_dtype("off", torch.device("cuda")) is None


@pytest.mark.parametrize(
    "capability, dtype",
    [((7, 5), torch.float16), ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)],
)
def test_auto_amp_is_fp16_on_a_t4_and_bf16_from_ampere_on(monkeypatch, capability, dtype):
    # torch >= 2.4 says a T4 "supports" bf16 (emulated, slow): the choice must not ask that.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    assert E.amp_dtype("auto", torch.device("cuda")) is dtype


def test_running_sums_avoid_float64_on_mps():
    assert E.sum_dtype(torch.device("mps")) is torch.float32
    assert E.sum_dtype(torch.device("cpu")) is torch.float64


class _OomNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 10)

    def forward(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_out_of_memory_names_a_smaller_batch_size(data):
    with pytest.raises(E.OutOfMemory, match=r"batch size 32.*batch_size=16") as info:
        E.train(_OomNet(), data, small(), progress=False)
    assert info.value.run.status == "out_of_memory"
    # Raised with no chained exception and the batch dropped from the training frame, so a
    # notebook that keeps the error does not keep the GPU memory of the failed step.
    exc = info.value
    assert exc.__cause__ is None and exc.__context__ is None
    frame = exc.__traceback__.tb_next.tb_frame  # train()
    assert frame.f_code.co_name == "train"
    assert all(frame.f_locals.get(k) is None for k in ("x", "out", "loss", "train_loader"))


class _EvalOomNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = tiny_net()

    def forward(self, x):
        if not self.training:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")
        return self.net(x)


def test_out_of_memory_while_evaluating_names_the_evaluation_batch(data):
    with pytest.raises(E.OutOfMemory, match=r"evaluating batches of 64.*eval_batch_size=32"):
        E.train(_EvalOomNet(), data, small(), progress=False)


def test_out_of_memory_while_moving_the_data_suggests_a_subset(data, monkeypatch):
    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(E.loop, "GpuLoader", oom)
    with pytest.raises(E.OutOfMemory, match=r"does not fit.*train_per_class=N") as info:
        E.train(tiny_net(), data, small(), progress=False)
    assert info.value.run is None


def test_nan_at_an_epoch_end_is_caught_before_the_epoch_is_recorded(data, monkeypatch):
    # On a GPU the NaN check runs every few dozen steps; an epoch's record must not hold NaN.
    monkeypatch.setattr(E.loop, "nan_check_interval", lambda device, config: 50)
    steps = len(E.loop.GpuLoader(data.train_x, data.train_y, 32, True, data.mean, data.std, "cpu"))
    with pytest.raises(E.TrainingDiverged) as info:
        E.train(
            _NanAfter(tiny_net(), steps - 1),
            data,
            small(epochs=2, log_every_steps=0),
            progress=False,
        )
    assert info.value.run.history == []


# ----------------------------------------------------------------------------- test curves


def test_eval_every_steps_adds_test_points_without_changing_training(data):
    # 160 images / batch 32 = 5 steps an epoch; the epoch's end evaluates anyway.
    plain = E.train(tiny_net(), data, small(deterministic=True), progress=False)
    config = small(deterministic=True, eval_every_steps=2, log_every_steps=0)
    run = E.train(tiny_net(), data, config, progress=False)
    assert [s["step"] for s in run.steps if "test_error" in s] == [2, 4, 6, 8]
    assert all(0 <= s["test_error"] <= 1 and s["test_loss"] > 0 for s in run.steps)
    assert _strip(run.history) == _strip(plain.history)  # evaluating left training alone


def test_eval_every_steps_must_not_be_negative():
    with pytest.raises(ValueError, match="eval_every_steps"):
        small(eval_every_steps=-1).validate()


def test_step_evaluation_at_an_epoch_end_that_does_not_evaluate(data):
    config = small(eval_every=2, eval_every_steps=5, log_every_steps=0)
    run = E.train(tiny_net(), data, config, progress=False)
    assert [h["test_error"] is not None for h in run.history] == [False, True]
    assert [s["step"] for s in run.steps if "test_error" in s] == [5]  # epoch 1 ends untested


def test_optimizer_is_sgd_with_the_configured_hyper_parameters():
    config = E.recipe("paper")
    net = tiny_net()
    opt = E.make_optimizer(net, config, lr=0.05)
    assert isinstance(opt, torch.optim.SGD)
    d = opt.defaults
    assert (d["lr"], d["momentum"], d["weight_decay"], d["nesterov"]) == (0.05, 0.9, 1e-4, False)
    assert bool(d.get("fused")) == E.fused_sgd_supported(net)
    with torch.device("meta"):  # a device without a fused kernel: plain SGD, no error
        meta = tiny_net()
    assert not E.fused_sgd_supported(meta)
    assert not E.make_optimizer(meta, config, lr=0.05).defaults.get("fused")


def test_trains_like_ignores_bookkeeping_and_fields_added_later():
    config = E.recipe("paper", epochs=2, eval_every_steps=130, log_every_steps=20)
    stored = E.recipe("paper", epochs=2).to_dict()
    del stored["eval_every_steps"]  # a run saved before the field existed
    assert config.trains_like(stored)
    assert not config.trains_like(E.recipe("paper", epochs=1).to_dict())
    assert not config.trains_like({**stored, "lr": 0.2})


def test_snapshot_steps_keep_the_weights_of_those_steps(data, tmp_path):
    ck = tmp_path / "run" / "ck.pt"
    seen = {}

    def keep(event, run, record):
        if event == "step" and record["step"] == 4:
            seen[4] = {k: v.detach().clone() for k, v in run.model.state_dict().items()}

    initial = {k: v.clone() for k, v in tiny_net().state_dict().items()}
    run = E.train(
        tiny_net(),
        data,
        small(snapshot_steps=(0, 4, 10)),  # 2 epochs of 5 steps: 10 is the last step
        progress=False,
        checkpoint=ck,
        callbacks=[keep],
    )
    folder = ck.parent / "snapshots"
    assert sorted(p.name for p in folder.iterdir()) == [
        "step-000000.pt",
        "step-000004.pt",
        "step-000010.pt",
    ]
    for step, expected in ((0, initial), (4, seen[4]), (10, run.model.state_dict())):
        saved = torch.load(folder / f"step-{step:06d}.pt", weights_only=True)
        assert saved["step"] == step
        assert all(torch.equal(saved["model"][k], v) for k, v in expected.items())
    assert run.config.to_dict()["snapshot_steps"] == [0, 4, 10]
    assert E.TrainConfig.from_dict(run.config.to_dict()).snapshot_steps == (0, 4, 10)


def test_snapshot_steps_must_be_step_counts():
    with pytest.raises(ValueError, match="snapshot_steps"):
        E.recipe("fast", snapshot_steps=(-1,))
