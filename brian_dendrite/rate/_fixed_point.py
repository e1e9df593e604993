"""The self-consistent steady state of a phase when the apical conductance couples the layers.

With ``g_A > 0`` the hidden somata depend on the apical potentials ``A``, which
depend on the output rates, which depend on the hidden layers: a phase's steady
state is then a fixed point in the output rates, ``r = F(r)``. Given ``r``, the
apical potentials ``A(r) = Y (fb_scale r) + c`` fix every hidden soma and hence
the output rate ``F(r)`` (one bottom-up sweep of the network).

Method
------
Relaxation ``r <- r + beta (F(r) - r)`` started from the output of the network
without feedback (``A = c``), i.e. the fixed point that a relaxation from the
feedback-free state reaches, also when several exist. ``beta = 1`` (plain
fixed-point iteration: cheap, and fast for the paper's small loop gain) is
halved for an example whenever its residual ``F(r) - r`` reverses direction
(oscillation, loop gain below -1), down to :data:`_MIN_BETA`. Where the residual
shrinks by less than a factor ``1/_SLOW = 4`` per iteration (gain near 1, e.g.
``g_A = 0.6`` with grown symmetric or amplified sparse feedback), a Newton step
with the analytic Jacobian ``dF/dr`` (:func:`loop_jacobian`), clipped to
``[0, phi]``, is tried; it is kept only where it lands within
``_NEWTON_ACCEPT * phi`` of a root and reduces the residual tenfold. Accepting
any Newton step that merely reduces the residual can stall at the residual's
local minimum near a saddle-node "ghost", which the relaxation passes.

Convergence
-----------
No apical potential changes by more than ``tol`` between ``A(r)`` and
``A(F(r))``; :class:`ConvergenceError` after ``max_iter`` iterations. The returned
somatic potentials are the exact steady state for the returned ``A``. For the
paper's parameters the loop gain is small and two or three iterations suffice;
near a saddle-node of the loop (largest loop-gain eigenvalue close to 1, no root
nearby, Newton steps cannot land) the relaxation passes slowly and may need
thousands. In a batch every example leaves the iteration when it has converged
(:func:`_solve_rows`), so such an example costs only its own sweeps.

Predictions (``fallback=True``; the test pass of training) have one more step.
The relaxation can circle a fixed point without reaching it: an unstable focus
of the relaxation, where the loop Jacobian has complex eigenvalues of real part
above 1 (seen with ``g_A = 0.6``, seed 1: after 42 epochs one test image of
10,000, eigenvalues 1.036 +- 0.062i, the residual oscillating between 3e-4 and
1e-2 for ever; after 50 epochs another, 1.34 +- 0.33i, on a cycle in which two
output classes take turns between 5 % and 97 % of ``phi``). The fixed point
exists (the two classes share the activity) but no relaxation, however damped,
reaches it. After ``max_iter`` iterations :func:`newton_root` takes Newton's
method from the centre of the cycle (the mean of a damped relaxation; from the
last iterate of a large cycle Newton's method may find nothing) and so gives
the fixed point the relaxation circles; it is counted in ``net.newton_fallbacks``
and logged as a warning. Training never falls back (its error terms would come
from a state the network's relaxation does not reach): it raises
:class:`ConvergenceError`, as does a prediction where Newton's method finds no
root either. Every example that converged before is untouched, bit for bit.

The functions take the :class:`~brian_dendrite.rate.network.RateNetwork` whose
phase they solve and use its sweep (``net._sweep``), its apical potentials
(``net._apical``), its weights and its constants; they hold no state of their own.
"""

from __future__ import annotations

import logging

import numpy as np

from ._state import LayerState

__all__ = ["ConvergenceError", "loop_jacobian", "newton_iterate", "newton_root", "solve_fixed_point"]

logger = logging.getLogger("brian2.brian_dendrite.rate")

