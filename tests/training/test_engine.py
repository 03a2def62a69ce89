"""The training loop: gradient accumulation, clipping (also through a GradScaler), EMA, mixup/cutmix,
AMP and the images/s count, each on a real model trained for a few steps."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from timm.utils import ModelEmaV3
from torch import nn

from imgclf.models.factory import build_loss, build_model
from imgclf.planning.hardware import CPU_BF16_SAFE_SIDE
from imgclf.training import engine
from imgclf.training.engine import (
    Runtime,
    StepHooks,
    amp_dtype,
    make_runtime,
    predict_logits,
    probabilities,
    train_one_epoch,
)
from tests.helpers.trainkit import IMAGENET, class_images, cpu_runtime, fit, loader_of, params_of, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def _no_batch_stats_model() -> nn.Module:
    """A real timm model with LayerNorm only: its loss on a batch does not depend on batch statistics,
    so k micro-batches must reproduce one big batch exactly (up to float rounding)."""
    torch.manual_seed(0)
    return timm.create_model("test_vit", pretrained=False, num_classes=3, img_size=16, patch_size=4)


def _one_update(model: nn.Module, batch_size: int, accum: int, images: np.ndarray,
                labels: np.ndarray) -> StepHooks:
    cfg = tiny_config(f"train.batch_size={batch_size}")
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    hooks = StepHooks(accum_steps=accum)
    train_one_epoch(model, loader_of(images, labels, cfg, seed=3), nn.CrossEntropyLoss(), opt,
                    cpu_runtime(cfg), hooks)
    return hooks


def test_accumulating_k_batches_equals_one_k_times_bigger_batch():
    images, labels = class_images(32)
    init = _no_batch_stats_model()
    small, big = _no_batch_stats_model(), _no_batch_stats_model()
    assert _one_update(small, 8, 4, images, labels).updates == 1
    assert _one_update(big, 32, 1, images, labels).updates == 1
    moved = max((b - a).abs().max().item() for a, b in zip(init.parameters(), big.parameters(), strict=True))
    diff = max((b - s).abs().max().item() for s, b in zip(small.parameters(), big.parameters(), strict=True))
    assert moved > 1e-3  # the update is real ...
    assert diff < 1e-6 * max(1.0, moved) * 10  # ... and identical up to float rounding
    # without accumulation, 4 updates of batch 8 land elsewhere
    other = _no_batch_stats_model()
    assert _one_update(other, 8, 1, images, labels).updates == 4
    assert max((b - o).abs().max().item()
               for o, b in zip(other.parameters(), big.parameters(), strict=True)) > 1e-4


def test_accumulation_flushes_a_short_last_window():
    images, labels = class_images(40)  # 5 batches of 8, accum 2: windows of 2, 2 and 1 batches
    hooks = _one_update(_no_batch_stats_model(), 8, 2, images, labels)
    assert hooks.updates == 3 and hooks.epoch_images == 40


def test_accumulation_trains():
    result = fit(tiny_config("train.accum_steps=2", "train.batch_size=8"), epochs=3, n=64)
    assert result["hooks"].updates == 3 * 4
    assert result["losses"][-1] < 0.7 * result["losses"][0] and result["accuracy"] > 0.8


def _step_norm(rt: Runtime, clip: float | None) -> float:
    cfg = tiny_config()
    images, labels = class_images(16)
    model = _no_batch_stats_model()
    before = params_of(model)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    train_one_epoch(model, loader_of(images, labels, cfg), nn.CrossEntropyLoss(), opt, rt,
                    StepHooks(clip_grad=clip))
    return torch.cat([(p.detach() - before[k]).flatten() for k, p in model.named_parameters()]).norm().item()


def test_gradient_clipping_bounds_the_update():
    rt = cpu_runtime(tiny_config())
    free = _step_norm(rt, None)
    assert free > 0.1
    assert _step_norm(rt, 0.01) == pytest.approx(0.01, rel=1e-3)  # lr 1: the update is the clipped gradient


def test_gradient_clipping_unscales_a_grad_scaler_first():
    """The fp16 path: scaled gradients must be unscaled before clipping, else the clip acts on
    gradients 65536x too big and the step is 65536x too small."""
    rt = cpu_runtime(tiny_config())
    rt.scaler = torch.amp.GradScaler("cpu")
    assert _step_norm(rt, 0.01) == pytest.approx(0.01, rel=1e-3)
    assert rt.scaler.get_scale() == 65536.0  # finite gradients: the step was taken, the scale kept


def test_clipped_training_still_learns():
    result = fit(tiny_config("train.clip_grad=1.0"), epochs=3, n=64)
    assert result["losses"][-1] < 0.7 * result["losses"][0]


def test_ema_weights_trail_the_model():
    cfg = tiny_config()
    model = build_model(cfg, 3)
    init = params_of(model)
    ema = ModelEmaV3(model, decay=0.9, use_warmup=True)
    result = fit(cfg, epochs=2, n=64, model=model, hooks=StepHooks(ema=ema))
    trained, averaged = params_of(result["model"]), params_of(ema.module)

    def dist(a, b):
        return sum((a[k] - b[k]).norm().item() ** 2 for k in a) ** 0.5

    assert dist(averaged, trained) > 1e-4  # the EMA is its own set of weights ...
    assert dist(averaged, init) > 1e-2  # ... that moved during training ...
    assert dist(averaged, trained) < dist(init, trained)  # ... towards the model's
    assert result["hooks"].updates == 8


def _conv_weight_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor, rt: Runtime) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    with rt.autocast():
        loss = nn.functional.cross_entropy(model(rt.to_input(x)), y)
    loss.backward()
    return [m.weight.grad.float().clone() for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_bf16_autocast_on_cpu_trains_and_its_gradients_match_fp32():
    """Explicit bf16 on CPU at 32 px: every convolution's weight gradient stays within bf16's
    rounding of fp32's (16% of its norm at most, measured) in repeated calls, and three epochs train."""
    cfg = tiny_config("train.amp=bf16", "data.image_size=32")
    rt = make_runtime(cfg, torch.device("cpu"), *IMAGENET)
    assert rt.amp_dtype == torch.bfloat16 and rt.scaler is None
    assert cpu_runtime(tiny_config()).amp_dtype is None  # auto: fp32 for small images on any CPU
    images, labels = class_images(64, side=32, seed=1)
    torch.manual_seed(0)
    model = build_model(cfg, 3)
    x, y = torch.from_numpy(images[:16]), torch.from_numpy(labels[:16])
    fp32 = _conv_weight_grads(model, x, y, cpu_runtime(tiny_config()))
    assert sum(int(ref.any()) for ref in fp32) > 5  # (zero-initialised last norms leave some at 0)
    for _ in range(5):
        for low, ref in zip(_conv_weight_grads(model, x, y, rt), fp32, strict=True):
            assert (low - ref).norm() <= 0.3 * ref.norm() + 1e-9
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    loss_fn = build_loss(cfg, np.bincount(labels))
    losses = [train_one_epoch(model, loader_of(images, labels, cfg, seed=e), loss_fn, opt, rt, StepHooks())
              for e in range(3)]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_bf16_strided_convolutions_are_right_from_the_safe_side_on():
    """A 32x-downsampling network's last strided 3x3 convolution sees maps of ``CPU_BF16_SAFE_SIDE``
    / 16 px. oneDNN's bf16 weight gradient of one that sees a 1x1 map comes back as garbage in
    20-70% of calls (torch 2.14.1): were the safe side 16, most of these 40 fresh convolutions
    would fail here."""
    torch.manual_seed(0)
    side = CPU_BF16_SAFE_SIDE // 16
    for _ in range(40):
        conv = nn.Conv2d(64, 64, 3, stride=2, padding=1, bias=False)
        ref = nn.Conv2d(64, 64, 3, stride=2, padding=1, bias=False)
        ref.load_state_dict(conv.state_dict())
        x = torch.randn(16, 64, side, side)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            conv(x).float().sum().backward()
        ref(x).sum().backward()
        assert (conv.weight.grad - ref.weight.grad).abs().max() <= 0.02 * ref.weight.grad.abs().max()


