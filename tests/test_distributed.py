"""DistributedDataParallel: two CPU processes (gloo) train like one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from resnet_lab import distributed
from resnet_lab import engine as E

# No BatchNorm: with it, each process would normalise over its half batch, and the
# two runs would differ by design (SyncBatchNorm is the cure), not by a bug.
SETUP = textwrap.dedent(
    """
    import torch
    from torch import nn
    from resnet_lab import engine as E
    from resnet_lab.data import synthetic

    def setup():
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4),
                            nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                            nn.Flatten(), nn.Linear(8, 10))
        data = synthetic(72, 30, seed=1)  # 72 = 4 full batches of 16 and one of 8
        # fp32 on every CPU: the comparison is of the arithmetic, bf16 rounding would hide it
        config = E.recipe("fast", epochs=2, batch_size=16, lr=0.05, log_every_steps=0,
                          eval_batch_size=16, amp="off", grad_norms=True)
        return net, data, config
    """
)

WORKER = SETUP + textwrap.dedent(
    """
    import sys
    from resnet_lab import distributed

    ctx = distributed.init_from_env()
    assert ctx.world_size == 2, ctx
    net, data, config = setup()
    run = E.train(net, data, config, progress=False, name="ddp")
    if ctx.is_main:
        torch.save({"state": net.state_dict(), "history": run.history}, sys.argv[1])
    distributed.cleanup()
    """
)


def _torchrun_two(worker: str, out):
    """Run ``worker`` (a script's text) in two gloo processes on the CPU; returns ``out``."""
    script = out.parent / "worker.py"
    script.write_text(worker)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RESNET_LAB_DEVICE": "cpu"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_single_process_context_is_a_no_op():
    ctx = distributed.context()
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.is_distributed) == (0, 1, True, False)
    t = torch.ones(2)
    assert torch.equal(distributed.all_reduce_sum(t), torch.ones(2))


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    out = _torchrun_two(WORKER, tmp_path / "ddp.pt")
    ddp = torch.load(out, weights_only=True)

    namespace: dict = {}
    exec(SETUP, namespace)  # noqa: S102 - the same setup as the workers
    net, data, config = namespace["setup"]()
    single = E.train(net, data, config, progress=False, name="ddp")

    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(ddp["state"][key], value, rtol=1e-4, atol=1e-5)
    assert len(ddp["history"]) == len(single.history) == 2
    for a, b in zip(ddp["history"], single.history, strict=True):
        assert a["step"] == b["step"] == (5 if a["epoch"] == 1 else 10)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["train_error"] == pytest.approx(b["train_error"], abs=1e-6)
        assert a["test_error"] == pytest.approx(b["test_error"], abs=1e-6)
        # the norms of the averaged gradients, not divided by the number of processes
        assert a["grad_norms"] == pytest.approx(b["grad_norms"], rel=1e-4)


BN_WORKER = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    from torch import nn
    from resnet_lab import distributed
    from resnet_lab import engine as E
    from resnet_lab.data import synthetic

    ctx = distributed.init_from_env()
    out = {}

    def bn_net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

    data = synthetic(64, 40, seed=1)
    config = E.recipe("fast", epochs=2, batch_size=16, lr=0.05, log_every_steps=1,
                      eval_batch_size=16)
    net = bn_net()
    run = E.train(net, data, config, progress=False, name="ddp-bn")
    out["buffers"] = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    out["test_error"] = run.history[-1]["test_error"]
    if ctx.is_main:  # evaluate() on one process alone must not wait for the other
        out["alone"] = E.evaluate(net, data.test_x, data.test_y, data.mean, data.std)["error"]

    def interrupt_rank1(event, run, record):
        if event == "step" and ctx.rank == 1 and record["step"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C reaches one process only

    run = E.train(bn_net(), data, config, progress=False, name="ddp-int",
                  checkpoint=sys.argv[1] + ".ckpt", callbacks=[interrupt_rank1])
    out["status"], out["steps_done"] = run.status, run.steps[-1]["step"]
    torch.save(out, f"{sys.argv[1]}.{ctx.rank}")
    distributed.cleanup()
    """
)


@pytest.mark.slow
def test_ddp_batchnorm_evaluation_and_ctrl_c_on_one_process(tmp_path):
    out = _torchrun_two(BN_WORKER, tmp_path / "out")
    r0, r1 = (torch.load(f"{out}.{r}", weights_only=True) for r in (0, 1))
    # One set of BatchNorm statistics (rank 0's) is evaluated and saved on every process,
    # so the reported test error is the saved model's, measured alone.
    for key, value in r0["buffers"].items():
        torch.testing.assert_close(r1["buffers"][key], value)
    assert r0["test_error"] == r1["test_error"] == pytest.approx(r0["alone"], abs=1e-6)
    # A Ctrl-C that reaches one process stops both at the same step, with a checkpoint.
    assert r0["status"] == r1["status"] == "interrupted"
    assert r0["steps_done"] == r1["steps_done"] >= 2
    assert (tmp_path / "out.ckpt").exists()