#: Contraction factor of the plain fixed-point iteration above which Newton steps are tried.
_SLOW = 0.25
#: A Newton step is kept only if the residual it leaves is below this fraction of phi.
_NEWTON_ACCEPT = 1e-6
#: Smallest relaxation factor of the damped fixed-point iteration.
_MIN_BETA = 1.0 / 256
#: Newton steps of the fallback of predictions after ``max_iter`` relaxation steps (:func:`newton_root`).
_FALLBACK_NEWTON_STEPS = 100
#: Relaxation steps, and their factor, whose mean (second half) starts the fallback's Newton method.
_CYCLE_STEPS, _CYCLE_BETA = 2000, 0.05


class ConvergenceError(RuntimeError):
    """The fixed-point iteration of a phase with apical conductance did not converge."""


def newton_iterate(net, states, E, r, res):
    """The Newton iterate ``clip(r + (1 - J)^-1 res, 0, phi)`` with the loop Jacobian ``J`` at *states*.

    A singular ``1 - J`` takes the plain step ``res`` instead.
    """
    J = loop_jacobian(net, states, E)
    try:
        step = np.linalg.solve(np.eye(net.sizes[-1]) - J, res[..., None])[..., 0]
    except np.linalg.LinAlgError:
        step = res
    return np.clip(r + step, 0.0, net.phi)


def solve_fixed_point(net, s_in, E, B0, fallback=False):
    """Self-consistent phase of ``net`` with apical conductance (``g_A > 0``), see the module docstring.

    Parameters
    ----------
    net : RateNetwork
    s_in : ndarray, shape (n_input,) or (n, n_input)
        Input PSP of one example or of a batch (rows).
    E : ndarray or None
        Teaching potentials of the output layer (target phase) or None (forward phase).
    B0 : ndarray
        The first layer's potential ``W[0] s_in + b[0]`` (the same in every iteration).
    fallback : bool
        After ``max_iter`` iterations, try :func:`newton_root` from the last iterate
        before raising (predictions only, see the module docstring).

    Returns
    -------
    s_pre : list of ndarray
        The presynaptic PSP of each weight layer.
    states : list of LayerState
        One per non-input layer, without ``A``.
    A : list of ndarray
        The apical potentials of the hidden layers.

    Raises
    ------
    ConvergenceError
        If the apical potentials still change by more than ``net.tol`` after ``net.max_iter`` iterations.
    """
    if np.ndim(s_in) == 2 and len(s_in) > 1:
        return _solve_rows(net, s_in, E, B0, fallback)
    batch_shape = np.shape(s_in)[:-1]
    A = [np.broadcast_to(c, (*batch_shape, c.size)) for c in net._c]
    r = net._sweep(s_in, A, E, B0)[1][-1].rate
    beta = np.ones((*batch_shape, 1))
    change = np.inf
    previous, previous_res = np.inf, None
    for _ in range(net.max_iter):
        A = net._apical(r)
        s_pre, states = net._sweep(s_in, A, E, B0)
        res = states[-1].rate - r
        change = max(float(np.max(np.abs(net.fb_scale * res @ y.T))) for y in net._Y)
        if change <= net.tol:
            return s_pre, states, A
        r, beta, previous, previous_res = _relax(net, s_in, E, B0, states, r, res, beta, previous,
                                                 previous_res)
    found = newton_root(net, s_in, E, B0, r) if fallback else None
    if found is not None:
        return found
    raise ConvergenceError(
        f"the {'target' if E is not None else 'forward'}-phase fixed point with g_A = {net.g_A}/ms "
        f"did not converge in {net.max_iter} iterations (last change of the apical "
        f"potentials {change:.3g}, tolerance {net.tol:.3g}){_NO_ROOT if fallback else ''}"
    )


_NO_ROOT = "; Newton's method from the last iterate found no root either"


