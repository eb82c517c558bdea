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
        config = E.recipe("fast", epochs=2, batch_size=16, lr=0.05, log_every_steps=0,
                          eval_batch_size=16)
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


def test_single_process_context_is_a_no_op():
    ctx = distributed.context()
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.is_distributed) == (0, 1, True, False)
    t = torch.ones(2)
    assert torch.equal(distributed.all_reduce_sum(t), torch.ones(2))


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RESNET_LAB_DEVICE": "cpu"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
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
