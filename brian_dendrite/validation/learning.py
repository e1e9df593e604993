"""Check 4, learning: test-error curves of both models trained from the same weights on the same examples.

:func:`measure_learning` trains the spiking network, the rate model (in the same
example order and in several other orders) and the mean-field twin (the spiking
protocol without noise) from the same initial weights, and evaluates all of them with
the same deterministic readout (the rate model's forward pass) at regular intervals.

:func:`learning_agreement` compares the mean error over the second half of training:
online learning makes the error jump by several percentage points from one
evaluation to the next in both models, so the tolerance is 3 sd of the difference
between two independent training trajectories (measured over the rate model's
random orders, pooled with extra spiking runs where there are any), combined with
the paired (McNemar) test-set noise.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from ..model import Weights, draw_phase_lengths
from ..rate import RateNetwork
from ._common import _reset_state
from .mean_field import MeanFieldNetwork

__all__ = ["learning_agreement", "measure_learning"]

logger = logging.getLogger("brian2.brian_dendrite.validation")


def _late_mean(curve, late_from: int) -> float:
    """Mean error of a curve [(examples, error %)] over the points from ``late_from`` examples on."""
    pts = [float(e) for n, e in curve if n >= late_from]
    if not pts:
        raise ValueError(f"no evaluation point at or after {late_from} examples")
    return float(np.mean(pts))


def learning_agreement(spiking_curves, rate_curve, rate_order_curves, late_from: int, discordant=None,
                       n_test: int | None = None) -> dict:
    """Check 4: test error during training, spiking against rate.

    Parameters
    ----------
    spiking_curves : list of list of (examples, error %)
        One curve per spiking run (different spike seeds), each with the spiking
        network's weights evaluated at regular intervals.
    rate_curve : list of (examples, error %)
        The rate model trained from the same initial weights on the same example order.
    rate_order_curves : list of curves
        The rate model trained on the same examples in other (random) orders: the
        measured variability of a training trajectory.
    late_from : int
        The compared statistic is the mean error over the evaluation points from
        this many examples on (the second half of training): online learning at the
        paper's learning rates makes the error jump by several percentage points from
        one evaluation to the next, in both models, and averaging a stretch of the
        curve removes most of that.
    discordant : (int, int), optional
        Test images misclassified only by the spiking / only by the rate model at
        the end; with ``n_test`` gives the paired (McNemar) sd of an error difference.
    n_test : int, optional
        Number of test images the discordant counts are taken over.

    Returns
    -------
    dict
        Passing requires ``|late mean spiking - late mean rate| <=
        3 sqrt(2 sd_traj^2 + sd_pair^2)`` with ``sd_traj`` the sd of the late mean
        over the rate model's orders (pooled with the spiking runs' if there are
        several) and ``sd_pair`` the paired test-set sd.

    Raises
    ------
    ValueError
        For fewer than 2 rate-model orders, no spiking curve, ``discordant`` without
        ``n_test``, or a curve without a point at or after ``late_from``.
    """
    if len(rate_order_curves) < 2:
        raise ValueError("learning_agreement: need at least 2 rate-model orders to measure the spread")
    if not spiking_curves:
        raise ValueError("learning_agreement: need at least one spiking curve")
    order_means = np.array([_late_mean(c, late_from) for c in rate_order_curves])
    spk_means = np.array([_late_mean(c, late_from) for c in spiking_curves])
    r_mean = _late_mean(rate_curve, late_from)
    sd_orders = float(order_means.std(ddof=1))
    spreads = {"rate_orders_sd": sd_orders}
    sd_traj = sd_orders
    if spk_means.size >= 2:
        sd_spk = float(spk_means.std(ddof=1))
        spreads["spiking_runs_sd"] = sd_spk
        dof_o, dof_s = order_means.size - 1, spk_means.size - 1
        sd_traj = math.sqrt((sd_orders**2 * dof_o + sd_spk**2 * dof_s) / (dof_o + dof_s))
    sd_pair = 0.0
    if discordant is not None:
        if not n_test:
            raise ValueError("learning_agreement: n_test is required with discordant counts")
        b, c = discordant
        sd_pair = 100.0 * math.sqrt(max(b + c - (b - c) ** 2 / n_test, 0.0)) / n_test
    tol = 3.0 * math.sqrt(2 * sd_traj**2 + sd_pair**2)
    diff = float(spk_means[0] - r_mean)
    return {
        "spiking_curves": [[[int(n), float(e)] for n, e in c] for c in spiking_curves],
        "rate_curve": [[int(n), float(e)] for n, e in rate_curve],
        "late_from_examples": int(late_from),
        "late_mean_spiking": float(spk_means[0]),
        "late_mean_spiking_runs": spk_means.tolist(),
        "late_mean_rate": r_mean,
        "late_mean_rate_orders": order_means.tolist(),
        "final_spiking_error": float(spiking_curves[0][-1][1]),
        "final_rate_error": float(rate_curve[-1][1]),
        "difference": diff,
        "spread": dict(spreads, trajectory_sd=sd_traj, paired_test_sd=sd_pair),
        "tolerance": {"abs_difference_max": tol},
        "passed": bool(abs(diff) <= tol),
        "explanation": (
            "Both models start from the same weights and see the same examples in the same order; their "
            "weights are evaluated with the same deterministic readout (the rate model's forward pass, argmax "
            "of the output potential) on the same test images. The mean error over the second half of "
            "training may differ by 3 sd of the difference between two independent training trajectories "
            "(sd measured over random example orders of the rate model, pooled with spiking runs with other "
            "spike seeds where run) combined with the paired test-set noise."
        ),
    }


def measure_learning(net, params, W0: Weights, train, test, cfg, seed: int) -> dict:
    """Train both models from ``W0`` on the same examples; evaluate the weights at regular intervals.

    All curves use the rate model's deterministic readout on ``learn_eval_images``
    test images, so that they differ only through learning; the spiking network's
    own (stochastic, 250-ms) test is run at the start and the end on
    ``learn_test_images`` images and compared with that readout.

    Parameters
    ----------
    net : SpikingNetwork
        The spiking network (its weights and state are changed).
    params : ModelParameters
        The model of ``net``.
    W0 : Weights
        The initial weights of all models.
    train, test : dataset splits
        With ``images`` and ``labels`` (see :func:`brian_dendrite.datasets.load_mnist`).
    cfg : TierConfig
        The sizes: ``learn_examples``, ``learn_eval_every``, ``learn_eval_images``,
        ``learn_test_images``, ``learn_orders``, ``learn_spiking_runs``,
        ``learn_mean_field_examples``, ``chunk_size``.
    seed : int
        Seeds the example orders, the phase lengths of the twin and the spikes.

    Returns
    -------
    dict
        The curves (``spiking_curves``, ``rate_curve``, ``rate_order_curves``,
        ``mean_field_curve``: lists of (examples, error %)), the ``discordant``
        counts of the final spiking and rate predictions on the ``n_eval`` evaluation
        images, the spiking network's own test (``readout``, on ``n_test`` images)
        and the run times.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x1EA]))
    n = cfg.learn_examples
    n_train = len(train.labels)
    order = np.concatenate([rng.permutation(n_train) for _ in range(math.ceil(n / n_train))])[:n]
    X, y = train.images[order], train.labels[order]
    eX, ey = test.images[: cfg.learn_eval_images], test.labels[: cfg.learn_eval_images]
    tX, ty = test.images[: cfg.learn_test_images], test.labels[: cfg.learn_test_images]
    every = cfg.learn_eval_every

    def evaluate(weights) -> float:
        return RateNetwork(params, weights).test_error(eX, ey)

    def rate_curve(perm):
        model = RateNetwork(params, W0.copy())
        curve = [(0, model.test_error(eX, ey))]
        for a in range(0, n, every):
            model.train(X[perm[a : a + every]], y[perm[a : a + every]])
            curve.append((min(a + every, n), model.test_error(eX, ey)))
        return curve, model

    t0 = time.perf_counter()
    r_curve, r_model = rate_curve(np.arange(n))
    order_curves = [rate_curve(np.random.default_rng(np.random.SeedSequence([seed, 0x0D, k])).permutation(n))[0]
                    for k in range(cfg.learn_orders)]
    rate_seconds = time.perf_counter() - t0
    # the mean-field twin: the spiking protocol (phase lengths, windows, carried-over state) without noise
    t0 = time.perf_counter()
    lengths = draw_phase_lengths(2 * n, params.protocol, params.cell.dt,
                                 np.random.default_rng(np.random.SeedSequence([seed, 0x3F]))).reshape(n, 2)
    mf = MeanFieldNetwork(params, W0, batch=1)
    mf_curve = [(0, evaluate(W0))]
    n_mf = min(n, cfg.learn_mean_field_examples)
    for a in range(0, n_mf, every):
        stop = min(a + every, n_mf)
        mf.train(X[a:stop], y[a:stop], lengths[a:stop])
        mf_curve.append((stop, evaluate(mf.weights)))
    mf_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    spiking_curves = []
    readout = {}
    for run in range(cfg.learn_spiking_runs):
        net.set_weights(W0)
        _reset_state(net)
        curve = [(0, evaluate(W0))]
        if run == 0:
            first = net.test(tX, ty, key=(seed, 0x7E, run, 0))
            readout["spiking_test_initial"] = first.error
            readout["rate_readout_initial"] = RateNetwork(params, W0).test_error(tX, ty)
        for a in range(0, n, every):
            stop = min(a + every, n)
            for lo in range(a, stop, cfg.chunk_size):
                hi = min(lo + cfg.chunk_size, stop)
                net.train_chunk(X[lo:hi], y[lo:hi], key=(seed, 0x4C, run, lo))
            curve.append((stop, evaluate(net.get_weights())))
            logger.info("spiking run %d: %d examples, error %.2f %%", run, stop, curve[-1][1])
        spiking_curves.append(curve)
        if run == 0:
            final_weights = net.get_weights()
            last = net.test(tX, ty, key=(seed, 0x7E, run, n))
            readout_model = RateNetwork(params, final_weights)
            readout["spiking_test_final"] = last.error
            readout["rate_readout_final"] = readout_model.test_error(tX, ty)
            readout["readout_agreement_final"] = float(np.mean(last.predictions == readout_model.predict(tX)))
            spk_pred = readout_model.predict(eX)
    spiking_seconds = time.perf_counter() - t0
    rate_pred = r_model.predict(eX)
    b = int(np.sum((spk_pred != ey) & (rate_pred == ey)))
    c = int(np.sum((spk_pred == ey) & (rate_pred != ey)))
    return {"spiking_curves": spiking_curves, "rate_curve": r_curve, "rate_order_curves": order_curves,
            "mean_field_curve": mf_curve, "discordant": (b, c), "n_eval": len(ey), "readout": readout,
            "n_test": len(ty), "rate_seconds": rate_seconds, "spiking_seconds": spiking_seconds,
            "mean_field_seconds": mf_seconds}