def newton_root(net, s_in, E, B0, r):
    """The fallback of predictions: a root of ``F(r) = r`` by Newton's method, near the iterate ``r``.

    Newton's method starts from the centre of the relaxation's cycle (the mean of
    the second half of :data:`_CYCLE_STEPS` relaxation steps with ``beta =``
    :data:`_CYCLE_BETA` from ``r``), then, if that fails, from ``r`` itself: at
    most :data:`_FALLBACK_NEWTON_STEPS` steps of :func:`newton_iterate` each, with
    the convergence test of the relaxation (no apical potential changes by more
    than ``net.tol``). Returns ``(s_pre, states, A)`` as :func:`solve_fixed_point`
    does, having counted the fallback in ``net.newton_fallbacks`` and logged it, or
    None if neither start finds a root.
    """
    phase = "target" if E is not None else "forward"
    for origin, x in (("the centre of its cycle", _cycle_centre(net, s_in, E, B0, r)), ("its last iterate", r)):
        for step in range(_FALLBACK_NEWTON_STEPS):
            A = net._apical(x)
            s_pre, states = net._sweep(s_in, A, E, B0)
            res = states[-1].rate - x
            change = max(float(np.max(np.abs(net.fb_scale * res @ y.T))) for y in net._Y)
            if change <= net.tol:
                eig = np.linalg.eigvals(loop_jacobian(net, states, E)).ravel()
                top = eig[np.argmax(eig.real)]
                net.newton_fallbacks += 1
                logger.warning(f"the {phase}-phase relaxation with g_A = {net.g_A}/ms did not settle in "
                               f"{net.max_iter} iterations; Newton's method from {origin} found the fixed point "
                               f"in {step} steps (loop-gain eigenvalue of largest real part "
                               f"{top.real:.4g}{top.imag:+.3g}i); used for the prediction")
                return s_pre, states, A
            x = newton_iterate(net, states, E, x, res)
    return None


