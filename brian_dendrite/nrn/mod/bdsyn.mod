: One plastic feedforward synapse of the segregated-dendrite network (brian_dendrite).
: The weight w is a RANGE variable of the synapse; the synapse writes into the
: traces of the postsynaptic dendrite (BDDend) through POINTERs.
: Events (the NetCon's first weight slot is the event kind):
:   kind 0  presynaptic spike: the dendrite's traces += w
:   kind 1  kernel cutoff (truncated kernel): the traces -= w * decay over the cutoff
:   kind 2  end of a target phase: w += delta_post * smean_pre (the learning rule,
:           specification 1.9), skipped when smean_pre <= skip
NEURON {
    POINT_PROCESS BDSyn
    RANGE w, dLc, dsc, skip, nupdates
    POINTER xL, xs, smean, delta
}

PARAMETER {
    w = 0
    dLc = 0
    dsc = 0
    skip = 1e-12
}

ASSIGNED {
    xL
    xs
    smean
    delta
    nupdates
}

INITIAL {
    nupdates = 0
}

NET_RECEIVE(kind) {
    if (kind == 0) {
        xL = xL + w
        xs = xs + w
    } else if (kind == 1) {
        xL = xL - w * dLc
        xs = xs - w * dsc
    } else {
        if (smean > skip) {
            w = w + delta * smean
            nupdates = nupdates + 1
        }
    }
}