def test_amp_dtype_choice(monkeypatch):
    """bf16 where the GPU supports it, else fp16 (which make_runtime pairs with a GradScaler);
    checked without a GPU by faking the capability query."""
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert amp_dtype(tiny_config(), cuda) == torch.float16
    assert amp_dtype(tiny_config("train.amp=bf16"), cuda) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_dtype(tiny_config(), cuda) == torch.bfloat16
    assert amp_dtype(tiny_config("train.amp=fp16"), cuda) == torch.float16
    assert amp_dtype(tiny_config("train.amp=off"), cuda) is None
    assert amp_dtype(tiny_config("train.amp=fp16"), cpu) is None


@pytest.mark.parametrize("matrix_units", [True, False])
def test_cpu_autocast_is_bf16_only_where_it_pays(monkeypatch, matrix_units):
    """auto on CPU: bf16 (and channels_last with it) for images of 48 px and more on a CPU with bf16
    matrix units, where it trains 1.4-1.8x faster; fp32 below 48 px (small maps leave the tiles
    idle: slower) and on other CPUs."""
    monkeypatch.setattr(engine, "cpu_has_bf16_matrix_units", lambda: matrix_units)
    cpu = torch.device("cpu")
    for side, wanted in ((64, matrix_units), (48, matrix_units), (40, False), (16, False)):
        cfg = tiny_config(f"data.image_size={side}")
        rt = make_runtime(cfg, cpu, *IMAGENET)
        assert (rt.amp_dtype == torch.bfloat16) is wanted and rt.channels_last is wanted, side
        assert rt.scaler is None
    assert amp_dtype(tiny_config("data.image_size=64", "train.amp=off"), cpu) is None
    assert amp_dtype(tiny_config("data.image_size=32", "train.amp=bf16"), cpu) == torch.bfloat16
    assert amp_dtype(tiny_config("data.image_size=16", "train.amp=bf16"), cpu) is None  # 1x1 maps: fp32
    assert not make_runtime(tiny_config("data.image_size=64", "train.channels_last=false"), cpu,
                            *IMAGENET).channels_last


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp16_grad_scaler_training_on_cuda():
    cfg = tiny_config("train.amp=fp16", "device=cuda")
    rt = make_runtime(cfg, torch.device("cuda"), *IMAGENET)
    rt.progress = False
    images, labels = class_images(64, seed=1)
    model = build_model(cfg, 3).cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = [train_one_epoch(model, loader_of(images, labels, cfg, seed=e), nn.CrossEntropyLoss(), opt, rt,
                              StepHooks(clip_grad=1.0)) for e in range(3)]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_images_seen_counts_the_real_batches():
    cfg = tiny_config()
    model, rt = build_model(cfg, 3), cpu_runtime(cfg)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for n, seen in ((40, 32), (10, 10)):  # 40: two full batches of 16, the rest dropped; 10: one short batch
        images, labels = class_images(n)
        hooks = StepHooks()
        train_one_epoch(model, loader_of(images, labels, cfg), nn.CrossEntropyLoss(), opt, rt, hooks)
        assert hooks.epoch_images == seen