def _cycle_centre(net, s_in, E, B0, r):
    """The mean of the second half of :data:`_CYCLE_STEPS` relaxation steps ``r <- r + beta (F(r) - r)``."""
    total = np.zeros_like(r)
    for step in range(_CYCLE_STEPS):
        r = r + _CYCLE_BETA * (net._sweep(s_in, net._apical(r), E, B0)[1][-1].rate - r)
        if step >= _CYCLE_STEPS // 2:
            total += r
    return total / (_CYCLE_STEPS - _CYCLE_STEPS // 2)


def _relax(net, s_in, E, B0, states, r, res, beta, previous, previous_res):
    """One step of the damped relaxation, with a Newton step where it is slow."""
    size = np.max(np.abs(res), axis=-1)
    if previous_res is not None:
        flipped = np.sum(res * previous_res, axis=-1, keepdims=True) < 0
        beta = np.where(flipped, np.maximum(0.5 * beta, _MIN_BETA), beta)
    r_next = r + beta * res
    if np.any(size > _SLOW * previous):
        r_newton = newton_iterate(net, states, E, r, res)
        res_newton = np.max(
            np.abs(net._sweep(s_in, net._apical(r_newton), E, B0)[1][-1].rate - r_newton), axis=-1
        )
        good = (res_newton < 0.1 * size) & (res_newton < _NEWTON_ACCEPT * net.phi)
        r_next = np.where(good[..., None], r_newton, r_next)
    return r_next, beta, size, res


def _solve_rows(net, s_in, E, B0, fallback=False):
    """:func:`solve_fixed_point` for a batch of examples (rows), each iterated until it converges.

    A converged row leaves the iteration, so a rare slow example (e.g. one passing
    near a saddle-node of the loop, where the relaxation needs thousands of
    iterations) costs sweeps of itself only, not of the whole block.
    """
    n = len(s_in)
    E_rows = E is not None and np.ndim(E) == 2
    A0 = [np.broadcast_to(c, (n, c.size)) for c in net._c]
    r = net._sweep(s_in, A0, E, B0)[1][-1].rate
    beta = np.ones((n, 1))
    previous = np.full(n, np.inf)
    previous_res = None
    rows = np.arange(n)
    out = None
    change = np.inf
    for _ in range(net.max_iter):
        s_w = s_in[rows]
        B0_w = None if B0 is None else B0[rows]
        E_w = E[rows] if E_rows else E
        A = net._apical(r)
        s_pre, states = net._sweep(s_w, A, E_w, B0_w)
        res = states[-1].rate - r
        row_change = np.max([np.max(np.abs(net.fb_scale * res @ y.T), axis=-1) for y in net._Y], axis=0)
        change = float(np.max(row_change))
        done = row_change <= net.tol
        if np.any(done):
            if out is None:
                out = _empty_results(n, s_pre, states, A)
            _store_rows(out, rows[done], done, s_pre, states, A)
            keep = ~done
            if not np.any(keep):
                return out
            rows, r, res, beta, previous = rows[keep], r[keep], res[keep], beta[keep], previous[keep]
            previous_res = None if previous_res is None else previous_res[keep]
            states = [LayerState(B=st.B[keep], C=st.C[keep], rate=st.rate[keep]) for st in states]
            s_w = s_in[rows]
            B0_w = None if B0 is None else B0[rows]
            E_w = E[rows] if E_rows else E
        r, beta, previous, previous_res = _relax(net, s_w, E_w, B0_w, states, r, res, beta, previous,
                                                 previous_res)
    if fallback:
        found = [newton_root(net, s_w[j], E_w[j] if E_rows else E_w, None if B0_w is None else B0_w[j], r[j])
                 for j in range(len(rows))]
        if all(f is not None for f in found):
            for j, (s_pre, states, A) in enumerate(found):
                rows_of = [x[None] for x in s_pre], [LayerState(B=st.B[None], C=st.C[None], rate=st.rate[None])
                                                     for st in states], [a[None] for a in A]
                if out is None:
                    out = _empty_results(n, *rows_of)
                _store_rows(out, rows[j : j + 1], np.ones(1, bool), *rows_of)
            return out
    raise ConvergenceError(
        f"the {'target' if E is not None else 'forward'}-phase fixed point with g_A = {net.g_A}/ms "
        f"did not converge in {net.max_iter} iterations for {len(rows)} of {n} examples (last change of "
        f"the apical potentials {change:.3g}, tolerance {net.tol:.3g}){_NO_ROOT if fallback else ''}"
    )


def _empty_results(n, s_pre, states, A):
    """Arrays for ``n`` rows of the results ``(s_pre, states, A)``, shaped like one iteration's."""
    return (
        [np.empty((n, x.shape[-1])) for x in s_pre],
        [LayerState(B=np.empty((n, st.B.shape[-1])), C=np.empty((n, st.C.shape[-1])),
                    rate=np.empty((n, st.rate.shape[-1]))) for st in states],
        [np.empty((n, a.shape[-1])) for a in A],
    )


def _store_rows(out, idx, done, s_pre, states, A) -> None:
    """Copy the converged rows ``done`` of one iteration into the results, at the examples ``idx``."""
    out_pre, out_states, out_A = out
    for k, x in enumerate(s_pre):
        out_pre[k][idx] = x[done]
    for k, st in enumerate(states):
        out_states[k].B[idx] = st.B[done]
        out_states[k].C[idx] = st.C[done]
        out_states[k].rate[idx] = st.rate[done]
    for k, a in enumerate(A):
        out_A[k][idx] = a[done]


def loop_jacobian(net, states, E):
    """``d r_out / d r_fb`` of one sweep with apical input ``A(r_fb)``, shape (..., n_out, n_out).

    Reverse-mode chain rule from the output down, so that every product is
    one matrix product over the whole batch:
    ``G = d r_out/d s_top = phi sigma'(C_out) k_out W_out``; for each hidden
    layer ``h`` from the top, ``G <- G diag(d s_h/d C_h)``,
    ``J += k_A G (fb_scale Y^h)``, ``G <- k_B G W_h``.

    Parameters
    ----------
    net : RateNetwork
    states : list of LayerState
        The sweep's steady states (rates used).
    E : ndarray or None
        Teaching potentials (target phase) or None (forward phase).
    """

    def rmat(G, M):
        return (G.reshape(-1, G.shape[-1]) @ M).reshape(*G.shape[:-1], M.shape[-1])

    sig = states[-1].rate / net.phi
    k_out = net.k_D if E is None else net._k_D_t
    G = (k_out * net.phi * sig * (1.0 - sig))[..., :, None] * net._Wt[-1].T
    J = 0.0
    for h in range(net.n_hidden - 1, -1, -1):
        sig = states[h].rate / net.phi
        G = G * ((net.drive_scale * net.phi) * sig * (1.0 - sig))[..., None, :]
        J = J + rmat(G, (net.k_A * net.fb_scale) * net._Y[h])
        if h > 0:
            G = rmat(G, net.k_B * net._Wt[h].T)
    return J
