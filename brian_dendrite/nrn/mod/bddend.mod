: Dendritic compartment of the segregated-dendrite model (brian_dendrite, NEURON backend).
: A filtered PSP sum with no membrane dynamics of its own (specification 1.3/1.4):
:   V = bias + scale * (xL - xs),  xL' = -xL/tauL, xs' = -xs/taus   (exact decay, cnexp)
: Events: kind 0 adds the NetCon weight to both traces (a presynaptic spike),
: kind 1 removes what a spike still contributes after the kernel cutoff (truncated kernel).
NEURON {
    POINT_PROCESS BDDend
    RANGE bias, scale, tauL, taus, dLc, dsc
}

PARAMETER {
    tauL = 10 (ms)
    taus = 3 (ms)
    scale = 0.14285714285714285
    bias = 0
    dLc = 0
    dsc = 0
}

STATE { xL xs }

INITIAL {
    xL = 0
    xs = 0
}

BREAKPOINT {
    SOLVE decay METHOD cnexp
}

DERIVATIVE decay {
    xL' = -xL / tauL
    xs' = -xs / taus
}

NET_RECEIVE(w, kind) {
    INITIAL {
        : keep the kind set from Python (finitialize zeroes the later weight slots otherwise)
    }
    if (kind == 0) {
        xL = xL + w
        xs = xs + w
    } else {
        xL = xL - w * dLc
        xs = xs - w * dsc
    }
}
