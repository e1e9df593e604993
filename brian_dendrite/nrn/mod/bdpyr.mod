: Soma of the hidden-layer pyramidal neuron (brian_dendrite, NEURON backend).
: One-way, conductance-based coupling from the basal and apical dendrites (BDDend
: traces read through POINTERs), specification 1.3:
:   C_m dV/dt = -gL V + gB (Vb - V) + gA (Va - V),  C_m = 1 uF/cm2
: Conductances are per unit capacitance (1/ms); 1/ms on 1 uF/cm2 is 1e-3 S/cm2.
: Each conductance is multiplied by the step factor f so that NEURON's fixed-step
: backward Euler gives exactly the update of the Brian2 model (see docs/neuron.rst):
:   exponential Euler: f = (exp(a dt) - 1) / (a dt);  forward Euler: f = 1 / (1 - a dt)
: with a = gL + gB + gA and tick = dt (set from Python). For dt -> 0, f -> 1.
: exact = 0 switches the factor off (f = 1: NEURON's plain backward Euler), for comparison.
NEURON {
    SUFFIX bdpyr
    NONSPECIFIC_CURRENT i
    RANGE tick, exact, gL, gB, gA, fwd_euler, scale, Vb, Va, f
    POINTER xbL, xbs, bb, xaL, xas, ba
}

UNITS {
    (mA) = (milliamp)
}

PARAMETER {
    tick = 1 (ms)
    exact = 1
    gL = 0.1
    gB = 0.6
    gA = 0
    fwd_euler = 0
    scale = 0.14285714285714285
}

ASSIGNED {
    v (millivolt)
    i (mA/cm2)
    Vb
    Va
    f
    xbL
    xbs
    bb
    xaL
    xas
    ba
}

BREAKPOINT {
    LOCAL a
    Vb = bb + scale * (xbL - xbs)
    Va = ba + scale * (xaL - xas)
    a = gL + gB + gA
    f = stepfactor(a)
    i = (1e-3) * f * (a * v - gB * Vb - gA * Va)
}

FUNCTION stepfactor(a) {
    if (exact == 0) {
        stepfactor = 1
    } else if (fwd_euler) {
        stepfactor = 1 / (1 - a * tick)
    } else {
        if (a * tick < 1e-8) {
            stepfactor = 1
        } else {
            stepfactor = (exp(a * tick) - 1) / (a * tick)
        }
    }
}
