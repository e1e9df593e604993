: Soma of the output neuron (brian_dendrite, NEURON backend), specification 1.4:
:   C_m dV/dt = -gL V + gD (Vb - V) + gE (EE - V) + gI (EI - V)
: Vb from the basal BDDend through POINTERs. Teaching conductances: with
: teach_schedule = 1, gE = gteach when the schedule (BDClock, POINTERs phase and
: label) is in a target phase (phase 1) and label == cls, gI = gteach for the other
: classes; with teach_schedule = 0, gE and gI are plain parameters.
: Step factor f as in bdpyr.mod (a = gL + gD + gE + gI); tick = dt (set from Python).
NEURON {
    SUFFIX bdout
    NONSPECIFIC_CURRENT i
    RANGE tick, exact, gL, gD, gE, gI, gteach, EE, EI, cls, teach_schedule, fwd_euler, scale, Vb, f
    POINTER xbL, xbs, bb, sphase, slabel
}

UNITS {
    (mA) = (milliamp)
}

PARAMETER {
    tick = 1 (ms)
    exact = 1
    gL = 0.1
    gD = 0.6
    gE = 0
    gI = 0
    gteach = 1
    EE = 8
    EI = -8
    cls = 0
    teach_schedule = 0
    fwd_euler = 0
    scale = 0.14285714285714285
}

ASSIGNED {
    v (millivolt)
    i (mA/cm2)
    Vb
    f
    xbL
    xbs
    bb
    sphase
    slabel
}

BREAKPOINT {
    LOCAL a
    if (teach_schedule) {
        if (sphase == 1) {
            if (slabel == cls) {
                gE = gteach
                gI = 0
            } else {
                gE = 0
                gI = gteach
            }
        } else {
            gE = 0
            gI = 0
        }
    }
    Vb = bb + scale * (xbL - xbs)
    a = gL + gD + gE + gI
    f = stepfactor(a)
    i = (1e-3) * f * (a * v - gD * Vb - gE * EE - gI * EI)
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
