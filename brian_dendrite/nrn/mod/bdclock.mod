: Phase schedule of a brian_dendrite run (NEURON backend).
: phase, steps_left, window_steps and label are set every step by Vector.play
: (events at t = n dt, the values of Brian2 step n); cells read them through
: POINTERs (tick = dt, set from Python). At t = (n + 0.8) dt, after every cell's bookkeeping of step n, the
: clock emits an event when step n ends a target phase (phase 1, steps_left 0):
: the trigger of the weight updates (BDSyn kind 2).
NEURON {
    ARTIFICIAL_CELL BDClock
    RANGE phase, steps_left, window_steps, label, nlearn, tick
}

PARAMETER {
    phase = -1
    steps_left = 1073741824
    window_steps = 1
    label = 0
    tick = 1 (ms)
}

ASSIGNED {
    nlearn
}

INITIAL {
    nlearn = 0
    net_send(0.8 * tick, 1)
}

NET_RECEIVE(w) {
    if (flag == 1) {
        if (phase == 1 && steps_left == 0) {
            nlearn = nlearn + 1
            net_event(t)
        }
        net_send(tick, 1)
    }
}
