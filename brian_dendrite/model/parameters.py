"""Model parameters: immutable, unit-checked, with the paper's defaults.

Every quantity of the model of Guerguiev, Lillicrap & Richards (2017) lives in one
of three frozen dataclasses, grouped into :class:`ModelParameters`:

* :class:`CellParameters`: the compartmental neurons (conductances, kernel, rate);
* :class:`NetworkParameters`: layer sizes, learning rule, initialisation, feedback;
* :class:`ProtocolParameters`: phase lengths, averaging windows, the test phase.

Values are validated when an object is built (dimension and range); an invalid
value raises :class:`ParameterError` naming the field, the value and what was
expected. Variants are made with :meth:`replace`; named parameter sets (the
paper's networks and conditions) are TOML files in the ``models/`` directory,
loaded by :func:`load_model`.

Units
-----
The paper's potentials are abstract and dimensionless (``sigma(V)`` is applied to
them directly, the teaching reversal potentials are +-8), so potentials and
synaptic weights are dimensionless here. With the membrane capacitance set to
1 (specification section 1.3), a conductance divided by the capacitance is a rate:
conductances are therefore given in ``1/ms`` (``g_L = 0.1/ms`` means a 10 ms
membrane time constant). Times are Brian2 times, rates are in Hz. The learning
rule's presynaptic averages are taken in spikes/ms, the unit in which the paper's
error scalings ``P_hidden = 20/phi_max`` and ``P_final = 20/phi_max**2`` were
defined (specification section 5, item 1).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from brian2 import Hz, ms
from brian2.units.fundamentalunits import Quantity

# short names: the field declarations below are the reference of every parameter, one per line
from ._fields import ParameterError, ValidatedParameters
from ._fields import choice_field as _choice
from ._fields import flag_field as _flag
from ._fields import number_field as _num
from ._fields import quantity_field as _q
from ._fields import sequence_field as _seq

__all__ = [
    "ParameterError",
    "CellParameters",
    "NetworkParameters",
    "ProtocolParameters",
    "ModelParameters",
    "load_model",
    "available_models",
    "model_directory",
]

_TIME = ms.dim
_PER_TIME = (1 / ms).dim
_RATE = Hz.dim


@dataclass(frozen=True)
class CellParameters(ValidatedParameters):
    """The compartmental neurons (specification sections 1.2-1.4 and 2).

    Defaults reproduce the paper's model; conductances are per unit membrane
    capacitance (``C_m = 1``), hence in ``1/ms``.
    """

    phi_max: Quantity = _q(200 * Hz, _RATE, "maximum firing rate phi_max (Hz); paper 200 Hz", lo=0 * Hz, lo_open=True)
    tau_s: Quantity = _q(3 * ms, _TIME, "kernel rise (short) time constant tau_s; paper 3 ms", lo=0 * ms, lo_open=True)
    tau_L: Quantity = _q(10 * ms, _TIME, "kernel decay (long) time constant tau_L; paper 10 ms", lo=0 * ms, lo_open=True)
    g_L: Quantity = _q(0.1 / ms, _PER_TIME, "leak conductance g_l / C_m (1/ms); paper 0.1", lo=0 / ms, lo_open=True)
    g_B: Quantity = _q(0.6 / ms, _PER_TIME, "basal-to-soma conductance g_b / C_m (1/ms); paper 0.6", lo=0 / ms)
    g_A: Quantity = _q(0 / ms, _PER_TIME, "apical-to-soma conductance g_a / C_m (1/ms); paper 0, 0.05 or 0.6", lo=0 / ms)
    g_D: Quantity = _q(0.6 / ms, _PER_TIME, "output dendrite-to-soma conductance g_d / C_m (1/ms); paper 0.6", lo=0 / ms)
    g_teach: Quantity = _q(
        1 / ms,
        _PER_TIME,
        "teaching conductance g_E or g_I when on (1/ms); 1/ms is the published code's form, "
        "0.1/ms (= g_L) the literal reading of paper Eq. 19 (specification section 5, item 2)",
        lo=0 / ms,
    )
    E_E: float = _num(8.0, "excitatory teaching reversal potential E_E; paper +8")
    E_I: float = _num(-8.0, "inhibitory teaching reversal potential E_I; paper -8")
    kernel: str = _choice(
        "full",
        ("full", "truncated"),
        "PSP kernel: 'full' double exponential (integral 1, the paper's equations) or "
        "'truncated' after kernel_cutoff (the published code, sum 0.51; specification section 5, item 3)",
    )
    kernel_cutoff: Quantity = _q(10 * ms, _TIME, "kernel truncation time (code: 10 steps)", lo=0 * ms, lo_open=True)
    kernel_gain: float = _num(
        1.0,
        "amplitude factor of the PSP kernel (1: the paper's kernel). 1/0.5104 with kernel='truncated' gives "
        "the full kernel's mean PSP per unit rate with the truncated kernel's 10-ms settling "
        "(specification section 5, item 3: 'scale the kernel'); not a paper or code setting",
        lo=0,
        lo_open=True,
    )
    method: str = _choice(
        "exponential_euler",
        ("exponential_euler", "euler"),
        "integration of the somatic potentials: 'exponential_euler' (exact for dendritic input held "
        "constant over a step; the traces always decay exactly) or 'euler' (forward Euler at dt, as in "
        "the published code; specification section 5, item 4)",
    )
    dt: Quantity = _q(1 * ms, _TIME, "integration time step; paper 1 ms", lo=0 * ms, lo_open=True)

    def _check_consistency(self):
        if self.tau_s >= self.tau_L:
            raise ParameterError(
                f"CellParameters: tau_s = {self.tau_s} must be shorter than tau_L = {self.tau_L} "
                "(the kernel is (exp(-t/tau_L) - exp(-t/tau_s))/(tau_L - tau_s))"
            )
        if self.phi_max * self.dt > 1:
            raise ParameterError(
                f"CellParameters: phi_max * dt = {float(self.phi_max * self.dt):.3g} > 1; a neuron "
                "can emit at most one spike per time step, reduce dt or phi_max"
            )

    @property
    def k_B(self) -> float:
        """Hidden steady-state factor ``g_B/(g_L + g_B + g_A)``."""
        return float(self.g_B / (self.g_L + self.g_B + self.g_A))

    @property
    def k_D(self) -> float:
        """Output forward-phase steady-state factor ``g_D/(g_L + g_D)``."""
        return float(self.g_D / (self.g_L + self.g_D))

    @property
    def kernel_mass(self) -> float:
        """Integral of the PSP kernel (1 for 'full'; about 0.49 for a 10 ms cutoff), times ``kernel_gain``."""
        if self.kernel == "full":
            return float(self.kernel_gain)
        c, tl, ts = self.kernel_cutoff, self.tau_L, self.tau_s
        mass = (tl * (1 - np.exp(-c / tl)) - ts * (1 - np.exp(-c / ts))) / (tl - ts)
        return float(self.kernel_gain * mass)


@dataclass(frozen=True)
class NetworkParameters(ValidatedParameters):
    """Architecture, learning rule, initialisation and feedback (specification 1.5, 1.9-1.11, 1.13)."""

    n_input: int = _num(784, "number of input (pixel) neurons", lo=1, integer=True)
    hidden: tuple = _seq((500,), "sizes of the hidden layers, bottom to top (empty: no hidden layer)", True, lo=1)
    n_output: int = _num(10, "number of output neurons (one per class)", lo=1, integer=True)
    learning_rates: tuple = _seq(
        (0.21, 0.21),
        "learning rate (paper eta) of each layer's forward weights, hidden layers first, output last; "
        "paper: (0.19,), (0.21, 0.21), (0.23, 0.23, 0.12)",
        False,
        lo=0,
    )
    error_scale: float = _num(
        20.0,
        "the 20 in P_hidden = 20/phi_max and P_final = 20/phi_max**2 (paper Table 1), with rates in spikes/ms",
        lo=0,
    )
    init: str = _choice(
        "paper",
        ("paper", "head"),
        "weight initialisation: 'paper' (code cited by the paper, 23f2c66: uniform with sd W_sd, zero-mean Y, "
        "Y built top-down as a product) or 'head' (later code: sd 2*W_sd, independent nonzero-mean Y)",
    )
    init_V_mean: float = _num(3.0, "target mean dendritic potential of the initialisation (V_avg)")
    init_V_sd: float = _num(3.0, "target sd of dendritic potential of the initialisation (V_sd)", lo=0)
    init_bias_mean: float = _num(0.8, "mean initial bias (b_avg)")
    init_bias_sd: float = _num(0.001, "sd of the initial bias (b_sd)", lo=0)
    feedback: str = _choice(
        "random",
        ("random", "sparse", "symmetric", "noisy_symmetric"),
        "feedback weights Y: fixed 'random', 'sparse' (a fraction silenced, survivors amplified), "
        "'symmetric' (Y = W^T, recomputed after updates) or 'noisy_symmetric'",
    )
    sparse_fraction: float = _num(0.8, "fraction of feedback weights silenced for feedback='sparse'", lo=0, hi=1)
    sparse_gain: float = _num(5.0, "gain of surviving sparse feedback weights (paper x5; 1 = not amplified)", lo=0)
    symmetric_noise: float = _num(0.05, "sd of the noise added to symmetric feedback, redrawn per example", lo=0)
    feedback_bias: bool = _flag(False, "add a fixed random apical bias c (code 23f2c66; not in the paper's equations)")
    feedback_spiking: bool = _flag(True, "feedback carries output spikes (True) or output rates (Fig. 7A red)")
    skip_psp_below: float = _num(
        1e-12,
        "spiking network: presynaptic neurons whose forward-window mean PSP s_mean_f (spikes/ms) is at or "
        "below this skip their weight updates (each skipped change is at most this x |delta|; 0 = exact); "
        "1e-12 skips the inputs silent for about the last three examples, about 2/3 of MNIST's pixels",
        lo=0,
    )

    def _check_consistency(self):
        expected = len(self.hidden) + 1
        if len(self.learning_rates) != expected:
            raise ParameterError(
                f"NetworkParameters.learning_rates = {list(self.learning_rates)}: expected {expected} "
                f"rates (one per hidden layer and one for the output layer) for hidden = {list(self.hidden)}"
            )

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """All layer sizes including input and output."""
        return (self.n_input, *self.hidden, self.n_output)


@dataclass(frozen=True)
class ProtocolParameters(ValidatedParameters):
    """Training and test phases (specification 1.6, 1.12, 1.13 and section 5, items 7-9)."""

    phase_min: Quantity = _q(50 * ms, _TIME, "minimum length of the forward and target phases; paper 50 ms", lo=0 * ms, lo_open=True)
    phase_extra_mean: Quantity = _q(2 * ms, _TIME, "mean of the Wald-distributed extra phase length; paper 2 ms", lo=0 * ms)
    phase_extra_scale: Quantity = _q(1 * ms, _TIME, "scale (lambda) of the Wald extra; paper 1 ms", lo=0 * ms, lo_open=True)
    phase_extra_floor: bool = _flag(
        True, "floor the Wald extra to whole ms as the published code does (False: round to dt)"
    )
    window: str = _choice(
        "last",
        ("last", "settle"),
        "averaging window: 'last' window_length of each phase (the published code) or from "
        "settle_time after the phase start to its end (paper Eq. 22)",
    )
    window_length: Quantity = _q(20 * ms, _TIME, "averaging window for window='last'; code 20 ms", lo=0 * ms, lo_open=True)
    settle_time: Quantity = _q(30 * ms, _TIME, "settling delay for window='settle'; paper 30 ms", lo=0 * ms)
    test_duration: Quantity = _q(250 * ms, _TIME, "length of the test phase; code 250 ms, paper 500 ms", lo=0 * ms, lo_open=True)
    test_window: Quantity = _q(220 * ms, _TIME, "averaging window at the end of the test phase; code 220 ms", lo=0 * ms, lo_open=True)
    readout: str = _choice(
        "voltage",
        ("voltage", "rate"),
        "test readout: argmax of the mean somatic 'voltage' (code, paper Methods) or firing 'rate' (paper Results)",
    )
    stochastic_plateau: bool = _flag(False, "draw each neuron's plateau time before the phase end (Fig. 6-S1)")
    plateau_offset_sd: Quantity = _q(3 * ms, _TIME, "sd of the plateau-time offset (code: 3 steps)", lo=0 * ms)
    plateau_offset_max: Quantity = _q(5 * ms, _TIME, "maximum plateau-time offset (code: 5 steps)", lo=0 * ms)

    def _check_consistency(self):
        if self.window == "last" and self.window_length > self.phase_min:
            raise ParameterError(
                f"ProtocolParameters.window_length = {self.window_length} exceeds phase_min = {self.phase_min}"
            )
        if self.window == "settle" and self.settle_time >= self.phase_min:
            raise ParameterError(
                f"ProtocolParameters.settle_time = {self.settle_time} must be shorter than phase_min = {self.phase_min}"
            )
        if self.test_window > self.test_duration:
            raise ParameterError(
                f"ProtocolParameters.test_window = {self.test_window} exceeds test_duration = {self.test_duration}"
            )
        if self.stochastic_plateau and self.plateau_offset_max + self.window_length > self.phase_min:
            raise ParameterError(
                "ProtocolParameters: plateau_offset_max + window_length must fit in phase_min"
            )


@dataclass(frozen=True)
class ModelParameters(ValidatedParameters):
    """A complete, named parameter set: cell, network and protocol."""

    name: str = field(default="custom", metadata={"kind": "text", "doc": "name of the parameter set"})
    description: str = field(default="", metadata={"kind": "text", "doc": "what the set is for and its source"})
    cell: CellParameters = field(default_factory=CellParameters, metadata={"kind": "group", "cls": CellParameters})
    network: NetworkParameters = field(
        default_factory=NetworkParameters, metadata={"kind": "group", "cls": NetworkParameters}
    )
    protocol: ProtocolParameters = field(
        default_factory=ProtocolParameters, metadata={"kind": "group", "cls": ProtocolParameters}
    )

    def _validate_field(self, f, value):
        kind = f.metadata["kind"]
        if kind == "text":
            if not isinstance(value, str):
                raise ParameterError(f"ModelParameters.{f.name} = {value!r}: expected text")
            return value
        cls = f.metadata["cls"]
        if isinstance(value, dict):
            return cls.from_dict(value)
        if not isinstance(value, cls):
            raise ParameterError(f"ModelParameters.{f.name}: expected a {cls.__name__}, got {type(value).__name__}")
        return value

    def to_toml(self) -> str:
        """The parameter set as a TOML model file."""
        data = self.to_dict()
        lines = [f"name = {_toml_value(data.pop('name'))}", f"description = {_toml_value(data.pop('description'))}"]
        for section, values in data.items():
            lines.append(f"\n[{section}]")
            lines.extend(f"{key} = {_toml_value(val)}" for key, val in values.items())
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str, source: str = "<string>") -> ModelParameters:
        """Parse a TOML model file (see ``models/``)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ParameterError(f"{source}: not a valid TOML model file: {err}") from None
        return cls.from_dict(data, source=source)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def model_directory() -> Path:
    """The directory holding the named model files shipped with the package.

    Installed, they are the package data ``brian_dendrite.model_files`` (the
    repository's top-level ``models/``); in a source checkout that is not
    installed, the ``models/`` folder beside the package.
    """
    try:
        return Path(str(resources.files("brian_dendrite.model_files")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "models"


def available_models() -> list[str]:
    """Names of the model files shipped with the package (without ``.toml``)."""
    return sorted(p.stem for p in model_directory().glob("*.toml"))


def load_model(name_or_path: str | Path, **overrides) -> ModelParameters:
    """Load a named parameter set from ``models/`` or a TOML file path.

    Parameters
    ----------
    name_or_path : str or Path
        A model name such as ``"one_hidden"`` (see :func:`available_models`) or
        the path of a TOML file.
    **overrides
        Per-section replacements, e.g. ``network={"feedback": "sparse"}``.

    Raises
    ------
    ParameterError
        Unknown model name (the available ones are listed), unknown keys or
        invalid values in the file (named with the file and the field).
    FileNotFoundError
        If a path is given and does not exist.
    """
    path = Path(name_or_path)
    if path.suffix != ".toml" and not path.exists():
        candidate = model_directory() / f"{name_or_path}.toml"
        if not candidate.exists():
            raise ParameterError(
                f"unknown model {str(name_or_path)!r}; available models: {', '.join(available_models())} "
                "(or give the path of a .toml file)"
            )
        path = candidate
    if not path.exists():
        raise FileNotFoundError(f"model file {path} does not exist")
    params = ModelParameters.from_toml(path.read_text(encoding="utf-8"), source=str(path))
    if overrides:
        sections = {}
        for section, changes in overrides.items():
            if section not in ("cell", "network", "protocol"):
                raise ParameterError(f"unknown section {section!r}; expected cell, network or protocol")
            sections[section] = getattr(params, section).replace(**changes)
        params = params.replace(**sections)
    return params
