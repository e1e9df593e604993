: Spiking, window averages, plateau potentials and the postsynaptic side of the
: learning rule of one brian_dendrite neuron (NEURON backend).
: Placed in the soma (kind 1 pyramidal, kind 2 output) or in a dummy section
: (kind 0 input). A self-event at t = (n + 0.75) dt does the work of Brian2 step n
: after its state update, in the Brian2 order (before_thresholds, thresholds,
: before_synapses): rate and survival, window sums, spike test, plateau, phase end,
: learning error. The somatic potential is read through the POINTER vsoma
: (the soma's v; NET_RECEIVE has no reliable v of its own). A spike is sent with net_event(t); NetCons from this cell use a
: delay of 0.25 dt so that it arrives at (n + 1) dt, before the update of step n + 1.
: Spiking: Bernoulli per step through the survival function (as Brian2), uniforms
: from a Random123 stream; or, with forced = 1, exactly the spikes delivered to
: this cell by events at (n + 0.7) dt (replayed spike trains). Truncated kernel:
: a self-event cut_delay = cutoff + 0.25 dt after a spike removes its remaining own trace.
: Test phases (phase 2): window means V_mean_test, rate_mean_test at the phase end, and
: with test_reset = 1 a self-event at (n + 1.05) dt after the last step n of a test phase
: (after that step's spikes arrived at (n + 1) dt, as Brian2's reset in after_resets)
: zeroes the soma potential, the dendrites' and the own traces.
: Stochastic plateau times (offset_sd > 0, pyramidal): at every phase end a new offset
: min(floor(|offset_sd N(0, 1)|), offset_max) for the next phase, from the stream ran_off;
: with offset_sd = 0 the offset is a parameter (fixed, or played from Python).
: tick = dt (set from Python).
NEURON {
    POINT_PROCESS BDCell
    RANDOM ran, ran_off
    RANGE kind, forced, tick, phi_max, scale, tauL, taus, offset, learning_scale, cut_delay, dLc, dsc
    RANGE test_reset, offset_sd, offset_max, V_mean_test, rate_mean_test
    RANGE Vs, Vb, Va, s_out, rate, spike_u, survival, nspikes
    RANGE V_sum, s_sum, rate_sum, A_sum, V_mean_f, s_mean_f, rate_mean_t, A_mean_f, A_mean_t
    RANGE alpha_f, alpha_t, delta, pending, nplateaus
    POINTER vsoma, phase, steps_left, window_steps, xbL, xbs, bb, xaL, xas, ba
}

PARAMETER {
    kind = 1
    tick = 1 (ms)
    forced = 0
    phi_max = 0.2 (/ms)
    scale = 0.14285714285714285
    tauL = 10 (ms)
    taus = 3 (ms)
    offset = 0
    learning_scale = 0
    cut_delay = 0 (ms)
    dLc = 0
    dsc = 0
    test_reset = 0
    offset_sd = 0
    offset_max = 5
}

ASSIGNED {
    vsoma
    phase
    steps_left
    window_steps
    xbL
    xbs
    bb
    xaL
    xas
    ba
    Vs
    Vb
    Va
    s_out
    rate (/ms)
    spike_u
    survival
    nspikes
    V_sum
    s_sum
    rate_sum
    A_sum
    V_mean_f
    s_mean_f
    rate_mean_t
    A_mean_f
    A_mean_t
    V_mean_test
    rate_mean_test
    alpha_f
    alpha_t
    delta
    pending
    nplateaus
}

STATE { yL ys }

INITIAL {
    yL = 0
    ys = 0
    Vs = 0
    rate = 0
    survival = 1
    spike_u = 1 - random_uniform(ran)
    nspikes = 0
    V_sum = 0
    s_sum = 0
    rate_sum = 0
    A_sum = 0
    V_mean_f = 0
    s_mean_f = 0
    rate_mean_t = 0
    A_mean_f = 0
    A_mean_t = 0
    V_mean_test = 0
    rate_mean_test = 0
    alpha_f = 0
    alpha_t = 0
    delta = 0
    pending = 0
    nplateaus = 0
    net_send(0.75 * tick, 1)
}

BREAKPOINT {
    SOLVE decay METHOD cnexp
}

DERIVATIVE decay {
    yL' = -yL / tauL
    ys' = -ys / taus
}

FUNCTION sigma(x) {
    sigma = 1 / (1 + exp(-x))
}

FUNCTION bookkeeping() {
    LOCAL in_window, restart, in_pw, restart_a, spike, A_mean, alpha, sig_f
    : before_thresholds: the rate of the updated potential, survival, window sums
    if (kind > 0) {
        Vs = vsoma
        Vb = bb + scale * (xbL - xbs)
        rate = phi_max * sigma(Vs)
    }
    if (kind == 1) {
        Va = ba + scale * (xaL - xas)
    }
    s_out = scale * (yL - ys)
    survival = survival * (1 - rate * tick)
    in_window = (steps_left < window_steps)
    restart = (steps_left == window_steps - 1)
    if (in_window) {
        if (restart) {
            V_sum = 0
            s_sum = 0
            rate_sum = 0
        }
        V_sum = V_sum + Vs
        s_sum = s_sum + s_out
        if (kind > 0) {
            rate_sum = rate_sum + rate / phi_max
        }
    }
    if (kind == 1) {
        in_pw = (steps_left >= offset && steps_left < offset + window_steps)
        restart_a = (steps_left == offset + window_steps - 1)
        if (in_pw) {
            if (restart_a) {
                A_sum = 0
            }
            A_sum = A_sum + Va
        }
    }
    : thresholds and reset
    if (forced) {
        spike = pending
    } else {
        spike = (survival < spike_u)
    }
    pending = 0
    if (spike) {
        yL = yL + 1
        ys = ys + 1
        spike_u = 1 - random_uniform(ran)
        survival = 1
        nspikes = nspikes + 1
    }
    : before_synapses: plateau (order 0), phase end (order 1), learning error (order 2)
    if (kind == 1 && (phase == 0 || phase == 1) && steps_left == offset) {
        A_mean = A_sum / window_steps
        alpha = sigma(A_mean)
        nplateaus = nplateaus + 1
        if (phase == 0) {
            alpha_f = alpha
            A_mean_f = A_mean
        } else {
            alpha_t = alpha
            A_mean_t = A_mean
        }
    }
    if (steps_left == 0) {
        if (phase == 0) {
            V_mean_f = V_sum / window_steps
            s_mean_f = s_sum / window_steps
        } else if (phase == 1) {
            rate_mean_t = rate_sum / window_steps
        } else if (phase == 2) {
            V_mean_test = V_sum / window_steps
            rate_mean_test = rate_sum / window_steps
        }
        if (kind == 1 && offset_sd > 0) {
            offset = floor(fabs(offset_sd * random_normal(ran_off)))
            if (offset > offset_max) {
                offset = offset_max
            }
        }
    }
    if (kind > 0 && phase == 1 && steps_left == 0) {
        sig_f = sigma(V_mean_f)
        if (kind == 1) {
            delta = learning_scale * (alpha_t - alpha_f) * sig_f * (1 - sig_f)
        } else {
            delta = learning_scale * (rate_mean_t - sig_f) * sig_f * (1 - sig_f)
        }
        bb = bb + delta
    }
    bookkeeping = spike
}

PROCEDURE reset() {
    : the test reset (Brian2: TEST_RESET_VARS zeroed after the last step of a test phase)
    yL = 0
    ys = 0
    if (kind > 0) {
        vsoma = 0
        xbL = 0
        xbs = 0
    }
    if (kind == 1) {
        xaL = 0
        xas = 0
    }
}

NET_RECEIVE(w) {
    if (flag == 1) {
        if (bookkeeping()) {
            net_event(t)
            if (cut_delay > 0) {
                net_send(cut_delay, 2)
            }
        }
        if (test_reset && phase == 2 && steps_left == 0) {
            net_send(0.3 * tick, 3)
        }
        net_send(tick, 1)
    } else if (flag == 2) {
        yL = yL - dLc
        ys = ys - dsc
    } else if (flag == 3) {
        reset()
    } else {
        pending = 1
    }
}
