"""Data out: recordings to neo, NWB and SONATA, and NWB and SONATA files read back.

:func:`to_neo` builds an in-memory :class:`neo.Block` of a
:class:`~brian_dendrite.simulation.RunRecording` for elephant and other
neo-based tools, and :func:`spiketrains_to_neo` the :class:`neo.SpikeTrain`
objects of one layer; :func:`to_nwb` writes a Neurodata Without Borders file
with pynwb; :func:`read_nwb_spiketrains` reads the spikes back through neo's
:class:`neo.io.NWBIO` (the round-trip path that the tests check).
:func:`simulated_subject` is the NWB subject of a simulation.
:func:`to_sonata` writes the spikes to a SONATA spike file (HDF5, for BMTK,
NEST and libsonata) and :func:`read_sonata_spikes` reads such a file back.

Modules: :mod:`brian_dendrite.io.neo` (neo objects, and NWB files read into
neo), :mod:`brian_dendrite.io.nwb` (the NWB writer) and
:mod:`brian_dendrite.io.sonata` (the SONATA spike file, whose layout is
described there).

Units are stripped here, at the boundary to neo (``quantities``) and NWB (SI
floats in seconds); everything upstream keeps Brian2 quantities.

Layout of the NWB file
----------------------
``units``
    One row per neuron of every layer, in layer order (``input``,
    ``hidden_0``, ..., ``output``) and neuron order. Columns ``spike_times``
    (s, ascending), ``obs_intervals`` (``[[0, duration]]``), ``layer`` (layer
    name) and ``neuron_index`` (index within the layer). The table's
    ``resolution`` is the simulation time step in seconds: spike times are
    multiples of it.
``acquisition/<layer>_<variable>``
    A :class:`pynwb.base.TimeSeries` per recorded compartment potential
    (``V_soma``, ``V_basal``, ``V_apical``), data of shape
    ``(n_times, n_recorded_neurons)``, regularly sampled (``starting_time``,
    ``rate``). The model's potentials are dimensionless, so ``unit`` is
    ``"a.u."`` (arbitrary units) with ``conversion = 1``; the description lists
    which neuron of the layer each column is. For a simulation the simulated
    state *is* the acquired data, hence ``acquisition`` rather than
    ``processing``.
``processing/compartments/plateaus``
    A :class:`hdmf.common.DynamicTable` with one row per plateau potential:
    ``time`` (s), ``hidden_layer`` (``h`` of ``hidden_<h>``), ``neuron``,
    ``alpha`` (the plateau value, :math:`\\alpha^f` or :math:`\\alpha^t` of the
    paper) and ``phase`` (0 forward, 1 target). This table has
    ``n_hidden x n_phases`` rows, more than there are spikes in a hidden
    layer, so it is all numbers (small integer types, gzip): string columns
    cost about 50 bytes per row in HDF5's variable-length heap and would
    dominate the file.
``trials``
    One row per phase of the schedule: ``start_time``, ``stop_time``, ``phase``
    (``"forward"``, ``"target"`` or ``"test"``), ``phase_code`` (0, 1, 2),
    ``example`` (index of the example within the run), ``label`` (its class)
    and ``stimulus`` (its index in the dataset, ``-1`` if unknown).
``epochs``
    The same phases as epochs tagged with the phase name, so that tools which
    read only epochs (neo's ``NWBIO``) see the schedule too.

Provenance
----------
``notes`` holds the model parameters as TOML (exactly
``recording.metadata['model']``, loadable with
:func:`brian_dendrite.model.parameters` tooling); ``data_collection`` holds a JSON
object with the seed, run mode, code-generation target, chunk key, examples
trained, the recording's own metadata that is not the TOML and the package
versions at export time; ``source_script`` names this exporter
(``brian_dendrite.io.to_nwb``) and the package version, and
``source_script_file_name`` its module. ``related_publications`` cites the
paper. ``keywords`` are left out on purpose (nwbinspector suggests them): neo
0.14.6's ``NWBIO`` cannot read a file that has them.

Subject convention for simulated data
-------------------------------------
NWB requires a :class:`pynwb.file.Subject` (nwbinspector reports a missing one
as CRITICAL, as it does a missing ``subject_id``, ``sex`` or ``age``). A
simulated network has none of these, so the exporter writes, unless the caller
passes its own ``subject``:

* ``subject_id = "simulated-<model name>-seed<seed>"`` (e.g.
  ``simulated-one_hidden-seed1``): the model and seed identify the simulated
  "animal" uniquely, and two runs of the same network share it.
* ``species`` left unset: no organism was recorded, and a Latin binomial would
  be false. nwbinspector reports this as a ``BEST_PRACTICE_VIOLATION``
  ("Subject species is missing"), which is the honest outcome.
* ``sex = "U"`` (unknown, the NWB code closest to "not applicable").
* ``age = "P0D/"``: the ISO 8601 open range "zero days or older", NWB's way of
  saying the age is not known; a network has no age in days.
* ``description`` says the subject is an in-silico network and names the model.

Memory behaviour
----------------
Spike times are not copied into Python lists. The ``units`` table's
``spike_times`` column is written from an iterator that sorts one layer at a
time by neuron (``numpy.lexsort``) and hands that array to HDF5, so the extra
memory is at most one layer's spikes (8 bytes per spike for the times plus 8
for the sort order) on top of the recording itself; the per-neuron index is
computed beforehand with ``numpy.bincount``. Potentials are written from
(transposed views of) the recording's arrays; h5py may make one contiguous
copy of a potential while writing it. Plateaus and phases are small. All
large datasets are gzip-compressed (potentials and plateaus with the shuffle
filter, which helps floating-point traces but not sorted spike times).

Examples
--------
A recording (from :meth:`brian_dendrite.simulation.SpikingNetwork.record`) written
to NWB and its spike trains read back::

    from brian_dendrite.io import read_nwb_spiketrains, to_nwb

    path = to_nwb(recording, "run.nwb")
    trains = read_nwb_spiketrains(path)
"""

from .neo import read_nwb_spiketrains, spiketrains_to_neo, to_neo
from .nwb import simulated_subject, to_nwb
from .sonata import SonataPopulation, read_sonata_spikes, to_sonata

__all__ = ["SonataPopulation", "read_nwb_spiketrains", "read_sonata_spikes", "simulated_subject",
           "spiketrains_to_neo", "to_neo", "to_nwb", "to_sonata"]