def test_non_finite_loss_stops_training():
    cfg = tiny_config()
    images, labels = class_images(16)
    model = build_model(cfg, 3)
    with pytest.raises(FloatingPointError):
        train_one_epoch(model, loader_of(images, labels, cfg), lambda out, y: out.sum() * float("nan"),
                        torch.optim.SGD(model.parameters(), lr=0.01), cpu_runtime(cfg), StepHooks())


def test_predict_logits_tta_merging():
    cfg = tiny_config()
    images, labels = class_images(12)
    model, rt = build_model(cfg, 3).eval(), cpu_runtime(cfg)
    loader = loader_of(images, labels, cfg, train=False)
    plain, rows = predict_logits(model, loader, rt)
    assert np.array_equal(rows, np.arange(12))
    with torch.no_grad():
        x = rt.to_input(torch.from_numpy(images))
        direct = model(x).numpy()
        flipped = model(x.flip(-1)).numpy()
    assert np.allclose(plain, direct, atol=1e-5)
    by_logit, _ = predict_logits(model, loader, rt, ["identity", "hflip"], merge="logit")
    assert np.allclose(by_logit, (direct + flipped) / 2, atol=1e-5)
    by_prob, _ = predict_logits(model, loader, rt, ["identity", "hflip"], merge="prob")
    probs = (torch.softmax(torch.from_numpy(direct), 1) + torch.softmax(torch.from_numpy(flipped), 1)) / 2
    assert np.allclose(np.exp(by_prob), probs.numpy(), atol=1e-5)


def test_multilabel_tta_averages_sigmoid_probabilities():
    """Multi-label outputs are independent sigmoids: TTA averages them, not a softmax over labels;
    the loader carries the 0/1 label vectors as float targets."""
    cfg = tiny_config()
    images, _ = class_images(12)
    vectors = (np.arange(12 * 6).reshape(12, 6) % 3 == 0).astype(int)
    model, rt = build_model(cfg, 6).eval(), cpu_runtime(cfg)
    loader = loader_of(images, vectors, cfg, train=False)
    _, target, _ = next(iter(loader))
    assert target.dtype == torch.float32
    assert torch.equal(target, torch.from_numpy(vectors[:len(target)]).float())
    merged, _ = predict_logits(model, loader, rt, ["identity", "hflip"], merge="prob", multi_label=True)
    with torch.no_grad():
        x = rt.to_input(torch.from_numpy(images))
        mean = (torch.sigmoid(model(x)) + torch.sigmoid(model(x.flip(-1)))) / 2
    assert np.allclose(probabilities(merged, True), mean.numpy(), atol=1e-5)
