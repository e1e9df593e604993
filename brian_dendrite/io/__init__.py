"""Data out: recordings to neo and NWB, and NWB files back to neo spike trains."""

from .export import read_nwb_spiketrains, simulated_subject, spiketrains_to_neo, to_neo, to_nwb

__all__ = ["read_nwb_spiketrains", "simulated_subject", "spiketrains_to_neo", "to_neo", "to_nwb"]
