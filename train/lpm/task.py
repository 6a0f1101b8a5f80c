"""The three LPM training stages (`train/models/lpm.py` has the model and the maths).

* `LpmBaseTask`    rectified flow on high-quality residual detail, no condition: the DiT
                   learns what detail looks like (the seed's "generative power").
* `LpmControlTask` the same flow conditioned on the low-quality frame through a
                   ControlNet over the frozen base (fidelity); its 25-step sampler is the
                   teacher.
* `LpmDistillTask` consistency distillation to one step: at a random step n of the
                   teacher's grid, the student's endpoint from ``x_{t_n}`` must match the
                   EMA target's endpoint from one teacher Euler step further,
                   ``x_{t_{n+1}}`` (Song et al., 2023; the boundary f(x, 1) = x holds by
                   the parameterisation).

Each stage reports, at the end, the flow loss on held-out images and (control, distill)
PSNR-Y on the evaluation folders at its sampler steps beside bicubic, through the same
tiling and sampler code as the runtime (`vq.stages.enhance.enhance_generative`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vq.errors import UsageError
from vq.eval.metrics.image import psnr_y, to_uint8
from vq.media.sources import Pair, bicubic_upscale, load_pairs
from vq.stages.enhance import enhance_generative
from vq.train import starting_points
from vq.train.lpm.config import LpmConfig
from vq.train.lpm.input_pipeline import PairSource, facts, load_pair_sources, random_crops
from vq.train.models import create_model, model_def
from vq.train.models.lpm import (
    anchor_image,
    build_control_from_base,
    student_endpoint,
    velocity_from_endpoint,
)

EVAL_CROPS = 64  # held-out crops for the flow loss
EVAL_TIMES = (0.1, 0.5, 0.9)
SCALE_CROPS = 256  # training crops the anchored residual's std is measured on


T_ZERO_SHARE = 0.1  # rows trained at t = 0 exactly: where every sample (and a one-step model) starts
T_UNIFORM_SHARE = 0.4  # rows at t ~ U(0, 1): every step of a multi-step sampler is trained


def flow_times(rng: jax.Array, n: int) -> jax.Array:
    """Training times: a mixture of t = 0 (10 %), U(0, 1) (40 %) and JiT's logit-normal
    N(-0.8, 0.8) (50 %, the early, hard part of the path).

    The logit-normal alone never draws the ends: t = 0 is at minus infinity and t > 0.95
    beyond +5 sigma. A teacher trained on it alone carried its input noise into the t = 0
    endpoint (error-noise correlation 0.28, correlation with the truth 0.00) and overshot
    near t = 1 (endpoint norm 1.3x the truth at t = 0.96), so its 25-step samples were
    13 dB below bicubic on Set5 while one step was 1.4 dB below. At t = 0 the loss is
    plain regression of the conditional mean, ``|r_hat(z, 0) - r|^2``.
    """
    k_mix, k_u, k_n = jax.random.split(rng, 3)
    pick = jax.random.uniform(k_mix, (n,))
    logit_normal = jax.nn.sigmoid(-0.8 + 0.8 * jax.random.normal(k_n, (n,)))
    uniform = jax.random.uniform(k_u, (n,))
    return jnp.where(
        pick < T_ZERO_SHARE, 0.0, jnp.where(pick < T_ZERO_SHARE + T_UNIFORM_SHARE, uniform, logit_normal)
    )


LOSS_GAP = 0.5  # the velocity loss's 1 / (1 - t)^2 weight stops growing past t = 1 - LOSS_GAP


def flow_loss(endpoint, r: jax.Array, rng: jax.Array) -> jax.Array:
    """Rectified-flow loss on the velocity implied by the predicted endpoint at
    `flow_times`: ``|v(r_hat) - (r - z)|^2 = |r_hat - r|^2 / (1 - t)^2``, with the weight
    capped at ``1 / LOSS_GAP^2``. Uncapped, the 2 % of rows past t = 0.95 (weight up to
    400) carried most of the gradient once uniform times reached there (loss 6.7 against
    1.3 at step 150), starving t = 0, which a one-step model lives on."""
    k_t, k_z = jax.random.split(rng)
    t = flow_times(k_t, r.shape[0])
    z = jax.random.normal(k_z, r.shape)
    x = (1.0 - t)[:, None, None, None] * z + t[:, None, None, None] * r
    weight = 1.0 / jnp.maximum(1.0 - t, LOSS_GAP) ** 2
    return jnp.mean(weight[:, None, None, None] * (endpoint(x, t) - r) ** 2)


class _LpmTask:
    name = ""
    model_name = ""

    def __init__(self, config: LpmConfig):
        if not config.data:
            raise UsageError(f"vq train {self.name} needs --data (high-quality image folders)")
        self.config, self.seed = config, config.seed
        known = model_def(self.model_name).defaults
        self.model_kwargs: dict[str, Any] = {k: v for k, v in config.model_kwargs.items() if k in known}
        # The base has no residual_scale of its own: its flow is trained at the control
        # model's default (0.05, BSD100's residual std at x2), which the control then keeps.
        unknown = set(config.model_kwargs) - set(known) - {"control_blocks", "ema"}
        if unknown:
            raise UsageError(f"unknown model_kwargs {sorted(unknown)} (known: {sorted(known)})")
        kwargs = model_def(self.model_name).kwargs(**self.model_kwargs)
        self.scale, self.tile = kwargs["scale"], kwargs["tile"]
        self.residual_scale = kwargs.get(
            "residual_scale", model_def("lpm_control").defaults["residual_scale"]
        )
        self.train_sources = load_pair_sources(
            config.data, self.scale, config.holdout, "train", config.degraded, self.tile
        )
        self.heldout_sources = self._maybe_heldout()
        self.eval_sets: dict[str, list[Pair]] = {
            Path(d).name: load_pairs([d], self.scale) for d in config.eval_data
        }
        self.data_facts = {
            "train": facts(self.train_sources, config.data),
            "holdout_fraction": config.holdout,
            "holdout": [s.name for s in self.heldout_sources],
            "eval": {k: len(v) for k, v in self.eval_sets.items()},
        }

    def _maybe_heldout(self) -> list[PairSource]:
        try:
            return load_pair_sources(
                self.config.data, self.scale, self.config.holdout, "holdout", 0, self.tile
            )
        except UsageError:
            return []

    def batch(self, step: int, rows: range) -> dict[str, np.ndarray]:
        return random_crops(
            self.train_sources, self.seed, step, rows, self.tile, self.scale, self.config.clean_share
        )

    def residual(self, batch: dict[str, jax.Array], anchor: nnx.Module | None) -> tuple[jax.Array, jax.Array]:
        """(the anchor image, the normalised residual over it that the flow generates)."""
        up = jax.lax.stop_gradient(anchor_image(anchor, batch["lq"], self.scale))
        return up, (batch["hq"] - up) / self.residual_scale

    # -- evaluation -------------------------------------------------------------------------

    def heldout_flow_loss(self, velocity, anchor: nnx.Module | None) -> dict[str, float]:
        """Mean flow loss on fixed held-out crops at fixed t and noise (comparable across runs)."""
        if not self.heldout_sources:
            return {}
        batch = random_crops(self.heldout_sources, 1234, 0, range(EVAL_CROPS), self.tile, self.scale, 1.0)
        up, r = self.residual({k: jnp.asarray(v) for k, v in batch.items()}, anchor)
        z = jax.random.normal(jax.random.key(0), r.shape)
        losses = []
        for t_value in EVAL_TIMES:
            t = jnp.full((r.shape[0],), t_value)
            x = (1.0 - t_value) * z + t_value * r
            losses.append(float(jnp.mean((velocity(x, t, up) - (r - z)) ** 2)))
        return {"heldout/flow_mse": float(np.mean(losses))}

    def psnr_table(self, model: nnx.Module, steps_list: list[int]) -> dict[str, float]:
        """PSNR-Y per evaluation set at each sampler step count, bicubic beside it."""
        graphdef, state = nnx.split(model)
        apply = jax.jit(lambda s, lq, x, t: nnx.merge(graphdef, s)(lq, x, t))

        def step(lq, x, t):
            endpoint, image = apply(state, lq, x, t)
            return np.asarray(endpoint), np.asarray(image)

        results: dict[str, float] = {}
        for set_name, pairs in self.eval_sets.items():
            base = [psnr_y(bicubic_upscale(p.lr, self.scale), p.hr, border=self.scale) for p in pairs]
            results[f"{set_name}/bicubic_psnr_y"] = float(np.mean(base))
            for steps in steps_list:
                ours = []
                for p in pairs:
                    out = enhance_generative(
                        p.lr,
                        step,
                        tile=self.tile,
                        overlap=self.tile // 8,
                        scale=self.scale,
                        steps=steps,
                        batch=64,
                    )
                    ours.append(
                        psnr_y(to_uint8(out)[: p.hr.shape[0], : p.hr.shape[1]], p.hr, border=self.scale)
                    )
                results[f"{set_name}/psnr_y@{steps}"] = float(np.mean(ours))
                results[f"{set_name}/gain_db@{steps}"] = float(np.mean(ours) - np.mean(base))
        return results


def load_anchor(source: str, scale: int) -> tuple[nnx.Module, dict[str, Any], dict[str, Any]]:
    """(the regression network, its `LpmControl` kwargs, facts for the card) of an enhance
    model: a `vq train enhance` workdir, or a model artifact (zoo name or directory)
    carrying `sr_residual` Flax params (`vq.train.starting_points`)."""
    recorded = starting_points.starting_point(source, task="enhance", model="sr_residual", option="--anchor")
    kwargs = model_def("sr_residual").kwargs(**recorded["model_kwargs"])
    if kwargs["scale"] != scale:
        raise UsageError(f"--anchor {source} upscales x{kwargs['scale']}, this stage x{scale}")
    model, step = starting_points.starting_model(source, recorded)
    if "artifact" in recorded:
        facts = {
            "model": recorded["model_files"]["name"],
            "params_sha256": recorded["model_files"]["params_sha256"],
            "description": recorded["description"],
            "training": {"command": recorded["command"], "data": recorded["data"]},
            "metrics": recorded["metrics"],
        }
    else:
        facts = {"workdir": str(source), "step": step, "command": recorded.get("command")}
    return model, {"anchor_channels": kwargs["channels"], "anchor_blocks": kwargs["blocks"]}, facts


class LpmBaseTask(_LpmTask):
    name = "lpm-base"
    model_name = "lpm_base"

    def __init__(self, config: LpmConfig):
        super().__init__(config)
        self.anchor: nnx.Module | None = None
        if config.anchor:
            self.anchor, anchor_kwargs, anchor_facts = load_anchor(config.anchor, self.scale)
            # The residual over a regression anchor is smaller than over bilinear and depends
            # on the anchor: its std is measured here and inherited by the later stages.
            crops = random_crops(
                self.train_sources, self.seed, 0, range(SCALE_CROPS), self.tile, self.scale, 1.0
            )
            anchored = anchor_image(self.anchor, jnp.asarray(crops["lq"]), self.scale)
            self.residual_scale = round(float(jnp.std(jnp.asarray(crops["hq"]) - anchored)), 5)
            self.data_facts["anchor"] = {**anchor_facts, **anchor_kwargs}
        self.data_facts["residual_scale"] = self.residual_scale

    def create_model(self, seed: int) -> nnx.Module:
        return create_model(self.model_name, seed=seed, **self.model_kwargs)

    def loss(self, model: nnx.Module, batch: dict[str, jax.Array], rng: jax.Array):
        _, r = self.residual(batch, self.anchor)
        loss = flow_loss(model, r, rng)
        return loss, {}

    def evaluate(self, model: nnx.Module) -> dict[str, float]:
        return self.heldout_flow_loss(lambda x, t, up: velocity_from_endpoint(model(x, t), x, t), self.anchor)


def _same_arch(mine: dict[str, Any], theirs: dict[str, Any], where: str) -> None:
    clash = {k: (mine[k], theirs[k]) for k in mine.keys() & theirs.keys() if mine[k] != theirs[k]}
    if clash:
        raise UsageError(f"{where} has another architecture: {clash} (mine, its)")


class LpmControlTask(_LpmTask):
    name = "lpm-control"
    model_name = "lpm_control"

    def __init__(self, config: LpmConfig):
        super().__init__(config)
        if not config.base:
            raise UsageError("vq train lpm-control needs --base (an lpm-base workdir)")
        recorded = starting_points.recorded_run(config.base, "lpm-base")
        self.base_kwargs = recorded.get("model_kwargs", {})
        _same_arch(
            model_def(self.model_name).kwargs(**self.model_kwargs),
            model_def("lpm_base").kwargs(**self.base_kwargs),
            config.base,
        )
        self.data_facts["base"] = str(config.base)
        # The flow's frame of reference is the base's: its anchor and residual scale.
        base_data = recorded.get("data", {})
        self.anchor_source = (recorded.get("train") or {}).get("anchor")
        if self.anchor_source:
            anchor = base_data["anchor"]
            self.model_kwargs.update(
                anchor_channels=anchor["anchor_channels"], anchor_blocks=anchor["anchor_blocks"]
            )
        if "residual_scale" in base_data:
            self.model_kwargs["residual_scale"] = self.residual_scale = base_data["residual_scale"]

    def create_model(self, seed: int) -> nnx.Module:
        from vq.train.trainer import load_trained_model

        base, step = load_trained_model("lpm_base", self.base_kwargs, self.config.base)
        self.data_facts["base_step"] = step
        model = build_control_from_base(base, **self.model_kwargs)
        if self.anchor_source:
            anchor, _, _ = load_anchor(self.anchor_source, self.scale)
            nnx.update(model.anchor, jax.tree.map(jnp.copy, nnx.state(anchor)))
        return model

    def loss(self, model: nnx.Module, batch: dict[str, jax.Array], rng: jax.Array):
        up, r = self.residual(batch, model.anchor)
        return flow_loss(lambda x, t: model.endpoint(x, t, up), r, rng), {}

    def evaluate(self, model: nnx.Module) -> dict[str, float]:
        return {
            **self.heldout_flow_loss(model.velocity, model.anchor),
            **self.psnr_table(model, list(self.config.eval_steps)),
        }


class LpmDistillTask(_LpmTask):
    name = "lpm-distill"
    model_name = "lpm_distill"

    def __init__(self, config: LpmConfig):
        super().__init__(config)
        if not config.teacher:
            raise UsageError("vq train lpm-distill needs --teacher (an lpm-control workdir)")
        if config.teacher_steps < 2:
            raise UsageError("--teacher-steps must be >= 2")
        teacher = starting_points.recorded_run(config.teacher, "lpm-control")
        self.teacher_kwargs = teacher.get("model_kwargs", {})
        # The teacher's anchor and residual scale come with it (its weights in the state).
        inherited = ("anchor_channels", "anchor_blocks", "residual_scale")
        self.model_kwargs.update({k: v for k, v in self.teacher_kwargs.items() if k in inherited})
        self.residual_scale = self.model_kwargs.get("residual_scale", self.residual_scale)
        mine = {k: v for k, v in model_def(self.model_name).kwargs(**self.model_kwargs).items() if k != "ema"}
        _same_arch(mine, model_def("lpm_control").kwargs(**self.teacher_kwargs), config.teacher)
        self.data_facts["teacher"] = str(config.teacher)

    def create_model(self, seed: int) -> nnx.Module:
        from vq.train.trainer import load_trained_model

        teacher, step = load_trained_model("lpm_control", self.teacher_kwargs, self.config.teacher)
        self.data_facts["teacher_step"] = step
        model = create_model(self.model_name, seed=seed, **self.model_kwargs)
        model.load_teacher(teacher)
        return model

    def loss(self, model: nnx.Module, batch: dict[str, jax.Array], rng: jax.Array):
        up, r = self.residual(batch, model.student.anchor)
        n_steps = self.config.teacher_steps
        k_n, k_z = jax.random.split(rng)
        n = jax.random.randint(k_n, (r.shape[0],), 0, n_steps)
        t = n / n_steps
        t_next = (n + 1) / n_steps
        z = jax.random.normal(k_z, r.shape)
        x = (1.0 - t)[:, None, None, None] * z + t[:, None, None, None] * r
        # One Euler step of the teacher's ODE, then the EMA target's endpoint from there.
        x_next = x + model.teacher.velocity(x, t, up) / n_steps
        model.update_target()
        target = jax.lax.stop_gradient(student_endpoint(model.target, x_next, t_next, up))
        pred = student_endpoint(model.student, x, t, up)
        loss = jnp.mean((pred - target) ** 2)
        # How far the one-step answer is from the truth (the residual), for the log.
        one_step = jnp.mean((pred - r) ** 2)
        return loss, {"endpoint_mse": one_step}

    def evaluate(self, model: nnx.Module) -> dict[str, float]:
        return {
            **self.heldout_flow_loss(model.student.velocity, model.student.anchor),
            **self.psnr_table(model.student, list(self.config.eval_steps)),
        }
