"""The fused SAT attention (gate folded into V) equals the step-by-step form of the
authors' code: softmax, multiply by the gate, matmul."""

import torch
from conftest import micro_config

from wsolbench.core.registry import METHODS


def _pair():
    sat = METHODS.get("sat")()
    nets = []
    for fused in (True, False):
        cfg = micro_config(options={"fused": fused}, drop_path=0.0)
        torch.manual_seed(0)
        nets.append((sat.build(cfg, 5).double(), cfg))
    nets[1][0].load_state_dict(nets[0][0].state_dict())
    return sat, nets


def test_fused_equals_step_by_step_outputs_and_gradients():
    sat, ((fused, cfg), (manual, _)) = _pair()
    torch.manual_seed(1)
    x = torch.randn(3, 3, 64, 64, dtype=torch.double)
    labels = torch.tensor([0, 3, 4])
    results = []
    for net in (fused, manual):
        net.train()
        out = net(x)
        loss, _ = sat.loss(out, labels, cfg, spatial_weight=1.0)
        net.zero_grad()
        loss.backward()
        grads = {n: p.grad.clone() for n, p in net.named_parameters()}
        results.append((out.logits.detach(), out.maps.detach(), grads))
    (l1, m1, g1), (l2, m2, g2) = results
    torch.testing.assert_close(l1, l2, atol=1e-5, rtol=0)
    torch.testing.assert_close(m1, m2, atol=1e-5, rtol=0)
    assert g1.keys() == g2.keys()
    for name in g1:
        torch.testing.assert_close(g1[name], g2[name], atol=1e-5, rtol=0, msg=name)
    # The gate must actually matter, or the comparison proves nothing.
    assert g1["spatial_token"].abs().sum() > 0
    assert m1.shape == (3, 8, 8) and 0 < m1.min() and m1.max() < 1


def test_gate_changes_the_output():
    """Gating the keys is not a no-op: gating fewer blocks changes the logits."""
    sat, ((net, _), _) = _pair()
    net.eval()
    x = torch.randn(2, 3, 64, 64, dtype=torch.double)
    gated = net(x).logits
    net.sat_blocks, saved = 1, net.sat_blocks
    fewer = net(x).logits
    net.sat_blocks = saved
    assert not torch.allclose(gated, fewer)
