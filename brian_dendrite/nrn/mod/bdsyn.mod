: One plastic feedforward synapse of the segregated-dendrite network (brian_dendrite).
: The weight w is a RANGE variable of the synapse; the synapse writes into the
: traces of the postsynaptic dendrite (BDDend) through POINTERs.
: Events (the NetCon's first weight slot is the event kind):
:   kind 0  presynaptic spike: the dendrite's traces += w
:   kind 1  kernel cutoff (truncated kernel): the traces -= w * decay over the cutoff
:   kind 2  end of a target phase: w += delta_post * smean_pre (the learning rule,
:           specification 1.9), skipped when smean_pre <= skip; with noise_sd > 0 the
:           noise of noisy-symmetric feedback is redrawn: ynoise = noise_sd * N(0, 1)
:           (Random123 stream ran; a replayed noise is played into ynoise from Python)
:   kind 3  postsynaptic spike, symmetric feedback (Y = W^T): the PRESYNAPTIC cell's
:           apical traces (POINTERs axL, axs) += w + ynoise
NEURON {
    POINT_PROCESS BDSyn
    RANDOM ran
    RANGE w, dLc, dsc, skip, nupdates, ynoise, noise_sd
    POINTER xL, xs, smean, delta, axL, axs
}

PARAMETER {
    w = 0
    dLc = 0
    dsc = 0
    skip = 1e-12
    noise_sd = 0
}

ASSIGNED {
    xL
    xs
    smean
    delta
    nupdates
    ynoise
    axL
    axs
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
    } else if (kind == 2) {
        if (smean > skip) {
            w = w + delta * smean
            nupdates = nupdates + 1
        }
        if (noise_sd > 0) {
            ynoise = noise_sd * random_normal(ran)
        }
    } else if (kind == 3) {
        axL = axL + w + ynoise
        axs = axs + w + ynoise
    }
}
